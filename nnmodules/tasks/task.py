"""What every model here shares: the task logic of `Classifier` and `Regressor`, for any network.

`Classifier(net, ...)` and `Regressor(net, ...)` take a network (an object, its class, any callable that
builds one, or its config) and give it the loss, torchmetrics per stage, best-so-far, logging, the NaN stop,
an exact resume, the predict output and the default optimizer. The presets (`MLPClassifier`, ...) are these
with a network of `nnmodules.nets`. Every model logs the names of `nnmodules.metrics`.

What a model was not given that its data knows (widths, classes, the target's scale) it takes from the data's
facts (`datamodules.contract.DataFacts`) when the Trainer sets it up, and keeps in its hyperparameters, so
that `load_from_checkpoint(path)` builds it again with nothing else. What it was given is checked against them.

What a network gives, per batch of N examples:

- `Classifier`, "multiclass": one score (logit) per class, shape (N, num_classes);
- `Classifier`, "binary": one logit of class 1 per example, shape (N,) or (N, 1);
- `Regressor`: one number per example, shape (N,) or (N, 1).

A network of k members in one (`nets.Ensemble`, such as `nets.TabM`) gives that for each member, shape (N, k, ...):
each member is trained on its own outputs, and the model answers with the members together (`together`).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric, MetricCollection

from datamodules.arguments import KeepsArguments
from datamodules.choices import check_choice
from datamodules.contract import DataFacts, facts_of
from datamodules.errors import UserError
from nnmodules import metrics
from nnmodules._lightning import FastHookNames, is_last_batch, logs_this_step
from nnmodules.nets.configs import builder_of
from nnmodules.nets.ensemble import Ensemble
from nnmodules.tasks.building import BuiltForData
from nnmodules.tasks.checkpoints import RECORD
from nnmodules.tasks.resume import Resumable

PENDING_STEPS = 32  # training steps gathered into one update of the training metrics
Schedule = Literal["one_cycle", "constant"]


def inputs_of(batch: Any) -> Tensor:
    """The inputs of a batch that may or may not carry targets."""
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def one_per_example(outputs: Tensor, members: bool = False) -> Tensor:
    """(N, 1) outputs as (N,): a network's single output column is one number per example.

    `members`: an ensemble network's outputs, (N, k, 1) as (N, k).
    """
    dims = 3 if members else 2
    return outputs.squeeze(-1) if outputs.dim() == dims and outputs.shape[-1] == 1 else outputs


class Diverged(UserError, FloatingPointError):
    """The training loss became NaN or infinite: the settings (learning rate) or the data are at fault."""


class TaskModule(KeepsArguments, BuiltForData, Resumable, FastHookNames, metaclass=abc.ABCMeta):
    """What every model shares: the network, its steps, what they log, the optimizer and hyperparameters.

    A model is built (network, metrics) as soon as what it needs is known: in `__init__` from its arguments, or
    when the Trainer sets it up, from its data's facts. Its hyperparameters (`hparams`, `hparams.yaml`,
    TensorBoard's HParams tab, the checkpoints) are the arguments of its class's `__init__` as given, with what
    the data filled in, and a network as its config (`class_path`, `init_args`). A network a checkpoint could
    not build again is refused before a fit writes checkpoints; one defined in `__main__` is said to load only
    where it is defined.

    A training step keeps its loss and outputs and updates the running torchmetrics with `PENDING_STEPS` steps
    at a time: one update costs about as much as a small model's whole step, and on a GPU it would wait for
    the step to finish. `self.log` runs only on the steps the logger writes. Subclasses give the task's
    arguments from the data (`take_facts`), its metrics (`task_metrics`), `compute_loss` and `output_shape`.

    Args:
        net: the network; its class or any callable that builds it (given the data's widths it names);
            or its config, as a checkpoint keeps it. None: the model builds its own (`make_network`).
        lr: learning rate of the default optimizer (Adam); its peak with `lr_schedule="one_cycle"`.
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" (warm up to `lr`, then anneal to almost 0 by the last
            step of the run: `OneCycleLR`) or "constant".
        betas: Adam's decay rates of its running means of the gradient and of its square (the one-cycle
            schedule cycles the first from 0.95 to 0.85 and back).
    """

    loss_scale = 1.0  # the loss as logged (train/, val/, test/loss) is the loss trained on times this
    epoch_buffers = ("_pending",)

    def __init__(
        self,
        net: Any,
        lr: float,
        weight_decay: float,
        lr_schedule: Schedule,
        betas: Sequence[float] = (0.9, 0.999),
    ) -> None:
        super().__init__()
        if lr <= 0:
            raise UserError(f"lr must be positive, got {lr}")
        if weight_decay < 0:
            raise UserError(f"weight_decay must be 0 or more, got {weight_decay}")
        check_choice("lr_schedule", lr_schedule, Schedule)
        if len(betas) != 2 or not all(0 <= beta < 1 for beta in betas):
            raise UserError(f"betas must be two numbers in [0, 1), got {list(betas)}")
        self.lr, self.weight_decay, self.lr_schedule = lr, weight_decay, lr_schedule
        self.betas = (float(betas[0]), float(betas[1]))
        self.facts: DataFacts | None = None  # the data's, once set up (or from a checkpoint)
        self.from_data: dict[str, Any] = {}  # the arguments the data filled
        self.builder = None if net is None else builder_of(net)  # a network to build; None: one given, or our own
        self.net_config: dict[str, Any] | None = None  # how a checkpoint builds the network again
        self.net_given = isinstance(net, nn.Module)
        if self.net_given:
            self.net = net
        # this epoch's steps not yet in the metrics (flushed at its end at the latest): loss, outputs, targets, batch
        self._pending: list[tuple[Tensor, Tensor | None, Tensor, int]] = []
        self.built = False

    @abc.abstractmethod
    def task_metrics(self) -> tuple[dict[str, Metric], Sequence[str]]:
        """The task's metrics by name (each cloned for each stage), and which of them to track in training too."""

    def make_metrics(self) -> None:
        """The losses and the task's metrics per stage, once: after the network, which the model summary lists first."""
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        task_metrics, in_training = self.task_metrics()

        def collection(stage: str, names: Sequence[str]) -> MetricCollection:
            cloned = {name: task_metrics[name].clone() for name in names}
            return MetricCollection(cloned, prefix=f"{stage}/", compute_groups=False)

        self.train_metrics = collection(metrics.TRAIN, in_training)
        self.val_metrics = collection(metrics.VAL, list(task_metrics))
        self.test_metrics = collection(metrics.TEST, list(task_metrics))

    def setup(self, stage: str) -> None:
        """Builds the model from its data's facts (if not built yet), then checks it against them.

        Evaluation metrics add up their batches in float64, where adding float32 batch sums is exact: their
        order does not matter, so under DDP (each rank a share of the batches) they equal one process's.
        """
        data = self.trainer.datamodule
        facts = facts_of(data)
        if facts is not None:
            self.check_task(facts, data)  # first: a model builds its network for its task
        if not self.built:
            if facts is None and not self.can_build(None):
                raise UserError(
                    f"{type(self).__name__} takes the widths it was not given from its data's facts, and "
                    f"{type(self.trainer.datamodule).__name__ if self.trainer.datamodule else 'the data given'} "
                    "publishes none: give them (input_dim, num_classes, ...), or use a data module of datamodules"
                )
            self.build(facts)
        elif facts is not None:
            self.take_facts(facts)  # checks what it was built with against the data; takes what it may
            self.record_hyperparameters()
        if facts is not None:
            self.facts = facts
            self.check_data(facts, type(data).__name__)
        if self.trainer.strategy.root_device.type != "mps":  # MPS has no float64
            for metric in (self.val_loss, self.test_loss, self.val_metrics, self.test_metrics):
                metric.set_dtype(torch.float64)
        if stage == "fit" and self.trainer.checkpoint_callbacks:
            self.refuse_an_unsaveable_network()

    # -- steps, metrics, logging --

    def forward(self, inputs: Tensor, members: bool = False) -> Tensor:
        """The model's outputs (see the module); `members`: an ensemble network's members' own, (N, k, ...)."""
        if not self.built and not self.net_given:
            raise UserError(
                f"{type(self).__name__} is built once its data is known: fit, test or predict it with a Trainer, "
                "or give the widths it takes (input_dim, num_classes, ...)"
            )
        outputs = self.shaped(self.net(inputs))
        return self.together(outputs) if self.of_members and not members else outputs

    @property
    def of_members(self) -> bool:
        """Whether the network is an ensemble, giving each example one output per member (`nets.Ensemble`)."""
        return isinstance(self.net, Ensemble)

    def shaped(self, outputs: Tensor) -> Tensor:
        """The network's outputs in the shape the task takes them (a single column as one number per example)."""
        return outputs

    @abc.abstractmethod
    def together(self, members: Tensor) -> Tensor:
        """An ensemble's outputs, (N, k, ...), as the outputs of one network, (N, ...): the members' average."""

    @abc.abstractmethod
    def compute_loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """The loss to train on, from the network's outputs and the batch's targets."""

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        inputs, targets = batch
        outputs = self(inputs, members=True)
        if self.of_members:  # each member learns from its own outputs (the mean of their losses), as TabM does
            loss = self.compute_loss(outputs.flatten(0, 1), targets.repeat_interleave(outputs.shape[1]))
            outputs = self.together(outputs.detach())
        else:
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
            # the project's progress bar (callbacks.LitProgressBar) shows it when it redraws
            self.log(metrics.TRAIN_LOSS, loss * self.loss_scale, on_step=True, on_epoch=False)

    def update_training_metrics(self) -> None:
        """Adds the pending training steps to `train_loss` and `train_metrics`: call it before computing them."""
        losses = self.check_finite()
        if losses is None:
            return
        _, outputs, targets, _ = zip(*self._pending, strict=True)
        self._pending = []
        sizes = torch.tensor([len(batch) for batch in targets], dtype=losses.dtype, device=losses.device)
        self.train_loss.update(losses * self.loss_scale, weight=sizes)
        if self.train_metrics:
            self.train_metrics.update(*self.metric_inputs(torch.cat(outputs), torch.cat(targets)))

    def check_finite(self) -> Tensor | None:
        """The pending steps' losses, stacked (None without any).

        Raises:
            Diverged: a pending loss is NaN or infinite (checked here, not at every step, where it would make the
                host wait for the device each time); naming its epoch and batch.
        """
        if not self._pending:
            return None
        losses = torch.stack([loss for loss, *_ in self._pending])
        finite = torch.isfinite(losses)
        if not finite.all():
            first = int((~finite).nonzero()[0])
            raise Diverged(
                f"the training loss became {losses[first].item()} at epoch {self.current_epoch}, "
                f"batch {self._pending[first][3]}: training stopped, and no checkpoint of the diverged model was "
                f"written (an earlier last.ckpt is the last good state); "
                f"lower the learning rate, or look for NaN or infinite values in the data"
            )
        return losses

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.unsaveable:
            raise UserError(f"no checkpoint could build this network again: {self.unsaveable}")
        super().on_save_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        facts = checkpoint.get(RECORD, {}).get("facts")
        if facts is not None and self.facts is None:
            self.facts = DataFacts.from_state_dict(facts)

    def on_train_epoch_end(self) -> None:
        self.log_training_epoch()  # if no validation at the epoch's end logged it already

    def log_training_epoch(self) -> None:
        """Logs the epoch's training metrics (`train/loss_epoch`, ...), once all its steps are in them."""
        self.update_training_metrics()
        if not self.train_loss.update_count:  # logged already, or no step: an epoch's end run again on resuming
            return
        # Lightning computes logged metric objects over all processes, then resets them
        self.log(metrics.TRAIN_LOSS_EPOCH, self.train_loss)
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
        if not self.trainer.sanity_checking and self.trainer.state.fn == "fit" and is_last_batch(self.trainer):
            self.log_training_epoch()  # the epoch's training is over: its figures beside its validation's

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, metrics.VAL)

    def on_validation_epoch_end(self) -> None:
        self.log(metrics.VAL_LOSS, self.val_loss, prog_bar=True)
        self.log_dict(self.val_metrics, prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, metrics.TEST)

    def on_test_epoch_end(self) -> None:
        self.log(metrics.TEST_LOSS, self.test_loss)
        self.log_dict(self.test_metrics)

    def configure_optimizers(self) -> Any:
        """Adam, on a one-cycle schedule over the whole run unless "constant".

        `--optimizer` / `--lr_scheduler` replace it. On CPUs and CUDA GPUs, torch's fused Adam: the same update in one
        kernel instead of one per operation and parameter.
        """
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in self.parameters())
        optimizer = torch.optim.Adam(
            self.parameters(), lr=self.lr, betas=self.betas, weight_decay=self.weight_decay, fused=fused or None
        )
        self.default_optimizer = optimizer
        total_steps = self.trainer.estimated_stepping_batches  # a resumed run's is re-planned in on_train_start
        if self.lr_schedule == "constant" or not math.isfinite(total_steps):  # no known end: nothing to anneal to
            return optimizer
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=int(total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
