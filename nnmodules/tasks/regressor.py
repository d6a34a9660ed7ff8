"""Regression with any network: `Regressor(net)`, the target's scale taken from the data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, MinMetric, R2Score

from datamodules.choices import check_choice
from datamodules.contract import DataFacts
from datamodules.errors import UserError
from nnmodules import metrics
from nnmodules.nets.configs import NetworkBuilder
from nnmodules.tasks.task import Schedule, TaskModule, inputs_of, one_per_example

Optimizer = Literal["adam", "lbfgs"]  # see `Regressor`


class Regressor(TaskModule):
    """Regression with any network.

    Mean squared error, MSE/MAE/R² on validation and test, the best validation MSE so far, predictions in the
    target's units.

    When the data feeds standardised targets, `(target - target_mean) / target_std`, the network learns on that
    scale, while everything logged (`train/loss`, `val/loss` and the metrics: the loss is the mean squared error,
    times `target_std`²), the checkpoints' names and the predictions are in the target's own units.

    Args:
        net: the network, given as an object, or as its class (or any callable building it), which the model
            calls with the widths it names that the data gives (`input_dim`, `output_dim`: 1). It gives one
            number per example, shape (N,) or (N, 1). From YAML: `class_path` and `init_args`, leaving out the
            widths the data gives.
        target_mean, target_std: how the data scaled the targets; None: the data's (0 and 1 without data).
        optimizer: "adam" (with `lr`, `weight_decay`, `lr_schedule`) or "lbfgs": quasi-Newton steps with a
            line search (step `lr`, usually 1), for small full-batch problems, where it reaches the
            least-squares optimum that a hundred Adam steps only approach.
        lr: peak learning rate of Adam on the one-cycle schedule, its rate when "constant", or LBFGS's step.
        weight_decay: L2 penalty (Adam).
        lr_schedule: "one_cycle" or "constant" (Adam), as for `Classifier`.
        betas: Adam's (see `TaskModule`).
    """

    data_tasks = ("regression",)
    output_shape = ()
    output_hint = "build it with 1 output (output_dim=1), or leave that to the data"

    def __init__(
        self,
        net: nn.Module | NetworkBuilder | None,
        target_mean: float | None = None,
        target_std: float | None = None,
        optimizer: Optimizer = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "one_cycle",
        betas: Sequence[float] = (0.9, 0.999),
    ) -> None:
        if target_std is not None and not target_std > 0:
            raise UserError(f"target_std must be positive, got {target_std}")
        check_choice("optimizer", optimizer, Optimizer)
        super().__init__(net, lr, weight_decay, lr_schedule, betas)
        self.scale_given = (target_mean, target_std)  # None: the data's
        self.target_mean, self.target_std = target_mean or 0.0, target_std or 1.0
        self.optimizer_name = optimizer
        self.build_when_known()

    def take_facts(self, facts: DataFacts | None) -> None:
        """The target's scale: as given (checked: other units would make every metric wrong), else the data's."""
        if facts is not None and facts.task != "regression":
            return  # check_data refuses it, naming the model to use
        mean, std = (None, None) if facts is None else (facts.target_mean, facts.target_std)
        given_mean, given_std = self.scale_given
        try:
            self.target_mean = self.take("target_mean", given_mean, mean, 0.0)
            self.target_std = self.take("target_std", given_std, std, 1.0)
        except UserError:
            given = {"target_mean": given_mean, "target_std": given_std}
            has = ", ".join(f"{name}={value:g}" for name, value in given.items() if value is not None)
            raise UserError(
                f"the data feeds the targets standardised (mean {mean:g}, deviation {std:g}) but the model has "
                f"{has}: leave them out, and the data fills them"
            ) from None

    def task_widths(self) -> dict[str, int]:
        return {"output_dim": 1}

    def task_metrics(self) -> tuple[dict[str, Metric], Sequence[str]]:
        self.val_mse_best = MinMetric()
        self.val_mse_best.persistent(True)  # a resumed run keeps its best so far
        return {metrics.MSE: MeanSquaredError(), metrics.MAE: MeanAbsoluteError(), metrics.R2: R2Score()}, []

    @property
    def loss_scale(self) -> float:
        return self.target_std**2

    def shaped(self, outputs: Tensor) -> Tensor:
        return one_per_example(outputs, self.of_members)

    def together(self, members: Tensor) -> Tensor:
        """The members' mean prediction."""
        return members.mean(dim=1)

    def compute_loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(predictions, targets)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:  # the sanity check's few batches say nothing about "best"
            self.val_mse_best.update(self.val_metrics[metrics.MSE].compute())
            best = metrics.name(metrics.VAL, metrics.MSE) + metrics.BEST
            self.log(best, self.val_mse_best.compute(), sync_dist=True, reduce_fx="min")
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
        return self.in_target_units(self(inputs_of(batch)))
