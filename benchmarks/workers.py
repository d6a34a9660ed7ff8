"""workers: `litmodules tune --workers 2` (a CPU thread each) against one `tune` process of two threads.

The search recipe mnist_mlp over the mnist_mlp recipe, `--trials` trials (12 unless told) of one epoch of
`--batches` training batches (100 unless told); each way `--repeats` times, alternating, each a fresh study in a
folder of its own, timed whole (the command from its start to its end, as a user waits for it). Then the best trial
of the last two-worker study trained again with `litmodules fit --config <its config.yaml>`, on one thread as its
worker trained it: its `val/acc_best` beside the trial's.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from benchmarks.recipes import mnist_args

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
WAYS = {"one process, 2 threads": [], "2 workers, 1 thread each": ["--workers", "2"]}


def run(data_dir: str, trials: int = 12, repeats: int = 3, batches: int = 100) -> dict:
    """Both ways, alternating, then the best trial trained again, as the module docstring says."""
    fit_args = ["--config", "mnist_mlp", *mnist_args(data_dir, epochs=1), f"--trainer.limit_train_batches={batches}"]
    seconds: dict[str, list[float]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(repeats):
            for way, more in WAYS.items():
                folder = Path(scratch) / f"{len(seconds[way])}-{list(WAYS).index(way)}"
                folder.mkdir()
                command = ["tune", "--search", "mnist_mlp", "--trials", str(trials), *fit_args, *QUIET, *more]
                started = time.perf_counter()
                _litmodules(command, folder)
                seconds[way].append(time.perf_counter() - started)
                print(f"repeat {repeat}: {way}: {seconds[way][-1]:.1f} s", flush=True)
        study = optuna.load_study(
            study_name="mnist_mlp", storage=f"sqlite:///{folder}/lightning_logs/mnist_mlp/study.db"
        )
        best = study.best_trial
        config = folder / "lightning_logs" / "mnist_mlp" / best.user_attrs["run"] / "config.yaml"
        again = _litmodules(["fit", "--config", str(config), "--trainer.logger.init_args.version=again"], folder, 1)
    refit = float(next(line for line in again.splitlines() if line.startswith("val/acc_best:")).split()[-1])
    medians = {way: statistics.median(times) for way, times in seconds.items()}
    one, two = medians.values()
    print(f"\n{trials}-trial MNIST searches (mnist_mlp), 1 epoch of {batches} batches a trial, {repeats} runs a way")
    for way, times in seconds.items():
        print(f"{way:<26} median {medians[way]:6.1f} s   ({', '.join(f'{t:.1f}' for t in times)})")
    print(f"2 workers: {100 * two / one:.1f}% of one process's time (target: at most 70%)")
    print(f"trial {best.number} ({best.user_attrs['run']}): val/acc_best {best.value:.4f}; its config.yaml trained")
    print(f"again with fit: {refit:.4f} ({'the same' if refit == round(best.value, 4) else 'NOT the same'})")
    return {"seconds": seconds, "medians": medians, "share": two / one, "best": best.value, "refit": refit}


def _litmodules(command: list[str], folder: Path, threads: int | None = None) -> str:
    """`litmodules COMMAND` in `folder` (with `threads` CPU threads, if given); what it printed. Fails loudly."""
    env = dict(os.environ) | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    litmodules = [sys.executable, "-m", "nnmodules", *command]
    done = subprocess.run(litmodules, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"litmodules {' '.join(command)} ended with {done.returncode}: {done.stdout}{done.stderr}")
    return done.stdout + done.stderr
