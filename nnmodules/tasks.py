"""What every model here shares: the task logic of `Classifier` and `Regressor`, for any network.

`Classifier(net, ...)` and `Regressor(net, ...)` take any `torch.nn.Module` as `net`
(from Python, or from YAML as `class_path` and `init_args`) and give it the loss,
torchmetrics per stage, best-so-far, logging, the NaN stop, an exact resume, the
predict output and the default optimizer. The presets (`MLPClassifier`, ...) are
these with a network of `nnmodules.nets`. Every model logs the same names
(docs/design.md): `train/loss` (every `log_every_n_steps` steps), `train/loss_epoch`,
`val/loss`, `test/loss`; classification adds `train/acc`, `val/acc`, `val/acc_best`,
`test/acc`; regression adds `val/mse`, `val/mae`, `val/r2`, `val/mse_best` and the
same for `test/`.

What a network gives, per batch of N examples:

- `Classifier`, "multiclass": one score (logit) per class, shape (N, num_classes);
- `Classifier`, "binary": one logit of class 1 per example, shape (N,) or (N, 1);
- `Regressor`: one number per example, shape (N,) or (N, 1).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.fabric.utilities import move_data_to_device
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric, MetricCollection

from nnmodules._lightning import FastHookNames, epoch_position, logs_this_step, trainer_of
from nnmodules.checkpoints import Resumable, hyperparameters
from nnmodules.choices import check_choice
from nnmodules.schedules import announce, planned_steps, replan_one_cycle

MONITOR = "val/loss"  # what "best" means for checkpoints: lowest validation loss, any task
EPOCH_STATE = "epoch_state"  # a mid-epoch checkpoint's running training metrics, for an exact resume
PENDING_STEPS = 32  # training steps gathered into one update of the training metrics
Task = Literal["multiclass", "binary"]
Schedule = Literal["one_cycle", "constant"]


def output_width(task: str, num_classes: int | None) -> int:
    """How many outputs per example a network gives for a data set's task.

    One score per class, or one number (a binary logit, a regression).
    """
    return num_classes if task == "multiclass" and num_classes else 1


def inputs_of(batch: Any) -> Tensor:
    """The inputs of a batch that may or may not carry targets."""
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def one_per_example(outputs: Tensor) -> Tensor:
    """(N, 1) outputs as (N,): a network's single output column is one number per example."""
    return outputs.squeeze(1) if outputs.dim() == 2 and outputs.shape[1] == 1 else outputs


