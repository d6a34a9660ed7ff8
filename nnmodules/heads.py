"""Task logic shared by every model: loss, torchmetrics per stage, metric names, predict output.

A model subclasses `ClassifierModule`, builds its network and writes `forward`;
everything a run logs comes from here, so every model logs the same names
(DESIGN.md): `train/loss` (every `log_every_n_steps` steps), `train/loss_epoch`,
`train/acc`, `val/loss`, `val/acc`, `val/acc_best`, `test/loss`, `test/acc`.

Two task kinds, told apart by what `forward` returns:

- "multiclass": one score (logit, or log-probability) per class, shape (N, C);
- "binary": the probability of the positive class (class 1), shape (N,).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy

MONITOR = "val/loss"  # what "best" means for checkpoints: lowest validation loss, any task
Task = Literal["multiclass", "binary"]


def _inputs(batch: Any) -> Tensor:
    """The inputs of a batch that may or may not carry targets."""
    return batch[0] if isinstance(batch, (list, tuple)) else batch


class ClassifierModule(L.LightningModule):
    """Base of the classifiers: loss, accuracy per stage, best validation accuracy, predictions.

    Per training step it only updates running torchmetrics (no `.item()`, no sync)
    and calls `self.log` only on the steps the logger writes: each call costs
    about a millisecond on a CPU, more than a small model's whole step. Epoch
    metrics are computed, logged and reset once per epoch.

    Args:
        num_classes: number of classes (2 or more).
        task: "multiclass" (`forward` gives a score per class) or "binary" (`forward`
            gives the probability of class 1).
        class_weights: one weight per class for the loss (e.g. a data module's
            "balanced" weights); None weighs every example alike.
        lr: learning rate of the default optimizer (Adam); its peak with `lr_schedule="one_cycle"`.
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" (warm up to `lr`, then anneal to almost 0 by the last
            step of the run: `OneCycleLR`) or "constant".
    """

    def __init__(
        self,
        num_classes: int,
        task: Task = "multiclass",
        class_weights: Sequence[float] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: Literal["one_cycle", "constant"] = "one_cycle",
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if task not in ("multiclass", "binary") or (task == "binary" and num_classes != 2):
            raise ValueError(f"task must be 'multiclass', or 'binary' with 2 classes; got {task!r}, {num_classes}")
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(f"class_weights needs one weight per class ({num_classes}), got {list(class_weights)}")
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be 0 or more, got {weight_decay}")
        if lr_schedule not in ("one_cycle", "constant"):
            raise ValueError(f"lr_schedule must be 'one_cycle' or 'constant', got {lr_schedule!r}")
        self.task = task
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)  # rebuilt from the hyperparameters
        if task == "binary":
            accuracy = BinaryAccuracy(validate_args=False)
        else:
            accuracy = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.train_acc, self.val_acc, self.test_acc = accuracy.clone(), accuracy.clone(), accuracy.clone()
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # a resumed run keeps its best so far

    def compute_loss(self, scores: Tensor, targets: Tensor) -> Tensor:
        """Cross-entropy on the scores (binary: on the probability), weighted by `class_weights`."""
        if self.task == "binary":
            weight = None if self.class_weights is None else self.class_weights[targets]
            return F.binary_cross_entropy(scores, targets.to(scores.dtype), weight=weight)
        return F.cross_entropy(scores, targets, weight=self.class_weights)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        inputs, targets = batch
        scores = self(inputs)
        loss = self.compute_loss(scores, targets)
        self.track_training(loss, scores, targets)
        return loss

    def track_training(self, loss: Tensor, scores: Tensor, targets: Tensor) -> None:
        """Running training metrics; `train/loss` is logged only on the steps the logger writes."""
        self.train_loss.update(loss.detach(), weight=len(targets))
        self.train_acc.update(scores.detach(), targets)
        # the condition Lightning's own callbacks use (LearningRateMonitor): no public equivalent
        if self.trainer._logger_connector.should_update_logs:
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)

    def on_train_epoch_end(self) -> None:
        # Lightning computes logged metric objects over all processes, then resets them
        self.log_dict({"train/loss_epoch": self.train_loss, "train/acc": self.train_acc})

    def _evaluation_step(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        inputs, targets = batch
        scores = self(inputs)
        getattr(self, f"{stage}_loss").update(self.compute_loss(scores, targets), weight=len(targets))
        getattr(self, f"{stage}_acc").update(scores, targets)

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
        """Class probabilities, one row per example and one column per class."""
        scores = self(_inputs(batch))
        if self.task == "binary":
            return torch.stack([1 - scores, scores], dim=1)
        return scores.softmax(dim=-1)

    def configure_optimizers(self) -> Any:
        """Adam on a one-cycle schedule over the whole run; `--optimizer` / `--lr_scheduler` replace it."""
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        total_steps = self.trainer.estimated_stepping_batches
        if self.lr_schedule == "constant" or not math.isfinite(total_steps):  # no known end: nothing to anneal to
            return optimizer
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=int(total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
