"""What learns: LightningModules."""

from nnmodules.mlp import MLPClassifier
from nnmodules.regression import ToyRegressor
from nnmodules.scratch import ScratchDeepNet

__all__ = ["MLPClassifier", "ScratchDeepNet", "ToyRegressor"]
