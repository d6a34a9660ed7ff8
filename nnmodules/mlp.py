"""The everyday multilayer perceptron classifier."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Literal

import torch
from torch import Tensor, nn

from nnmodules.heads import ClassifierModule


class MLPClassifier(ClassifierModule):
    """Linear layers with ReLU between them, ending in one score per class.

    The defaults are the MNIST tutorial's 784-128-128-10 network. Inputs of any
    shape are flattened, so 1x28x28 images work as well as 784-vectors.

    Args:
        input_dim: features per example (linked from the data module by the CLI).
        hidden_dims: width of each hidden layer; empty for logistic regression.
        num_classes: classes to tell apart (linked from the data module by the CLI).
        class_weights: a loss weight per class (linked from the data module by the CLI).
        dropout: dropout probability after each hidden layer.
        lr: peak learning rate of the default optimizer (Adam, one-cycle schedule).
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" or "constant" (see `ClassifierModule`).
    """

    def __init__(
        self,
        input_dim: int = 784,
        hidden_dims: Sequence[int] = (128, 128),
        num_classes: int = 10,
        class_weights: Sequence[float] | None = None,
        dropout: float = 0.1,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        lr_schedule: Literal["one_cycle", "constant"] = "one_cycle",
    ) -> None:
        super().__init__(
            num_classes, class_weights=class_weights, lr=lr, weight_decay=weight_decay, lr_schedule=lr_schedule
        )
        self.save_hyperparameters()
        widths = [input_dim, *hidden_dims]
        if any(width < 1 for width in widths):
            raise ValueError(f"layer widths must be positive: input_dim={input_dim}, hidden_dims={list(hidden_dims)}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in pairwise(widths):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], num_classes))
        self.net = nn.Sequential(*layers)
        self.example_input_array = torch.zeros(1, input_dim)  # for the TensorBoard graph

    def forward(self, inputs: Tensor) -> Tensor:
        return self.net(inputs)
