"""What learns: a task (`Classifier`, `Regressor`) with any network, the presets, the networks; and their runs.

`make_trainer` gives a Lightning Trainer with the project's defaults, in a run folder of its own;
`load_run` takes a run anywhere from its checkpoint alone.
"""

from nnmodules import _moved
from nnmodules.nets import MLP, ScratchNet, SmallCNN, TableMLP
from nnmodules.presets import MLPClassifier, MLPRegressor, ScratchDeepNet, ToyRegressor
from nnmodules.runs import SEED, load_run, make_trainer
from nnmodules.tasks import Classifier, Regressor

_moved.install()  # 0.1.0's module paths (nnmodules.figures, nnmodules.mlp, ...), which its runs and recipes name

__all__ = [
    "MLP",
    "SEED",
    "Classifier",
    "MLPClassifier",
    "MLPRegressor",
    "Regressor",
    "ScratchDeepNet",
    "ScratchNet",
    "SmallCNN",
    "TableMLP",
    "ToyRegressor",
    "load_run",
    "make_trainer",
]