class TaskModule(Resumable, FastHookNames, metaclass=abc.ABCMeta):
    """What every model shares: the network, its steps, what they log, the optimizer and hyperparameters.

    A training step keeps its loss and outputs and updates the running
    torchmetrics with `PENDING_STEPS` steps at a time: one update costs about
    as much as a small model's whole step, and on a GPU it would wait for the
    step to finish. `self.log` runs only on the steps the logger writes.
    Epoch metrics are computed, logged and reset once per epoch. Subclasses
    give `compute_loss`, `output_shape` and the metrics.

    The hyperparameters (`hparams`, `hparams.yaml`, TensorBoard's HParams tab) are the
    arguments of the model class's `__init__`; a network given as `net` is kept as
    its config (`class_path`, `init_args`: `nnmodules.checkpoints.net_config`), so that
    `load_from_checkpoint(path)` builds it again. A network that cannot be written so
    trains only where no checkpoint is written: a fit that would write one is refused
    before its first step, and so is `trainer.save_checkpoint`.

    Args:
        net: the network.
        metrics: the task's metrics by name (e.g. {"acc": ...}), cloned for each stage.
        train_metrics: which of them to track on the training split too.
        lr: learning rate of the default optimizer (Adam); its peak with `lr_schedule="one_cycle"`.
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" (warm up to `lr`, then anneal to almost 0 by the last
            step of the run: `OneCycleLR`) or "constant".
    """

    data_tasks: tuple[str, ...] = ()  # the data modules' `task` kinds this model learns
    output_shape: tuple[int, ...] = ()  # what `forward` gives per example
    output_hint = ""  # how to build a network that gives it
    loss_scale = 1.0  # the loss as logged (train/, val/, test/loss) is the loss trained on times this

    def __init__(
        self,
        net: nn.Module,
        metrics: dict,
        train_metrics: Sequence[str],
        lr: float,
        weight_decay: float,
        lr_schedule: Schedule,
    ) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise ValueError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be 0 or more, got {weight_decay}")
        check_choice("lr_schedule", lr_schedule, Schedule)
        settings, self.unrebuildable = hyperparameters(self, net)  # unrebuildable: why no checkpoint could build net
        self.save_hyperparameters(settings)
        self.net = net
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()

        def collection(stage: str, names: Sequence[str]) -> MetricCollection:
            return MetricCollection({n: metrics[n].clone() for n in names}, prefix=f"{stage}/", compute_groups=False)

        self.train_metrics = collection("train", train_metrics)
        self.val_metrics, self.test_metrics = collection("val", list(metrics)), collection("test", list(metrics))
        # this epoch's steps not yet in the metrics (flushed at its end at the latest): loss, outputs, targets, batch
        self._pending: list[tuple[Tensor, Tensor | None, Tensor, int]] = []
        self._default_optimizer: torch.optim.Optimizer | None = None  # made by configure_optimizers, not --optimizer

    def setup(self, stage: str) -> None:
        """Checks the model against the data before any step (see `check_data`); evaluation sums in float64.

        Evaluation metrics add up their batches in float64, where adding float32 batch sums is exact: their
        order does not matter, so under DDP (each rank a share of the batches) they equal one process's.
        """
        if self.trainer.strategy.root_device.type != "mps":  # MPS has no float64
            for metric in (self.val_loss, self.test_loss, self.val_metrics, self.test_metrics):
                metric.set_dtype(torch.float64)
        if self.unrebuildable and stage == "fit" and self.trainer.checkpoint_callbacks:
            raise ValueError(f"no checkpoint could build this network again: {self.unrebuildable}")
        if self.trainer.datamodule is not None:
            self.check_data(self.trainer.datamodule)

    def check_data(self, data: Any) -> None:
        """Refuses data of another task, and a network that does not fit the data.

        A network that cannot take the data's inputs or gives outputs of another shape than the task needs (two rows
        of zeros of the data's `input_shape` go through it); sets `example_input_array` (TensorBoard's graph) from
        that shape when the model has none.
        """
        name = type(data).__name__
        if getattr(data, "task", None) is not None and data.task not in self.data_tasks:
            raise ValueError(
                f"{name} is a {data.task} task, which a {type(self).__name__} does not learn: use "
                f"{'a Regressor (e.g. MLPRegressor)' if data.task == 'regression' else 'a Classifier'}"
            )
        expected, given = getattr(self.net, "input_dim", None), getattr(data, "num_features", None)
        if expected is not None and given is not None and expected != given:
            raise ValueError(
                f"the model takes {expected} input features (input_dim) but {name} gives {given} "
                f"(num_features): build it with input_dim={given}, or leave input_dim to the CLI, which links it"
            )
        shape = getattr(data, "input_shape", None)
        if shape is None:
            return
        example = torch.zeros(2, *shape, device=self.device)
        if self.example_input_array is None:
            self.example_input_array = example[:1]
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                outputs = self(example)
        except RuntimeError as error:
            raise ValueError(
                f"the network ({type(self.net).__name__}) cannot take the inputs of {name}, of shape {tuple(shape)} "
                f"per example ({str(error).splitlines()[0]}): build it for them, or leave its widths to the CLI"
            ) from error
        finally:
            self.train(was_training)
        if tuple(outputs.shape) != (2, *self.output_shape):
            raise ValueError(
                f"the network ({type(self.net).__name__}) gives outputs of shape {tuple(outputs.shape[1:])} per "
                f"example, where a {type(self).__name__} needs {self.output_shape}: {self.output_hint}"
            )

    def forward(self, inputs: Tensor) -> Tensor:
        return self.net(inputs)

    @abc.abstractmethod
    def compute_loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """The loss to train on, from the network's outputs and the batch's targets."""

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
        if logs_this_step(self.trainer):
            # not `prog_bar`: Lightning would read it back after every step, waiting for a GPU each time;
            # the project's progress bar (runs.LitProgressBar) shows it when it redraws
            self.log("train/loss", loss * self.loss_scale, on_step=True, on_epoch=False)

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
        self.train_loss.update(losses * self.loss_scale, weight=sizes)
        if self.train_metrics:
            self.train_metrics.update(*self.metric_inputs(torch.cat(outputs), torch.cat(targets)))

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
        """Checks the pending steps first: no checkpoint of a diverged model is written.

        Mid-epoch, keeps the epoch's running training metrics and pending steps as they are (not added up early, which
        would round the sums otherwise), so that a resumed run ends with the very metrics of an uninterrupted one.
        """
        if self.unrebuildable:
            raise ValueError(f"no checkpoint could build this network again: {self.unrebuildable}")
        if self._pending:
            self.check_finite()
        super().on_save_checkpoint(checkpoint)
        trainer = trainer_of(self)
        if trainer is not None and trainer.training and epoch_position(trainer)[1]:
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
        """After a resume: the restored steps to the model's device, the run's settings to the optimizer.

        The settings (learning rate, schedule length) go to the default optimizer, whose state the checkpoint held.
        """
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
        if not self.train_loss.update_count:  # no step: an epoch's end run again on resuming from its checkpoint
            return
        # Lightning computes logged metric objects over all processes, then resets them
        self.log("train/loss_epoch", self.train_loss)
        self.log_dict(self.train_metrics)

    def _evaluation_step(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        inputs, targets = batch
        outputs = self(inputs)
        loss = self.compute_loss(outputs, targets) * self.loss_scale
        getattr(self, f"{stage}_loss").update(loss, weight=len(targets))
        getattr(self, f"{stage}_metrics").update(*self.metric_inputs(outputs, targets))

    def metric_inputs(self, outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """What the validation and test metrics compare."""
        return outputs, targets

    def on_validation_epoch_start(self) -> None:
        self.update_training_metrics()  # a diverged training loss stops a fit before its weights are evaluated

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
        """Adam, on a one-cycle schedule over the whole run unless "constant".

        `--optimizer` / `--lr_scheduler` replace it. On CPUs and CUDA GPUs, torch's fused Adam: the same update in one
        kernel instead of one per operation and parameter.
        """
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in self.parameters())
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=fused or None)
        self._default_optimizer = optimizer
        total_steps = self.trainer.estimated_stepping_batches  # a resumed run's is re-planned in on_train_start
        if self.lr_schedule == "constant" or not math.isfinite(total_steps):  # no known end: nothing to anneal to
            return optimizer
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=int(total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
