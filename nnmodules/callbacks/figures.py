"""Figures in TensorBoard's Images tab (PNG files with another logger), drawn every N epochs and at the end of fit.

`EpochFigures` is the one mechanism: when to draw, on which process, in eval mode without gradients; each
task's figures are a subclass (`classification.py`, `regression.py`, `curves.py`). Figures use matplotlib's
object API (no pyplot, no GUI backend) and `add_figure`; they read the data's facts and what the model
predicts, and run on their own copy of the random state, so a run with figures trains exactly as one without.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure

from datamodules.errors import UserError
from nnmodules.tasks import TaskModule


class EpochFigures(L.Callback):
    """Draws `figures()` after every `every_n_epochs` training epochs (0: never) and at the end of fit.

    With a TensorBoard logger, into its Images tab; with another logger, as PNG files in the run folder
    (`figures/<tag>-step<N>.png`); without a logger, not at all. Draws on rank 0 only.

    Args:
        every_n_epochs: draw after every this many training epochs; 0: only at the end of fit.
    """

    module_type: type[L.LightningModule] = TaskModule
    needs_tables = False  # whether the figures read the data module's tables (TensorDataModule.table)

    def __init__(self, every_n_epochs: int = 0) -> None:
        if every_n_epochs < 0:
            raise UserError(f"every_n_epochs must be 0 or more, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self._drawn_at_step = -1

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        if not isinstance(module, self.module_type):
            raise UserError(
                f"{type(self).__name__} draws for a {self.module_type.__name__}; {type(module).__name__} is not one"
            )

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.draw(trainer, module)

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._drawn_at_step != trainer.global_step:  # not drawn already by the last epoch's end
            self.draw(trainer, module)

    @torch.no_grad()
    def draw(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.logger is None or not trainer.is_global_zero:
            return
        was_training = module.training
        module.eval()
        self._drawn_at_step = trainer.global_step
        with torch.random.fork_rng(devices=[]):  # iterating a DataLoader draws a seed: leave training's RNG alone
            figures = self.figures(trainer, module)
        for tag, figure in figures.items():
            if isinstance(trainer.logger, TensorBoardLogger):
                trainer.logger.experiment.add_figure(tag, figure, trainer.global_step)
            else:  # a logger that shows no images: the run folder keeps them
                path = (
                    Path(trainer.log_dir or ".") / "figures" / f"{tag.replace('/', '_')}-step{trainer.global_step}.png"
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                figure.savefig(path)
        module.train(was_training)

    def figures(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Figure]:
        raise NotImplementedError
