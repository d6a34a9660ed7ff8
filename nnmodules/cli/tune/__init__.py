"""`litmodules tune`: a hyperparameter search by Optuna (an extra), each trial an ordinary `fit` run."""

from nnmodules.cli.tune.study import main, tune

__all__ = ["main", "tune"]
