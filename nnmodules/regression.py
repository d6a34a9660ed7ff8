"""The smallest regression, end to end: the PyTorch introduction's 1-5-1 network."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn

from nnmodules.heads import RegressorModule, Schedule


class ToyRegressor(RegressorModule):
    """Linear layers with ReLU between them, ending in one number.

    The defaults are the introduction's: 1 input, one hidden layer of 5, Adam at
    a constant 0.1. Any number of input features works, so it also serves tables
    with a numeric target.

    Args:
        input_dim: features per example (linked from the data module by the CLI).
        hidden_dims: width of each hidden layer.
        lr: learning rate of the default optimizer (Adam).
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "constant" (the introduction's) or "one_cycle".
        target_mean, target_std: how the data scaled the targets (linked by the CLI).
    """

    def __init__(
        self,
        input_dim: int = 1,
        hidden_dims: Sequence[int] = (5,),
        lr: float = 0.1,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "constant",
        target_mean: float = 0.0,
        target_std: float = 1.0,
    ) -> None:
        super().__init__(target_mean, target_std, lr=lr, weight_decay=weight_decay, lr_schedule=lr_schedule)
        self.save_hyperparameters()
        widths = [input_dim, *hidden_dims]
        if any(width < 1 for width in widths):
            raise ValueError(f"layer widths must be positive: input_dim={input_dim}, hidden_dims={list(hidden_dims)}")
        layers: list[nn.Module] = []
        for width_in, width_out in pairwise(widths):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], 1))
        self.net = nn.Sequential(*layers)
        self.example_input_array = torch.zeros(1, input_dim)  # for the TensorBoard graph

    def forward(self, inputs: Tensor) -> Tensor:
        return self.net(inputs.flatten(1)).squeeze(-1)
