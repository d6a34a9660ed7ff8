"""Networks of one's own, in a module of their own (as a user's would be): a checkpoint imports them by path."""

from __future__ import annotations

import torch
from torch import nn


class TinyConvNet(nn.Module):
    """A network of one's own for 1x28x28 images: two strided convolutions, then one score per class."""

    def __init__(self, num_classes: int = 10, width: int = 4, dropout: float = 0.2) -> None:
        super().__init__()
        self.num_classes, self.width, self.dropout = num_classes, width, dropout
        self.layers = nn.Sequential(
            nn.Conv2d(1, width, 5, stride=2),  # 28 -> 12
            nn.ReLU(),
            nn.Conv2d(width, width, 5, stride=2),  # 12 -> 4
            nn.ReLU(),
            nn.Flatten(),
            nn.Dropout(dropout),  # draws from the global generator: an exact resume must restore it
            nn.Linear(width * 16, num_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


class TinyRegressionNet(nn.Module):
    """A network of one's own for a numeric target: (N, 1) outputs, as `nn.Linear` gives them."""

    def __init__(self, input_dim: int, output_dim: int = 1) -> None:
        super().__init__()
        self.input_dim, self.output_dim = input_dim, output_dim
        self.hidden = nn.Linear(input_dim, 8)
        self.out = nn.Linear(8, output_dim)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(inputs)))


class Unrecorded(nn.Module):
    """Keeps no attribute for its argument: a checkpoint could not build it again."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.layer = nn.Linear(784, width)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.layer(inputs.flatten(1))


class NoArguments(nn.Module):
    """A network that takes no arguments: from YAML, its config has a class_path and nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.layer(inputs)
