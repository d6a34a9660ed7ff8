"""The tasks: what learning classes or numbers means, for any network (`Classifier`, `Regressor`)."""

from nnmodules.tasks.checkpoints import CheckpointIO, read_checkpoint, record_of
from nnmodules.tasks.classifier import Classifier
from nnmodules.tasks.regressor import Regressor
from nnmodules.tasks.task import Diverged, Schedule, TaskModule, inputs_of, one_per_example

__all__ = [
    "CheckpointIO",
    "Classifier",
    "Diverged",
    "Regressor",
    "Schedule",
    "TaskModule",
    "inputs_of",
    "one_per_example",
    "read_checkpoint",
    "record_of",
]
