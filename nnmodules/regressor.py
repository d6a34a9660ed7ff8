"""Regression with any network: `Regressor(net, target_mean, target_std, ...)`."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MinMetric, R2Score

from nnmodules.choices import check_choice
from nnmodules.tasks import Schedule, TaskModule, inputs_of, one_per_example

Optimizer = Literal["adam", "lbfgs"]  # see `Regressor`


class Regressor(TaskModule):
    """Regression with any network.

    Mean squared error, MSE/MAE/R² on validation and test, the best validation MSE so far, predictions in the target's
    units.

    When the data feeds standardised targets, `(target - target_mean) / target_std`,
    the network learns on that scale, while everything logged (`train/loss`,
    `val/loss` and the metrics: the loss is the mean squared error, times
    `target_std`²), the checkpoints' names and the predictions are in the target's
    own units.

    Args:
        net: any `torch.nn.Module` giving one number per example, shape (N,) or (N, 1). From YAML:
            `class_path` and `init_args`, where the CLI fills its `input_dim` and `output_dim` (1).
        target_mean, target_std: how the data scaled the targets (linked from the data module by the CLI).
        optimizer: "adam" (with `lr`, `weight_decay`, `lr_schedule`) or "lbfgs": quasi-Newton steps with a
            line search (step `lr`, usually 1), for small full-batch problems, where it reaches the
            least-squares optimum that a hundred Adam steps only approach.
        lr: peak learning rate of Adam on the one-cycle schedule, its rate when "constant", or LBFGS's step.
        weight_decay: L2 penalty (Adam).
        lr_schedule: "one_cycle" or "constant" (Adam), as for `Classifier`.
    """

    hparams_metrics = ("val/mse_best", "test/mse")  # what TensorBoard's HParams tab compares runs by
    objective = ("val/mse_best", "minimize")  # what `litmodules tune` optimises unless its search file says otherwise
    data_tasks = ("regression",)
    output_shape = ()
    output_hint = "build it with 1 output (output_dim=1), or leave that to the CLI"

    def __init__(
        self,
        net: nn.Module,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        optimizer: Optimizer = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "one_cycle",
    ) -> None:
        if not target_std > 0:
            raise ValueError(f"target_std must be positive, got {target_std}")
        check_choice("optimizer", optimizer, Optimizer)
        metrics = {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()}
        super().__init__(net, metrics, [], lr, weight_decay, lr_schedule)
        self.target_mean = target_mean
        self.target_std = target_std
        self.optimizer_name = optimizer
        self.val_mse_best = MinMetric()
        self.val_mse_best.persistent(True)  # a resumed run keeps its best so far

    @property
    def loss_scale(self) -> float:
        return self.target_std**2

    def check_data(self, data: Any) -> None:
        """Also refuses data that feeds the targets scaled otherwise than the model was told.

        That is, other `target_mean` and `target_std`: its metrics and predictions would be in the wrong units.
        """
        super().check_data(data)
        scale = (getattr(data, "target_mean", None), getattr(data, "target_std", None))
        if None in scale or all(map(math.isclose, scale, (self.target_mean, self.target_std))):
            return
        raise ValueError(
            f"{type(data).__name__} feeds the targets standardised (mean {scale[0]:g}, deviation {scale[1]:g}) but "
            f"the model has target_mean={self.target_mean:g}, target_std={self.target_std:g}: build it with "
            f"target_mean=data.target_mean, target_std=data.target_std (the CLI links them)"
        )

    def forward(self, inputs: Tensor) -> Tensor:
        return one_per_example(self.net(inputs))

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
        return self.in_target_units(self(inputs_of(batch)))
