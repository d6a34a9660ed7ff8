"""The multilayer perceptron: linear layers with ReLU between them, and the check of every network's widths."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Literal

from torch import nn

from datamodules.arguments import KeepsArguments
from datamodules.choices import check_choice
from datamodules.errors import UserError

Init = Literal["pytorch", "active"]  # an MLP's first weights: see `MLP`


def check_widths(**widths: int | Sequence[int]) -> None:
    """Refuses a width that is not a positive whole number, naming every width given."""
    given = ", ".join(
        f"{name}={list(value) if isinstance(value, Sequence) else value}" for name, value in widths.items()
    )
    flat = [width for value in widths.values() for width in (value if isinstance(value, Sequence) else [value])]
    if any(not isinstance(width, int) or width < 1 for width in flat):
        raise UserError(f"layer widths must be positive whole numbers: {given}")


def check_dropout(dropout: float) -> None:
    """Refuses a dropout probability outside [0, 1)."""
    if not 0 <= dropout < 1:
        raise UserError(f"dropout must be in [0, 1), got {dropout}")


class MLP(KeepsArguments, nn.Sequential):
    """Linear layers with ReLU between them: `input_dim` -> `hidden_dims` -> `output_dim`.

    Inputs of any shape are flattened first, so 1x28x28 images work as well as
    784-vectors. `MLP(784, [128, 128], 10)` is the MNIST tutorial's network;
    `MLP(1, [5], 1)` the PyTorch introduction's 1-5-1 regression net.

    Args:
        input_dim: features per example.
        hidden_dims: width of each hidden layer; empty for a linear model.
        output_dim: outputs per example: one score per class, or 1 (a binary logit, a regression).
        dropout: dropout probability after each hidden layer.
        init: "pytorch" (PyTorch's default initialisation), or "active": every hidden unit
            starts on the linear side of its ReLU for inputs within about 3 deviations of 0
            (bias 3), so a regression starts as a straight line and bends only where the data asks.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        output_dim: int,
        dropout: float = 0.0,
        init: Init = "pytorch",
    ) -> None:
        check_widths(input_dim=input_dim, hidden_dims=hidden_dims, output_dim=output_dim)
        check_dropout(dropout)
        check_choice("init", init, Init)
        widths = [input_dim, *hidden_dims]
        layers: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in pairwise(widths):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], output_dim))
        super().__init__(*layers)
        self.input_dim = input_dim
        self.hidden_dims = list(hidden_dims)
        self.output_dim = output_dim
        self.dropout, self.init = dropout, init
        if init == "active":
            for layer in [layer for layer in self if isinstance(layer, nn.Linear)][:-1]:
                nn.init.constant_(layer.bias, 3.0)
