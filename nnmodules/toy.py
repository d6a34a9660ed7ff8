"""The smallest regression, end to end: the PyTorch introduction's 1-5-1 network, as a `Regressor` preset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from nnmodules.nets import MLP
from nnmodules.regressor import Regressor
from nnmodules.tasks import Schedule

DEFAULTS = {"lbfgs": ("active", 1.0), "adam": ("pytorch", 0.1)}  # optimizer: (init, lr) when not given


class ToyRegressor(Regressor):
    """Linear layers with ReLU between them, ending in one number: a `Regressor` over `nets.MLP`.

    The defaults fit the introduction's noisy line y = 1 + 2x + 0.3 N(0, 1) best:
    a 1-5-1 net whose units all start active (the net starts as a straight line)
    and LBFGS steps, which reach the least-squares fit. The introduction's own
    recipe, PyTorch's initialisation and Adam at a constant 0.1, is
    `ToyRegressor(optimizer="adam")`. Any number of input features works.

    Args:
        input_dim: features per example (linked from the data module by the CLI).
        hidden_dims: width of each hidden layer.
        init: "active" or "pytorch" (see `nets.MLP`); None: "active" with LBFGS, "pytorch" with Adam.
        optimizer: "lbfgs" or "adam" (the introduction's), see `Regressor`.
        lr: step size of the optimizer; None: 1 for LBFGS, 0.1 for Adam (the introduction's).
        weight_decay: L2 penalty (Adam).
        lr_schedule: "constant" (the introduction's) or "one_cycle" (Adam).
        target_mean, target_std: how the data scaled the targets (linked by the CLI).
    """

    def __init__(
        self,
        input_dim: int = 1,
        hidden_dims: Sequence[int] = (5,),
        init: Literal["pytorch", "active"] | None = None,
        optimizer: Literal["lbfgs", "adam"] = "lbfgs",
        lr: float | None = None,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "constant",
        target_mean: float = 0.0,
        target_std: float = 1.0,
    ) -> None:
        default_init, default_lr = DEFAULTS.get(optimizer, ("pytorch", 0.1))
        init, lr = init or default_init, default_lr if lr is None else lr  # kept so, in the hyperparameters
        net = MLP(input_dim, hidden_dims, 1, init=init)
        super().__init__(
            net, target_mean, target_std, optimizer, lr=lr, weight_decay=weight_decay, lr_schedule=lr_schedule
        )
        self.example_input_array = torch.zeros(1, input_dim)  # for the TensorBoard graph
