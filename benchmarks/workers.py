"""workers: `litmodules tune --workers 2` (a CPU thread each) against one `tune` process of two threads.

The search recipe mnist_mlp over the mnist_mlp recipe, `--trials` trials (12 unless told) of one epoch of
`--batches` training batches (100 unless told); each way `--repeats` times, alternating, each a fresh study in a
folder of its own, timed whole (the command from its start to its end, as a user waits for it). Then the best trial
of the last two-worker study trained again with `litmodules fit --config <its config.yaml>`, on one thread as its
worker trained it: its `val/acc_best` beside the trial's. Last, the two-worker search once more, its worker 1
killed (SIGKILL) at a random moment before 70% of its usual time (seeded, printed): the study's trials by
state, whether every completed or pruned trial has a run folder of its own, whether `best.yaml` is the best
trial's.
"""

from __future__ import annotations

import os
import random
import signal
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


def run(data_dir: str, trials: int = 12, repeats: int = 3, batches: int = 100, seed: int = 0) -> dict:
    """Both ways, alternating, then the best trial trained again, as the module docstring says."""
    fit_args = ["--config", "mnist_mlp", *mnist_args(data_dir, epochs=1), f"--trainer.limit_train_batches={batches}"]
    seconds: dict[str, list[float]] = {way: [] for way in WAYS}
    trial_seconds: dict[str, list[float]] = {way: [] for way in WAYS}  # each trial's own, as its line says
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(repeats):
            for way, more in WAYS.items():
                folder = Path(scratch) / f"{len(seconds[way])}-{list(WAYS).index(way)}"
                folder.mkdir()
                command = ["tune", "--search", "mnist_mlp", "--trials", str(trials), *fit_args, *QUIET, *more]
                started = time.perf_counter()
                _litmodules(command, folder)
                seconds[way].append(time.perf_counter() - started)
                trial_seconds[way] += [trial.user_attrs["seconds"] for trial in _study(folder).trials]
                print(f"repeat {repeat}: {way}: {seconds[way][-1]:.1f} s", flush=True)
        best = _study(folder).best_trial
        config = folder / "lightning_logs" / "mnist_mlp" / best.user_attrs["run"] / "config.yaml"
        again = _litmodules(["fit", "--config", str(config), "--trainer.logger.init_args.version=again"], folder, 1)
        killed = _killed_at_random(
            fit_args, trials, Path(scratch) / "killed", random.Random(seed), statistics.median(seconds[list(WAYS)[1]])
        )
    refit = float(next(line for line in again.splitlines() if line.startswith("val/acc_best:")).split()[-1])
    medians = {way: statistics.median(times) for way, times in seconds.items()}
    one, two = medians.values()
    print(f"\n{trials}-trial MNIST searches (mnist_mlp), 1 epoch of {batches} batches a trial, {repeats} runs a way")
    for way, times in seconds.items():
        print(f"{way:<26} median {medians[way]:6.1f} s   ({', '.join(f'{t:.1f}' for t in times)})")
    print(f"2 workers: {100 * two / one:.1f}% of one process's time (target: at most 70%)")
    each = {way: statistics.median(times) for way, times in trial_seconds.items()}
    print(f"a trial's own seconds, median: {', '.join(f'{way}: {value:.2f}' for way, value in each.items())}")
    print(f"trial {best.number} ({best.user_attrs['run']}): val/acc_best {best.value:.4f}; its config.yaml trained")
    print(f"again with fit: {refit:.4f} ({'the same' if refit == round(best.value, 4) else 'NOT the same'})")
    print(
        f"worker 1 killed after {killed['after']:.1f} s (seed {seed}): the study holds {killed['states']}; "
        f"runs of their own: {killed['runs_of_their_own']}; best.yaml is the best trial's: {killed['best_yaml']}"
    )
    result = {"seconds": seconds, "medians": medians, "share": two / one, "trial_seconds": each}
    result |= {"best": best.value, "refit": refit}
    return {**result, "killed": killed}


def _killed_at_random(fit_args: list[str], trials: int, folder: Path, chance: random.Random, seconds: float) -> dict:
    """The two-worker search with its worker 1 killed between its start and the search's usual end; the study."""
    folder.mkdir()
    command = ["tune", "--search", "mnist_mlp", "--trials", str(trials), *fit_args, *QUIET, "--workers", "2"]
    litmodules = [sys.executable, "-m", "nnmodules", *command]
    process = subprocess.Popen(litmodules, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = time.perf_counter()
    assert process.stdout is not None
    line = next(line for line in process.stdout if "[worker 1] started: pid" in line)
    pid = int(line.split("pid ")[1].split(",")[0])
    moment = chance.uniform(time.perf_counter() - started, 0.7 * seconds)  # while trials run
    time.sleep(max(0.0, moment - (time.perf_counter() - started)))
    os.kill(pid, signal.SIGKILL)
    said = process.communicate()[0]
    if process.returncode:
        raise RuntimeError(f"the search with a worker killed ended with {process.returncode}: {said}")
    study = _study(folder)
    ended = [trial for trial in study.trials if trial.state.name in ("COMPLETE", "PRUNED")]
    states = {
        state: sum(trial.state.name == state for trial in study.trials) for state in ("COMPLETE", "PRUNED", "FAIL")
    }
    best = (folder / "lightning_logs" / "mnist_mlp" / "best.yaml").read_text().splitlines()[0]
    return {
        "after": moment,
        "states": states,
        "runs_of_their_own": len({trial.user_attrs["run"] for trial in ended}) == len(ended) == trials,
        "best_yaml": f"/{study.best_trial.user_attrs['run']}), " in best,
    }


def _study(folder: Path) -> optuna.Study:
    """The search recipe's study in `folder`."""
    return optuna.load_study(study_name="mnist_mlp", storage=f"sqlite:///{folder}/lightning_logs/mnist_mlp/study.db")


def _litmodules(command: list[str], folder: Path, threads: int | None = None) -> str:
    """`litmodules COMMAND` in `folder` (with `threads` CPU threads, if given); what it printed. Fails loudly."""
    env = dict(os.environ) | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    litmodules = [sys.executable, "-m", "nnmodules", *command]
    done = subprocess.run(litmodules, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"litmodules {' '.join(command)} ended with {done.returncode}: {done.stdout}{done.stderr}")
    return done.stdout + done.stderr
