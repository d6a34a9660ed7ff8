"""Task logic shared by every model: loss, torchmetrics per stage, metric names, predict output.

A model subclasses `ClassifierModule`, builds its network and writes `forward`
(inputs to class scores); everything a run logs comes from here, so every model
logs the same names (DESIGN.md): `train/loss` (every `log_every_n_steps`
steps), `train/loss_epoch`, `train/acc`, `val/loss`, `val/acc`, `val/acc_best`,
`test/loss`, `test/acc`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

MONITOR = "val/loss"  # what "best" means for checkpoints: lowest validation loss, any task


def _inputs(batch: Any) -> Tensor:
    """The inputs of a batch that may or may not carry targets."""
    return batch[0] if isinstance(batch, (list, tuple)) else batch


class ClassifierModule(L.LightningModule):
    """Base of the classifiers: cross-entropy, accuracy per stage, best validation accuracy.

    Per training step it only updates running torchmetrics (no `.item()`, no sync)
    and calls `self.log` only on the steps the logger writes: each call costs
    about a millisecond on a CPU, more than a small model's whole step. Epoch
    metrics are computed, logged and reset once per epoch.

    Args:
        num_classes: number of classes (2 or more); `forward` returns that many scores.
        lr: learning rate of the default optimizer (Adam); its peak with `lr_schedule="one_cycle"`.
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" (warm up to `lr`, then anneal to almost 0 by the last
            step of the run: `OneCycleLR`) or "constant".
    """

    def __init__(
        self,
        num_classes: int,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: Literal["one_cycle", "constant"] = "one_cycle",
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be 0 or more, got {weight_decay}")
        if lr_schedule not in ("one_cycle", "constant"):
            raise ValueError(f"lr_schedule must be 'one_cycle' or 'constant', got {lr_schedule!r}")
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        accuracy = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.train_acc, self.val_acc, self.test_acc = accuracy.clone(), accuracy.clone(), accuracy.clone()
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # a resumed run keeps its best so far

    def compute_loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits, targets)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        inputs, targets = batch
        logits = self(inputs)
        loss = self.compute_loss(logits, targets)
        self.train_loss.update(loss.detach(), weight=len(targets))
        self.train_acc.update(logits.detach(), targets)
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def on_train_epoch_end(self) -> None:
        # Lightning computes logged metric objects over all processes, then resets them
        self.log_dict({"train/loss_epoch": self.train_loss, "train/acc": self.train_acc})

    def _evaluation_step(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        inputs, targets = batch
        logits = self(inputs)
        getattr(self, f"{stage}_loss").update(self.compute_loss(logits, targets), weight=len(targets))
        getattr(self, f"{stage}_acc").update(logits, targets)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:  # the sanity check's few batches say nothing about "best"
            self.val_acc_best.update(self.val_acc.compute())
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)
        self.log_dict({"val/loss": self.val_loss, "val/acc": self.val_acc}, prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self.log_dict({"test/loss": self.test_loss, "test/acc": self.test_acc})

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Class probabilities, one row per example."""
        return self(_inputs(batch)).softmax(dim=-1)

    def configure_optimizers(self) -> Any:
        """Adam on a one-cycle schedule over the whole run; `--optimizer` / `--lr_scheduler` replace it."""
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        total_steps = self.trainer.estimated_stepping_batches
        if self.lr_schedule == "constant" or not math.isfinite(total_steps):  # no known end: nothing to anneal to
            return optimizer
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=int(total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
