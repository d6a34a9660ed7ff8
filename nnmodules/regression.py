"""The smallest regression, end to end: the PyTorch introduction's 1-5-1 network."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Literal

import torch
from torch import Tensor, nn

from nnmodules.heads import RegressorModule, Schedule


class ToyRegressor(RegressorModule):
    """Linear layers with ReLU between them, ending in one number.

    The defaults are the introduction's: 1 input, one hidden layer of 5, PyTorch's
    initialisation, Adam at a constant 0.1. Any number of input features works,
    so it also serves tables with a numeric target.

    Args:
        input_dim: features per example (linked from the data module by the CLI).
        hidden_dims: width of each hidden layer.
        init: "pytorch" (the introduction's), or "active": every hidden unit starts on
            the linear side of its ReLU for inputs within about 3 deviations of 0 (bias 3),
            so the net starts as a straight line and bends only where the data asks.
        optimizer: "adam" (the introduction's) or "lbfgs", see `RegressorModule`.
        lr: step size of the optimizer (Adam: 0.1 in the introduction; LBFGS: 1).
        weight_decay: L2 penalty (Adam).
        lr_schedule: "constant" (the introduction's) or "one_cycle" (Adam).
        target_mean, target_std: how the data scaled the targets (linked by the CLI).
    """

    def __init__(
        self,
        input_dim: int = 1,
        hidden_dims: Sequence[int] = (5,),
        init: Literal["pytorch", "active"] = "pytorch",
        optimizer: Literal["adam", "lbfgs"] = "adam",
        lr: float = 0.1,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "constant",
        target_mean: float = 0.0,
        target_std: float = 1.0,
    ) -> None:
        super().__init__(target_mean, target_std, optimizer, lr=lr, weight_decay=weight_decay, lr_schedule=lr_schedule)
        self.save_hyperparameters()
        widths = [input_dim, *hidden_dims]
        if any(width < 1 for width in widths):
            raise ValueError(f"layer widths must be positive: input_dim={input_dim}, hidden_dims={list(hidden_dims)}")
        if init not in ("pytorch", "active"):
            raise ValueError(f"init must be 'pytorch' or 'active', got {init!r}")
        layers: list[nn.Module] = []
        for width_in, width_out in pairwise(widths):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], 1))
        self.net = nn.Sequential(*layers)
        if init == "active":
            for layer in self.net[:-1:2]:  # the hidden Linear layers
                nn.init.constant_(layer.bias, 3.0)
        self.example_input_array = torch.zeros(1, input_dim)  # for the TensorBoard graph

    def forward(self, inputs: Tensor) -> Tensor:
        return self.net(inputs.flatten(1)).squeeze(-1)
