"""The run machinery: a Trainer in a run folder of its own, a run taken anywhere from its checkpoint, exports."""

from nnmodules.runs.ensembles import ensemble_of
from nnmodules.runs.export import export
from nnmodules.runs.loading import load_run, read_run
from nnmodules.runs.trainer import CHECKPOINT_DEFAULTS, LOGGER_DEFAULTS, SEED, TRAINER_DEFAULTS, make_trainer

__all__ = [
    "CHECKPOINT_DEFAULTS",
    "LOGGER_DEFAULTS",
    "SEED",
    "TRAINER_DEFAULTS",
    "ensemble_of",
    "export",
    "load_run",
    "make_trainer",
    "read_run",
]
