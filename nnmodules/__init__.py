"""What learns: LightningModules."""

from nnmodules.mlp import MLPClassifier

__all__ = ["MLPClassifier"]
