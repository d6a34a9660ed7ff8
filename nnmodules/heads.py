"""Task logic shared by every model: loss, torchmetrics per stage, metric names, predict output.

A model subclasses `ClassifierModule` or `RegressorModule`, builds its network
and writes `forward`; everything a run logs comes from here, so every model logs
the same names (docs/design.md): `train/loss` (every `log_every_n_steps` steps),
`train/loss_epoch`, `val/loss`, `test/loss`; classification adds `train/acc`,
`val/acc`, `val/acc_best`, `test/acc`; regression adds `val/mse`, `val/mae`,
`val/r2` and the same for `test/`.

Classification has two kinds, told apart by what `forward` returns:

- "multiclass": one score (logit, or log-probability) per class, shape (N, C);
- "binary": the probability of the positive class (class 1), shape (N,).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.fabric.utilities import move_data_to_device
from torch import Tensor
from torchmetrics import (
    MaxMetric,
    MeanAbsoluteError,
    MeanMetric,
    MeanSquaredError,
    Metric,
    MetricCollection,
    MinMetric,
    R2Score,
)
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy

from nnmodules._lightning import epoch_position
from nnmodules.runs import Resumable
from nnmodules.schedules import announce, planned_steps, replan_one_cycle

MONITOR = "val/loss"  # what "best" means for checkpoints: lowest validation loss, any task
EPOCH_STATE = "epoch_state"  # a mid-epoch checkpoint's running training metrics, for an exact resume
PENDING_STEPS = 32  # training steps gathered into one update of the training metrics
Task = Literal["multiclass", "binary"]
Schedule = Literal["one_cycle", "constant"]


def _inputs(batch: Any) -> Tensor:
    """The inputs of a batch that may or may not carry targets."""
    return batch[0] if isinstance(batch, (list, tuple)) else batch


class TaskModule(Resumable):
    """What every model shares: the training and evaluation steps, what they log, the default optimizer.

    A training step keeps its loss and outputs and updates the running
    torchmetrics with `PENDING_STEPS` steps at a time: one update costs about
    as much as a small model's whole step (hundreds of microseconds on a CPU),
    and on a GPU it would wait for the step to finish. `self.log` runs only on
    the steps the logger writes (each call costs about a millisecond on a CPU).
    Epoch metrics are computed, logged and reset once per epoch. Subclasses
    give `compute_loss` and one `MetricCollection` per stage.

    Args:
        metrics: the task's metrics by name (e.g. {"acc": ...}), cloned for each stage.
        train_metrics: which of them to track on the training split too.
        lr: learning rate of the default optimizer (Adam); its peak with `lr_schedule="one_cycle"`.
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" (warm up to `lr`, then anneal to almost 0 by the last
            step of the run: `OneCycleLR`) or "constant".
    """

    def __init__(
        self, metrics: dict, train_metrics: Sequence[str], lr: float, weight_decay: float, lr_schedule: Schedule
    ) -> None:
        super().__init__()
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be 0 or more, got {weight_decay}")
        if lr_schedule not in ("one_cycle", "constant"):
            raise ValueError(f"lr_schedule must be 'one_cycle' or 'constant', got {lr_schedule!r}")
        self.lr, self.weight_decay, self.lr_schedule = lr, weight_decay, lr_schedule
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()

        def collection(stage: str, names: Sequence[str]) -> MetricCollection:
            return MetricCollection({n: metrics[n].clone() for n in names}, prefix=f"{stage}/", compute_groups=False)

        self.train_metrics = collection("train", train_metrics)
        self.val_metrics, self.test_metrics = collection("val", list(metrics)), collection("test", list(metrics))
        # this epoch's steps not yet in the metrics (flushed at its end at the latest): loss, outputs, targets, batch
        self._pending: list[tuple[Tensor, Tensor | None, Tensor, int]] = []
        self._default_optimizer: torch.optim.Optimizer | None = None  # made by configure_optimizers, not --optimizer

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning names the running hook in `_current_fx_name` around every hook call, about 45 times a
        # training step; `nn.Module.__setattr__` would first look for the name among parameters, buffers and
        # submodules: 3 us a time on a 2-core CI machine, against 0.3 us. A string is none of those.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def setup(self, stage: str) -> None:
        """Checks, before any step, that the model's input width is the data's; evaluation sums in float64.

        Evaluation metrics add up their batches in float64, where adding float32 batch sums is exact: their
        order does not matter, so under DDP (each rank a share of the batches) they equal one process's.
        """
        if self.trainer.strategy.root_device.type != "mps":  # MPS has no float64
            for metric in (self.val_loss, self.test_loss, self.val_metrics, self.test_metrics):
                metric.set_dtype(torch.float64)
        data = self.trainer.datamodule
        expected, given = self.hparams.get("input_dim"), getattr(data, "num_features", None)
        if expected is not None and given is not None and expected != given:
            raise ValueError(
                f"the model takes {expected} input features (input_dim) but {type(data).__name__} gives {given} "
                f"(num_features): build it with input_dim={given}, or leave input_dim to the CLI, which links it"
            )

    def compute_loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        inputs, targets = batch
        outputs = self(inputs)
        loss = self.compute_loss(outputs, targets)
        self.track_training(loss, outputs, targets, batch_idx)
        return loss

    def track_training(self, loss: Tensor, outputs: Tensor, targets: Tensor, batch_idx: int) -> None:
        """Running training metrics; `train/loss` is logged only on the steps the logger writes."""
        self._pending.append((loss.detach(), outputs.detach() if self.train_metrics else None, targets, batch_idx))
        if len(self._pending) >= PENDING_STEPS:
            self.update_training_metrics()
        # the condition Lightning's own callbacks use (LearningRateMonitor): no public equivalent
        if self.trainer._logger_connector.should_update_logs:
            # not `prog_bar`: Lightning would read it back after every step, waiting for a GPU each time;
            # the project's progress bar (runs.LitProgressBar) shows it when it redraws
            self.log("train/loss", loss, on_step=True, on_epoch=False)

    def update_training_metrics(self) -> None:
        """Adds the pending training steps to `train_loss` and `train_metrics`: call it before computing them.

        Raises:
            FloatingPointError: a pending loss is NaN or infinite (checked here, not at every step, where it
                would make the host wait for the device each time); naming its epoch and batch.
        """
        if not self._pending:
            return
        losses = self.check_finite()
        _, outputs, targets, _ = zip(*self._pending, strict=True)
        self._pending = []
        sizes = torch.tensor([len(batch) for batch in targets], dtype=losses.dtype, device=losses.device)
        self.train_loss.update(losses, weight=sizes)
        if self.train_metrics:
            self.train_metrics.update(torch.cat(outputs), torch.cat(targets))

    def check_finite(self) -> Tensor:
        """The pending steps' losses, stacked; raises FloatingPointError (see `update_training_metrics`)."""
        losses = torch.stack([loss for loss, *_ in self._pending])
        finite = torch.isfinite(losses)
        if not finite.all():
            first = int((~finite).nonzero()[0])
            raise FloatingPointError(
                f"the training loss became {losses[first].item()} at epoch {self.current_epoch}, "
                f"batch {self._pending[first][3]}: training stopped, and no checkpoint of the diverged model was "
                f"written (an earlier last.ckpt is the last good state); "
                f"lower the learning rate, or look for NaN or infinite values in the data"
            )
        return losses

    # -- checkpoints and resuming: the epoch under way, and the settings of the resumed run --

    epoch_buffers: tuple[str, ...] = ("_pending",)  # per-step values of the epoch under way, kept in order

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Checks the pending steps first: no checkpoint of a diverged model is written. Mid-epoch, keeps the
        epoch's running training metrics and pending steps as they are (not added up early, which would
        round the sums otherwise), so that a resumed run ends with the very metrics of an uninterrupted one."""
        if self._pending:
            self.check_finite()
        super().on_save_checkpoint(checkpoint)
        if self._trainer is not None and self.trainer.training and epoch_position(self.trainer)[1]:
            metrics = [(n, m) for n, m in self.named_modules() if isinstance(m, Metric) and n.startswith("train_")]
            states = {f"{name}.{key}": value for name, metric in metrics for key, value in metric.metric_state.items()}
            checkpoint[EPOCH_STATE] = {"metrics": states, **{name: getattr(self, name) for name in self.epoch_buffers}}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get(EPOCH_STATE)
        if state:
            self.load_state_dict(state["metrics"], strict=False)  # the metric objects load their own states
            for name in self.epoch_buffers:
                setattr(self, name, [tuple(step) if isinstance(step, list) else step for step in state[name]])

    def on_train_start(self) -> None:
        """After a resume: the epoch's restored steps to the model's device, and the run's current settings
        (learning rate, schedule length) applied to the default optimizer, whose state the checkpoint held."""
        for name in self.epoch_buffers:
            setattr(self, name, move_data_to_device(getattr(self, name), self.device))
        step, optimizer = self.trainer.global_step, self._default_optimizer
        if not step or optimizer is None or self.trainer.optimizers[0] is not optimizer:
            return  # a new run, or an optimizer of the command line's (--optimizer), restored as it was
        schedules = [config.scheduler for config in self.trainer.lr_scheduler_configs]
        if schedules and isinstance(schedules[0], torch.optim.lr_scheduler.OneCycleLR):
            announce(replan_one_cycle(schedules[0], self.lr, int(planned_steps(self.trainer)), step), step)
        elif not schedules:
            before = {(group["lr"], group["weight_decay"]) for group in optimizer.param_groups}
            for group in optimizer.param_groups:
                group["lr"], group["weight_decay"] = self.lr, self.weight_decay
            if before != {(self.lr, self.weight_decay)}:
                (lr, decay), *_ = before
                announce(f"learning rate {lr:g} -> {self.lr:g}, weight decay {decay:g} -> {self.weight_decay:g}", step)

    def on_train_epoch_end(self) -> None:
        self.update_training_metrics()
        # Lightning computes logged metric objects over all processes, then resets them
        self.log("train/loss_epoch", self.train_loss)
        self.log_dict(self.train_metrics)

    def _evaluation_step(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        inputs, targets = batch
        outputs = self(inputs)
        getattr(self, f"{stage}_loss").update(self.compute_loss(outputs, targets), weight=len(targets))
        getattr(self, f"{stage}_metrics").update(*self.metric_inputs(outputs, targets))

    def metric_inputs(self, outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """What the validation and test metrics compare."""
        return outputs, targets

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self.log("val/loss", self.val_loss, prog_bar=True)
        self.log_dict(self.val_metrics, prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self.log("test/loss", self.test_loss)
        self.log_dict(self.test_metrics)

    def configure_optimizers(self) -> Any:
        """Adam, on a one-cycle schedule over the whole run unless "constant"; `--optimizer` / `--lr_scheduler`
        replace it. On CPUs and CUDA GPUs, torch's fused Adam: the same update in one kernel instead of one
        per operation and parameter (about half the step on a CPU)."""
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in self.parameters())
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=fused or None)
        self._default_optimizer = optimizer
        total_steps = self.trainer.estimated_stepping_batches  # a resumed run's is re-planned in on_train_start
        if self.lr_schedule == "constant" or not math.isfinite(total_steps):  # no known end: nothing to anneal to
            return optimizer
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=int(total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class ClassifierModule(TaskModule):
    hparams_metrics = ("val/acc_best", "test/acc")  # what TensorBoard's HParams tab compares runs by

    """Base of the classifiers: cross-entropy, accuracy per stage, best validation accuracy, class probabilities.

    Args:
        num_classes: number of classes (2 or more).
        task: "multiclass" (`forward` gives a score per class) or "binary" (`forward`
            gives the probability of class 1).
        class_weights: one weight per class for the loss (e.g. a data module's
            "balanced" weights); None weighs every example alike.
        lr, weight_decay, lr_schedule: the default optimizer's, see `TaskModule`.
    """

    def __init__(
        self,
        num_classes: int,
        task: Task = "multiclass",
        class_weights: Sequence[float] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "one_cycle",
    ) -> None:
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes} (a classifier needs classes)")
        if task not in ("multiclass", "binary") or (task == "binary" and num_classes != 2):
            raise ValueError(f"task must be 'multiclass', or 'binary' with 2 classes; got {task!r}, {num_classes}")
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(f"class_weights needs one weight per class ({num_classes}), got {list(class_weights)}")
        if task == "binary":
            accuracy = BinaryAccuracy(validate_args=False)
        else:
            accuracy = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        super().__init__({"acc": accuracy}, ["acc"], lr, weight_decay, lr_schedule)
        self.task, self.num_classes = task, num_classes
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)  # rebuilt from the hyperparameters
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # a resumed run keeps its best so far

    def compute_loss(self, scores: Tensor, targets: Tensor) -> Tensor:
        """Cross-entropy on the scores (binary: on the probability), weighted by `class_weights`."""
        if self.task == "binary":
            weight = None if self.class_weights is None else self.class_weights[targets]
            return F.binary_cross_entropy(scores, targets.to(scores.dtype), weight=weight)
        return F.cross_entropy(scores, targets, weight=self.class_weights)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:  # the sanity check's few batches say nothing about "best"
            self.val_acc_best.update(self.val_metrics["acc"].compute())
            # the same on every rank (val_metrics are gathered): "max" keeps it exact under DDP
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True, reduce_fx="max")
        super().on_validation_epoch_end()

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Class probabilities, one row per example and one column per class."""
        scores = self(_inputs(batch))
        if self.task == "binary":
            return torch.stack([1 - scores, scores], dim=1)
        return scores.softmax(dim=-1)


