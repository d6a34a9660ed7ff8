"""What Lightning and torch print that tells a user of this project nothing, filtered narrowly where it arises.

Each filter names the message and where it comes from; every other warning and log
line still shows, the project's own first. `install` is called by the command line and
by `LitTrainer`, so scripts that build a Trainer with `make_trainer` are quiet too.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

WARNINGS = [  # (message, the module that warns)
    # the command line hands LightningCLI sys.argv as `args` itself, after reading a run's config.yaml into it
    (r"LightningCLI's args parameter is intended", r"lightning\.pytorch\.cli"),
    # Lightning's own use of a torch API that torch deprecated; nothing a user can change
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", r"lightning\.pytorch\.utilities\._pytree"),
    # TensorBoardLogger draws the model's graph by tracing it, the only way TensorBoard takes one
    (r"`torch\.jit\.trace(_method)?` is deprecated", r"torch\.jit\._trace"),
    # ... and a regressor's check of its output's width is a constant of that one trace, as the tracer fears
    (r"Converting a tensor to a Python boolean might cause the trace to be incorrect", r"nnmodules\.tasks"),
    # ... as are the embeddings' checks of their input's width (nets.TableMLP)
    (r"Converting a tensor to a Python boolean might cause the trace to be incorrect", r"rtdl_num_embeddings"),
    # mixed precision keeps the weights in 32 bits, which is what the model summary then counts
    (r"Precision (bf)?16-mixed is not supported by the model summary", r"lightning\.pytorch\.utilities\.model_summary"),
]
LOG_LINES = {  # logger: the starts of its lines that say nothing here
    "lightning.fabric.utilities.seed": ("Seed set to",),  # the seed is in the run's config.yaml
    "lightning.pytorch.utilities.rank_zero": (
        "GPU available: False",  # a device that is absent (one that is present is still said)
        "TPU available: False",
        "HPU available: False",
        "💡 Tip",  # advertisements for other products
        "Loading `train_dataloader` to estimate number of stepping batches",
        "Trainer already configured with model summary callbacks",  # LitTrainer gives its own, NetworkSummary
    ),
}


class _DropLines(logging.Filter):
    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


def install() -> None:
    """Filters the warnings and log lines above (again is harmless)."""
    for message, module in WARNINGS:
        warnings.filterwarnings("ignore", message=message, module=module)
    for name, starts in LOG_LINES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _DropLines) for existing in logger.filters):
            logger.addFilter(_DropLines(starts))


def continued_run(checkpoints: Path) -> None:
    """Quiets Lightning's "Checkpoint directory ... exists and is not empty" for a run's own checkpoints folder.

    A folder of a run is meant to hold its checkpoints: a run continued finds them there, and a new run in a
    used folder is refused anyway (`RunFolderGuard`). The warning stays for every other folder.
    """
    folder = re.escape(os.path.realpath(checkpoints))  # as ModelCheckpoint writes its dirpath
    warnings.filterwarnings("ignore", message=f"Checkpoint directory {folder} exists and is not empty")


def evaluating_a_checkpoint() -> None:
    """Quiets Lightning's advice to rebuild a checkpoint's callbacks, for validate, test and predict.

    Those stages restore no callback state (a `ModelCheckpoint`'s counters serve a fit that goes on), so the
    advice says nothing there; a fit continued from a checkpoint still gets it.
    """
    message = "Be aware that when using `ckpt_path`, callbacks used to create the checkpoint need to be provided"
    warnings.filterwarnings("ignore", message=re.escape(message))
