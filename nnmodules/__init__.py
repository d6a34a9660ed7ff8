"""What learns: a task (`Classifier`, `Regressor`) with any network, the presets, and the networks."""

from nnmodules.mlp import MLPClassifier, MLPRegressor
from nnmodules.nets import MLP, ScratchNet, SmallCNN
from nnmodules.regression import ToyRegressor
from nnmodules.scratch import ScratchDeepNet
from nnmodules.tasks import Classifier, Regressor

__all__ = [
    "MLP",
    "Classifier",
    "MLPClassifier",
    "MLPRegressor",
    "Regressor",
    "ScratchDeepNet",
    "ScratchNet",
    "SmallCNN",
    "ToyRegressor",
]
