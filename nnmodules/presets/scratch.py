"""The "from scratch" deep net: raw weight and bias tensors, the tutorials' functions as methods and an optimizer.

The tutorials behind it train with six functions: `init_coeffs`, `calc_preds`, `calc_loss`, `update_coeffs`,
`execute_epoch` and `train_model`, plus `model_accuracy`. Here `init_coeffs`, `calc_preds` and
`update_coeffs` are methods of the network (`nets.ScratchNet`), `calc_loss` a method of this model, and the
update itself, `p -= lr * p.grad`, is `TutorialSGD`, a `torch.optim.Optimizer` of a few lines, so that
Lightning counts its steps and `--optimizer` replaces it as for any model. Lightning's loop stands in for
`execute_epoch` and `train_model`, and torchmetrics for `model_accuracy`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from datamodules.choices import check_choice
from datamodules.contract import DataFacts
from nnmodules.callbacks.histograms import ParameterHistograms
from nnmodules.nets import ScratchInit, ScratchNet, check_widths
from nnmodules.tasks import Classifier
from nnmodules.tasks.classifier import Task
from nnmodules.tasks.schedules import announce, planned_steps

Loss = Literal["mae", "bce"]  # see `ScratchDeepNet`
StepSchedule = Literal["constant", "cosine"]


class TutorialSGD(torch.optim.Optimizer):
    """The tutorials' update as an optimizer: each parameter moves against its gradient, `p -= lr * p.grad`.

    Args:
        params: the parameters to update.
        lr: the step size.
    """

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for parameter in group["params"]:
                if parameter.grad is not None:
                    parameter.sub_(parameter.grad * group["lr"])  # as the tutorials' update_coeffs writes it
        return loss


class CosineToZero:
    """The cosine step-size factor, 0.5 * (1 + cos(pi * step / steps)), for `LambdaLR`; its length re-planned on resume.

    A callable object rather than a function: `LambdaLR` keeps its state (`steps`) in checkpoints.
    """

    def __init__(self, steps: float) -> None:
        self.steps = steps

    def __call__(self, step: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * step / self.steps)) if math.isfinite(self.steps) else 1.0


class ScratchDeepNet(Classifier):
    """A deep net whose every parameter and update is visible: a `Classifier` over `nets.ScratchNet`.

    Each layer is a weight matrix and a bias, plain `nn.Parameter`s (no `nn.Linear`); ReLU between layers.
    "binary": one sigmoid output, loss mean absolute error (the tutorial) or binary cross-entropy.
    "multiclass": log-softmax and negative log-likelihood. The update is the tutorials' (`TutorialSGD`),
    unless an optimizer is configured (e.g. `--optimizer Adam` on the command line). Each epoch logs weight and
    bias histograms, gradient histograms of its last step (`ParameterHistograms`) and the mean gradient norm
    (`train/grad_norm`) to TensorBoard.

    Args:
        input_dim: features per example; None: the data's.
        hidden_dims: width of each hidden layer, any depth.
        num_classes: classes; None: the data's (2 for "binary").
        task: "binary" or "multiclass"; None: the data's, or "multiclass" without data.
        loss: "mae" (the tutorial) or "bce"; for "binary" only.
        init: "kaiming" (weights scaled by sqrt(2 / inputs), zero biases) or "tutorial"
            (weights `(rand - 0.3) / n_out * 4`, one random scalar bias per layer).
        lr: the step size of the update.
        lr_schedule: "constant" (the tutorials) or "cosine" (from `lr` down to 0 over the run).
        class_weights: a loss weight per class; None: the data's, or none.
    """

    epoch_buffers = ("_pending", "_grad_norms")  # a mid-epoch checkpoint keeps this epoch's gradient norms too

    def __init__(
        self,
        input_dim: int | None = None,
        hidden_dims: Sequence[int] = (20,),
        num_classes: int | None = None,
        task: Task | None = None,
        loss: Loss = "mae",
        init: ScratchInit = "kaiming",
        lr: float = 0.1,
        lr_schedule: StepSchedule = "constant",
        class_weights: Sequence[float] | None = None,
    ) -> None:
        check_choice("loss", loss, Loss)
        check_choice("lr_schedule", lr_schedule, StepSchedule)
        check_choice("init", init, ScratchInit)
        check_widths(hidden_dims=hidden_dims)  # its own settings: refused now
        self.loss, self.step_schedule = loss, lr_schedule  # before the network is built, in the task's __init__
        self.net_settings = {"input_dim": input_dim, "hidden_dims": hidden_dims, "init": init}
        super().__init__(None, num_classes, task, class_weights, lr=lr, lr_schedule="constant")
        self.train_grad_norm = MeanMetric()
        self._grad_norms: list[Tensor] = []  # this epoch's, added to train_grad_norm at its end: one update

    def can_build(self, facts: DataFacts | None) -> bool:
        return facts is not None or (self.net_settings["input_dim"] is not None and self.num_classes is not None)

    def make_network(self, facts: DataFacts | None) -> nn.Module:
        settings = self.net_settings
        input_dim = self.input_width(settings["input_dim"], facts)
        self.example_input_array = torch.zeros(1, input_dim)  # for TensorBoard's graph
        outputs = 1 if self.task == "binary" else self.num_classes
        return ScratchNet(input_dim, settings["hidden_dims"], outputs, init=settings["init"])

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

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        gradients = [parameter.grad for parameter in self.parameters() if parameter.grad is not None]
        self._grad_norms.append(torch.nn.utils.get_total_norm(gradients))

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        if self._grad_norms:
            self.train_grad_norm.update(torch.stack(self._grad_norms))
            self._grad_norms = []
        self.log("train/grad_norm", self.train_grad_norm)

    def configure_callbacks(self) -> list[L.Callback]:
        """Weight, bias and gradient histograms every epoch: this net is for watching training happen."""
        return [ParameterHistograms()]

    def configure_optimizers(self) -> Any:
        """The tutorials' update (`TutorialSGD`), at a constant step size or on a cosine down to 0 over the run.

        `--optimizer` on the command line replaces it.
        """
        optimizer = TutorialSGD(self.parameters(), lr=self.lr)
        self.default_optimizer = optimizer
        if self.step_schedule == "constant":
            return optimizer
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, CosineToZero(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_train_start(self) -> None:
        """The cosine's length and peak: the run's as now configured, re-planned after a resume with other settings."""
        super().on_train_start()
        configs = self.trainer.lr_scheduler_configs
        if not configs or not isinstance(configs[0].scheduler, torch.optim.lr_scheduler.LambdaLR):
            return
        schedule = configs[0].scheduler
        cosine, steps = schedule.lr_lambdas[0], planned_steps(self.trainer)
        if not isinstance(cosine, CosineToZero):
            return
        lines, peak = [], schedule.optimizer.defaults["lr"]  # this run's step size, over the checkpoint's
        if cosine.steps != steps:
            lines.append(f"cosine step size re-planned for this run's settings: {cosine.steps} -> {steps} steps")
            cosine.steps = steps
        if schedule.base_lrs != [peak] * len(schedule.base_lrs):
            lines.append(f"peak step size {schedule.base_lrs[0]:g} -> {peak:g}")
            schedule.base_lrs = [peak] * len(schedule.base_lrs)
        if lines:
            for group, base in zip(schedule.optimizer.param_groups, schedule.base_lrs, strict=True):
                group["lr"] = base * cosine(schedule.last_epoch)
            announce(", ".join(lines), self.global_step)