class RegressorModule(TaskModule):
    hparams_metrics = ("val/mse_best", "test/mse")  # what TensorBoard's HParams tab compares runs by

    """Base of the regressors: mean squared error, MSE/MAE/R² on validation and test, predictions.

    `forward` returns one number per example, shape (N,), as the targets are.
    When the data feeds standardised targets, `(target - target_mean) / target_std`,
    the loss stays on that scale, while the metrics and predictions are in the
    target's own units.

    Args:
        target_mean, target_std: how the data scaled the targets (linked from the data module by the CLI).
        optimizer: "adam" (with `lr`, `weight_decay`, `lr_schedule`, see `TaskModule`) or "lbfgs":
            quasi-Newton steps with a line search (step `lr`, usually 1), for small full-batch problems,
            where it reaches the least-squares optimum that a hundred Adam steps only approach.
        lr, weight_decay, lr_schedule: the optimizer's, see `TaskModule`.
    """

    def __init__(
        self,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        optimizer: Literal["adam", "lbfgs"] = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "constant",
    ) -> None:
        if not target_std > 0:
            raise ValueError(f"target_std must be positive, got {target_std}")
        if optimizer not in ("adam", "lbfgs"):
            raise ValueError(f"optimizer must be 'adam' or 'lbfgs', got {optimizer!r}")
        metrics = {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()}
        super().__init__(metrics, [], lr, weight_decay, lr_schedule)
        self.target_mean, self.target_std, self.optimizer_name = target_mean, target_std, optimizer
        self.val_mse_best = MinMetric()
        self.val_mse_best.persistent(True)  # a resumed run keeps its best so far

    def compute_loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(predictions, targets)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:  # the sanity check's few batches say nothing about "best"
            self.val_mse_best.update(self.val_metrics["mse"].compute())
            self.log("val/mse_best", self.val_mse_best.compute(), sync_dist=True, reduce_fx="min")
        super().on_validation_epoch_end()

    def in_target_units(self, values: Tensor) -> Tensor:
        return values * self.target_std + self.target_mean

    def metric_inputs(self, outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        return self.in_target_units(outputs), self.in_target_units(targets)

    def configure_optimizers(self) -> Any:
        if self.optimizer_name == "lbfgs":
            return torch.optim.LBFGS(self.parameters(), lr=self.lr, max_iter=20, line_search_fn="strong_wolfe")
        return super().configure_optimizers()

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Predictions in the target's units, one per example."""
        return self.in_target_units(self(_inputs(batch)))
