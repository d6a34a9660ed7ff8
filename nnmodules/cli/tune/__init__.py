"""`litmodules tune`: a hyperparameter search by Optuna (an extra), each trial an ordinary `fit` run.

`main` (the command line) is light: `tune` and Optuna are imported when first used (`datamodules.lazy`).
"""

from datamodules.lazy import lazy_exports

EXPORTS = {
    "main": "nnmodules.cli.tune.command",
    "start": "nnmodules.cli.tune.command",
    "tune": "nnmodules.cli.tune.study",
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = ["main", "tune"]
