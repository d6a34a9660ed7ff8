"""The presets: a task with one of the project's networks, built from the preset's own arguments."""

from nnmodules.presets.mlp import MLPClassifier, MLPRegressor
from nnmodules.presets.scratch import ScratchDeepNet, TutorialSGD
from nnmodules.presets.toy import ToyRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "ScratchDeepNet", "ToyRegressor", "TutorialSGD"]
