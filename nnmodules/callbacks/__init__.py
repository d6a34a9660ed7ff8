"""Callbacks, one a file: what every run does besides training, figures, predictions, `torch.compile`.

Every run (`make_trainer`, the command line): `RunRecord` (the run in every checkpoint), `Interruption`
(Ctrl-C, SIGTERM), `HParamsMetrics` (TensorBoard's HParams tab), `RunSummary` (the end of a fit), and the
progress bar and model summary. From a config or a script: the figures, `PredictionWriter`, `Compile`.
Callbacks read the logged metrics and the data's facts (`datamodules.contract`), not a model's insides.
"""

from nnmodules.callbacks.classification import ClassificationFigures
from nnmodules.callbacks.compile import Compile
from nnmodules.callbacks.curves import LearningCurves
from nnmodules.callbacks.figures import EpochFigures
from nnmodules.callbacks.folder import RunFolderGuard
from nnmodules.callbacks.histograms import ParameterHistograms
from nnmodules.callbacks.hparams import HParamsMetrics
from nnmodules.callbacks.interruption import (
    INTERRUPTED,
    RESUME_HINT,
    InterruptedCheckpoint,
    Interruption,
    RunInterrupted,
)
from nnmodules.callbacks.predictions import PredictionWriter
from nnmodules.callbacks.progress import PROGRESS_BAR_STEPS, LitProgressBar, NetworkSummary
from nnmodules.callbacks.record import RunRecord
from nnmodules.callbacks.regression import RegressionFigures
from nnmodules.callbacks.summary import RunSummary

__all__ = [
    "INTERRUPTED",
    "PROGRESS_BAR_STEPS",
    "RESUME_HINT",
    "ClassificationFigures",
    "Compile",
    "EpochFigures",
    "HParamsMetrics",
    "InterruptedCheckpoint",
    "Interruption",
    "LearningCurves",
    "LitProgressBar",
    "NetworkSummary",
    "ParameterHistograms",
    "PredictionWriter",
    "RegressionFigures",
    "RunInterrupted",
    "RunRecord",
    "RunSummary",
    "RunFolderGuard",
]
