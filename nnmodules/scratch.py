"""The "from scratch" deep net: raw weight and bias tensors, the tutorials' functions as methods.

The tutorials behind it train with six functions: `init_coeffs`, `calc_preds`,
`calc_loss`, `update_coeffs`, `execute_epoch` and `train_model`, plus
`model_accuracy`. Here `init_coeffs`, `calc_preds` and `update_coeffs` are methods
of the network (`nets.ScratchNet`), `calc_loss` a method of this model; Lightning's
loop stands in for `execute_epoch` and `train_model`, and torchmetrics for
`model_accuracy`. A training step reads as in the tutorials: predictions, loss,
backward, `update_coeffs`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanMetric

from nnmodules.choices import check_choice
from nnmodules.classifier import Classifier
from nnmodules.figures import ParameterHistograms
from nnmodules.nets import ScratchInit, ScratchNet
from nnmodules.schedules import announce, planned_steps
from nnmodules.tasks import Task

Loss = Literal["mae", "bce"]  # see `ScratchDeepNet`
StepSchedule = Literal["constant", "cosine"]


class ScratchDeepNet(Classifier):
    """A deep net whose every parameter and update is visible: a `Classifier` over `nets.ScratchNet`.

    Each layer is a weight matrix and a bias, plain `nn.Parameter`s (no `nn.Linear`);
    ReLU between layers. "binary": one sigmoid output, loss mean absolute error
    (the tutorial) or binary cross-entropy. "multiclass": log-softmax and
    negative log-likelihood. Training uses Lightning's manual optimization and
    the tutorial's SGD step (`update_coeffs`), unless an optimizer is configured
    (e.g. `--optimizer Adam` on the command line). Each epoch logs weight and bias
    histograms, gradient histograms of its last step (`ParameterHistograms`) and the mean
    gradient norm (`train/grad_norm`) to TensorBoard.

    Args:
        input_dim: features per example (linked from the data module by the CLI).
        hidden_dims: width of each hidden layer, any depth.
        num_classes: classes (linked from the data module by the CLI); None: 2 for "binary", else 10 (digits).
        task: "binary" or "multiclass" (linked from the data module by the CLI).
        loss: "mae" (the tutorial) or "bce"; for "binary" only.
        init: "kaiming" (weights scaled by sqrt(2 / inputs), zero biases) or "tutorial"
            (weights `(rand - 0.3) / n_out * 4`, one random scalar bias per layer).
        lr: step size of `update_coeffs`.
        lr_schedule: "constant" (the tutorials) or "cosine" (from `lr` down to 0 over the run).
        class_weights: a loss weight per class (linked from the data module by the CLI).
    """

    epoch_buffers = ("_pending", "_grad_norms")  # a mid-epoch checkpoint keeps this epoch's gradient norms too

    def __init__(
        self,
        input_dim: int = 784,
        hidden_dims: Sequence[int] = (20,),
        num_classes: int | None = None,
        task: Task = "multiclass",
        loss: Loss = "mae",
        init: ScratchInit = "kaiming",
        lr: float = 0.1,
        lr_schedule: StepSchedule = "constant",
        class_weights: Sequence[float] | None = None,
    ) -> None:
        check_choice("loss", loss, Loss)
        check_choice("lr_schedule", lr_schedule, StepSchedule)
        check_choice("init", init, ScratchInit)
        classes = num_classes or (2 if task == "binary" else 10)
        net = ScratchNet(input_dim, hidden_dims, 1 if task == "binary" else classes, init=init)
        super().__init__(net, classes, task=task, class_weights=class_weights, lr=lr, lr_schedule="constant")
        self.automatic_optimization = False  # update_coeffs does the step
        self.loss, self.step_schedule = loss, lr_schedule
        self.train_grad_norm = MeanMetric()
        self._grad_norms: list[Tensor] = []  # this epoch's, added to train_grad_norm at its end: one update
        self._planned_steps: float = math.inf  # the run's optimizer steps, set when training starts
        self._planned_steps_before: float | None = None  # those of the run a checkpoint continues
        self.optimizers_configured = True  # until configure_optimizers, unless replaced, says otherwise
        self.example_input_array = torch.zeros(1, input_dim)  # for the TensorBoard graph

    def calc_loss(self, preds: Tensor, targets: Tensor) -> Tensor:
        """The loss of the tutorials' recipe, weighted by `class_weights`.

        Binary: mean absolute error (the tutorials) or cross-entropy of the probabilities; multiclass: negative
        log-likelihood of the log-probabilities.
        """
        if self.task == "binary" and self.loss == "mae":
            errors = torch.abs(preds - targets.to(preds.dtype))
            if self.class_weights is None:
                return errors.mean()
            weight = self.class_weights[targets]
            return (errors * weight).sum() / weight.sum()
        if self.task == "binary":
            weight = None if self.class_weights is None else self.class_weights[targets]
            return F.binary_cross_entropy(preds, targets.to(preds.dtype), weight=weight)
        return F.nll_loss(preds, targets, weight=self.class_weights)

    def compute_loss(self, scores: Tensor, targets: Tensor) -> Tensor:
        return self.calc_loss(self.net.activate(scores), targets)

    def update_coeffs(self) -> None:
        """The tutorials' SGD step, at this step's size."""
        self.net.update_coeffs(self.step_size())

    def step_size(self) -> float:
        """`lr`, or with the cosine schedule `lr` scaled by 0.5 * (1 + cos(pi * step / steps of the run))."""
        if self.step_schedule == "constant" or not math.isfinite(self._planned_steps):
            return self.lr
        return self.lr * 0.5 * (1 + math.cos(math.pi * self.global_step / self._planned_steps))

    def on_train_start(self) -> None:
        """The cosine's length: the run's steps as now configured.

        Re-planned after a resume with other settings (see `nnmodules.schedules`).
        """
        super().on_train_start()
        self._planned_steps = planned_steps(self.trainer)
        before = self._planned_steps_before
        if self.step_schedule == "cosine" and before is not None and before != self._planned_steps:
            announce(
                f"cosine step size re-planned for this run's settings: {before} -> {self._planned_steps} steps",
                self.global_step,
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["planned_steps"] = self._planned_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self._planned_steps_before = checkpoint.get("planned_steps")

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        inputs, targets = batch
        scores = self(inputs)
        preds = self.net.activate(scores)  # the tutorials' calc_preds, its scores kept for the metrics
        loss = self.calc_loss(preds, targets)
        self.manual_backward(loss)
        self._grad_norms.append(torch.nn.utils.get_total_norm([p.grad for p in self.parameters()]))
        if not self.optimizers_configured:
            self.update_coeffs()
        optimizer = self.optimizers()  # with none configured, Lightning's placeholder: its step only counts steps
        optimizer.step()
        optimizer.zero_grad()
        self.track_training(loss, scores, targets, batch_idx)
        return loss

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        if self._grad_norms:
            self.train_grad_norm.update(torch.stack(self._grad_norms))
            self._grad_norms = []
        self.log("train/grad_norm", self.train_grad_norm)
        scheduler = self.lr_schedulers()
        if scheduler:  # manual optimization: a configured schedule steps once per epoch here
            scheduler.step()

    def configure_callbacks(self) -> list[L.Callback]:
        """Weight, bias and gradient histograms every epoch: this net is for watching training happen."""
        return [ParameterHistograms()]

    def configure_optimizers(self) -> None:
        """No optimizer: `update_coeffs` is the update. `--optimizer` on the command line replaces this."""
        self.optimizers_configured = False
        # Lightning then warns that the fit runs with no optimizer, which is this net's design
        warnings.filterwarnings(
            "ignore", r"`LightningModule.configure_optimizers` returned `None`", module=r"lightning\.pytorch\.core"
        )
        return None
