"""Histograms of every parameter, and of its gradient, in TensorBoard's Histograms and Distributions tabs."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from datamodules.errors import UserError
from nnmodules._lightning import is_last_batch


class ParameterHistograms(L.Callback):
    """Histograms of every parameter and of its gradient in the epoch's last training step.

    As `parameters/<name>` and `gradients/<name>`, after every `every_n_epochs` epochs: TensorBoard's Histograms and
    Distributions tabs. Works for automatic and manual optimization alike (`on_after_backward` follows
    `manual_backward` too), on rank 0, with a TensorBoard logger.

    Args:
        every_n_epochs: log after every this many training epochs.
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        if every_n_epochs < 1:
            raise UserError(f"every_n_epochs must be 1 or more, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self._gradients: dict[str, torch.Tensor] = {}
        self._said = False  # that another logger shows no histograms

    def _logging_epoch(self, trainer: L.Trainer) -> bool:
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0 and trainer.is_global_zero

    def on_after_backward(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if is_last_batch(trainer) and self._logging_epoch(trainer):  # one copy an epoch, of the step that ends it
            self._gradients = {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not isinstance(trainer.logger, TensorBoardLogger) and not self._said and trainer.logger is not None:
            rank_zero_info(
                f"ParameterHistograms: histograms need TensorBoardLogger, not {type(trainer.logger).__name__}"
            )
            self._said = True
        if not isinstance(trainer.logger, TensorBoardLogger) or not self._logging_epoch(trainer):
            return
        experiment = trainer.logger.experiment
        for name, parameter in module.named_parameters():
            experiment.add_histogram(f"parameters/{name}", parameter, trainer.current_epoch)
        for name, gradient in self._gradients.items():
            experiment.add_histogram(f"gradients/{name}", gradient, trainer.current_epoch)
        self._gradients = {}
