"""What learns: a task (`Classifier`, `Regressor`) with any network, the presets, and the networks."""

from nnmodules.classifier import Classifier
from nnmodules.mlp import MLPClassifier, MLPRegressor
from nnmodules.nets import MLP, ScratchNet, SmallCNN, TableMLP
from nnmodules.regressor import Regressor
from nnmodules.scratch import ScratchDeepNet
from nnmodules.toy import ToyRegressor

__all__ = [
    "MLP",
    "Classifier",
    "MLPClassifier",
    "MLPRegressor",
    "Regressor",
    "ScratchDeepNet",
    "ScratchNet",
    "SmallCNN",
    "TableMLP",
    "ToyRegressor",
]
