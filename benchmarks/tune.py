"""tune: `litmodules tune` of the MNIST MLP with its search file, pruned and not, against the config itself.

the search recipe mnist_mlp over the mnist_mlp recipe, every trial `--trainer.max_epochs` epochs
(3 unless told): the search as it is (its median pruner) and the same search with `NopPruner`, one
after the other; before them, the config as it is for the same epochs. Figures: each search's wall
time, its trials by outcome and its best `val/acc_best`; the config's `val/acc_best`; the pruned
search's time as a share of the unpruned one's. Each trial is an ordinary run (progress bar and model
summary off).
"""

from __future__ import annotations

import tempfile
import time
from contextlib import chdir
from pathlib import Path

import yaml
from optuna.trial import TrialState

from benchmarks.recipes import CONFIGS, from_config, mnist_args
from nnmodules.cli.tune import tune

SEARCH = CONFIGS / "search" / "mnist_mlp.yaml"
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def run(data_dir: str, trials: int = 20, epochs: int = 3) -> dict:
    """The config's figure, then both searches, as the module docstring says."""
    fit_args = ["--config", str(CONFIGS / "mnist_mlp.yaml"), *mnist_args(data_dir, epochs=epochs), *QUIET]
    with tempfile.TemporaryDirectory() as scratch, chdir(scratch):
        config = from_config("mnist_mlp", *mnist_args(data_dir, epochs=epochs), "--test_after_fit=false")
        config.trainer.fit(config.model, config.datamodule)
        default = float(config.trainer.callback_metrics["val/acc_best"])
        rows = {}
        for name, pruner in (("pruned", None), ("unpruned", "NopPruner")):
            search = yaml.safe_load(SEARCH.read_text())
            if pruner is not None:
                search["pruner"] = pruner
            path = Path(scratch) / f"{name}.yaml"
            path.write_text(yaml.safe_dump(search, sort_keys=False))
            start = time.perf_counter()
            study = tune(path, trials, fit_args)
            rows[name] = {
                "seconds": time.perf_counter() - start,
                "complete": len(study.get_trials(states=(TrialState.COMPLETE,))),
                "pruned": len(study.get_trials(states=(TrialState.PRUNED,))),
                "best_val_acc": study.best_value,
            }
    share = rows["pruned"]["seconds"] / rows["unpruned"]["seconds"]
    print(f"\n{trials}-trial searches of the MNIST MLP, {epochs} epochs a trial (the search recipe mnist_mlp)")
    print(f"{'search':<10}{'seconds':>9}{'complete':>10}{'pruned':>8}{'best val/acc_best':>19}")
    for name, row in rows.items():
        print(f"{name:<10}{row['seconds']:>9.1f}{row['complete']:>10}{row['pruned']:>8}{row['best_val_acc']:>19.4f}")
    print(f"the mnist_mlp recipe as it is, {epochs} epochs: val/acc_best {default:.4f}")
    print(f"pruned search: {100 * share:.1f}% of the unpruned one's time (target: at most 60%)")
    return {"default_val_acc": default, "searches": rows, "pruned_share": share}
