"""The tutorials' two plots in one figure: the training loss and the validation metric per epoch."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
from matplotlib.figure import Figure

from datamodules.contract import facts_of
from nnmodules import metrics
from nnmodules._lightning import is_last_batch
from nnmodules.callbacks.figures import EpochFigures


class LearningCurves(EpochFigures):
    """`curves/learning`, at the end of fit: the training loss and the validation metric of each epoch validated.

    The metric is the one the data's task is judged by (accuracy for classes, MSE for numbers). Both are read
    from the logged metrics when an epoch's validation ends (`train/loss_epoch` is logged before it); the
    curves so far travel in checkpoints, so a resumed run draws the whole run.

    Args:
        every_n_epochs: also draw the curves so far after every this many epochs; 0: only at the end.
    """

    def __init__(self, every_n_epochs: int = 0) -> None:
        super().__init__(every_n_epochs)
        self.epochs: list[int] = []
        self.train_loss: list[float] = []
        self.val_metric: list[float] = []
        self.metric = metrics.ACCURACY

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, module, stage)
        facts = facts_of(trainer.datamodule)
        self.metric = metrics.judged_by(facts.task) if facts else self.metric

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        logged = trainer.callback_metrics
        value = logged.get(metrics.name(metrics.VAL, self.metric))
        if value is None:
            return
        if self.epochs and self.epochs[-1] == trainer.current_epoch:  # validated again in this epoch: its latest
            del self.epochs[-1], self.train_loss[-1], self.val_metric[-1]
        loss = logged.get(metrics.TRAIN_LOSS_EPOCH) if is_last_batch(trainer) else None  # mid-epoch: not yet
        self.epochs.append(trainer.current_epoch)
        self.train_loss.append(math.nan if loss is None else float(loss))
        self.val_metric.append(float(value))

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "train_loss": self.train_loss, "val_metric": self.val_metric}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs, self.train_loss = list(state_dict["epochs"]), list(state_dict["train_loss"])
        self.val_metric = list(state_dict["val_metric"])

    def figures(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Figure]:
        figure = Figure(figsize=(9, 3.5))
        loss, metric = figure.subplots(1, 2)
        loss.plot(self.epochs, self.train_loss, marker=".")
        loss.set(xlabel="epoch", ylabel="training loss")
        metric.plot(self.epochs, self.val_metric, marker=".", color="tab:orange")
        metric.set(xlabel="epoch", ylabel=f"validation {'accuracy' if self.metric == metrics.ACCURACY else 'MSE'}")
        return {"curves/learning": figure}
