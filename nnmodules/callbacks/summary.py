"""What the end of every fit says: the best so far, the best and last checkpoints, and where the run is."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from nnmodules.metrics import BEST


class RunSummary(L.Callback):
    """Says at the end of every `fit` where things are.

    The best checkpoint and its score, the last one, and the run: the TensorBoard command, or its folder.
    """

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.fast_dev_run:
            return
        lines = [f"{name}: {float(value):.4f}" for name, value in trainer.callback_metrics.items() if BEST in name]
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, ModelCheckpoint):
            if checkpoint.best_model_path and checkpoint.best_model_score is not None:
                score = f"{checkpoint.monitor} {float(checkpoint.best_model_score):.4f}"
                lines.append(f"best checkpoint: {shown(checkpoint.best_model_path)} ({score})")
            if checkpoint.last_model_path:
                lines.append(f"last checkpoint: {shown(checkpoint.last_model_path)}")
        logger = trainer.logger
        if isinstance(logger, TensorBoardLogger):
            lines.append(f"TensorBoard: tensorboard --logdir {shown(logger.log_dir)}")
        elif isinstance(logger, CSVLogger):
            lines.append(f"run folder: {shown(logger.log_dir)} (metrics.csv: every logged value, a row per step)")
        elif logger is not None:
            lines.append(f"run folder: {shown(trainer.default_root_dir)} (logged to {type(logger).__name__})")
        else:
            lines.append(f"run folder: {shown(trainer.default_root_dir)}")
        rank_zero_info("\n".join(lines))


def shown(path: str | Path) -> str:
    """A path as a person typed it: relative to the working folder when it is inside it, else as it is."""
    absolute = Path(path).absolute()
    inside = absolute.is_relative_to(Path.cwd())
    return os.path.relpath(absolute) if inside else str(path)
