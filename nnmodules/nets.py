"""Networks as plain `torch.nn.Module`s: give one of these, or your own, to `Classifier` or `Regressor`.

Each keeps its arguments as attributes of the same names (`net.hidden_dims`), which is
how a checkpoint rebuilds a network given from Python (`nnmodules.checkpoints.net_config`).
Widths named `input_dim`, `num_classes` and `output_dim` are the data's: the command line
links them from the data module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Literal

import torch
import torch.nn.functional as F
from rtdl_num_embeddings import PeriodicEmbeddings
from torch import Tensor, nn

from nnmodules.choices import check_choice

Init = Literal["pytorch", "active"]  # an MLP's first weights: see `MLP`
ScratchInit = Literal["kaiming", "tutorial"]  # the scratch net's first weights: see `ScratchNet`


def _check_widths(**widths: int | Sequence[int]) -> None:
    given = ", ".join(
        f"{name}={list(value) if isinstance(value, Sequence) else value}" for name, value in widths.items()
    )
    flat = [width for value in widths.values() for width in (value if isinstance(value, Sequence) else [value])]
    if any(not isinstance(width, int) or width < 1 for width in flat):
        raise ValueError(f"layer widths must be positive whole numbers: {given}")


class MLP(nn.Sequential):
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
        _check_widths(input_dim=input_dim, hidden_dims=hidden_dims, output_dim=output_dim)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
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


class TableMLP(nn.Module):
    """An `MLP` for tables whose numbers each go through an embedding of their own first.

    The first `numeric_features` inputs (the numbers: `TabularDataModule` puts them first and
    says how many, which the command line links) each become `embedding_dim` values,
    ReLU(Linear([sin, cos](2π c x))) with frequencies c learnt per feature and started at
    N(0, `frequency_scale`²): the "PLR-lite" embeddings of Gorishniy et al., "On Embeddings for
    Numerical Features in Tabular Deep Learning" (2022), from their `rtdl_num_embeddings`. An
    MLP on such embeddings learns the sharp, uneven steps trees find in a number. The other
    inputs (one-hot categories, missing-value flags) go to the MLP as they are.

    Args:
        input_dim: features per example.
        hidden_dims: width of each hidden layer.
        output_dim: outputs per example: one score per class, or 1 (a binary logit, a regression).
        numeric_features: how many of the first inputs are numbers to embed; 0: a plain `MLP`'s inputs.
        embedding_dim: values per embedded number.
        frequency_scale: deviation of the starting frequencies, for numbers scaled to about ±3.
        dropout: dropout probability after each hidden layer.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        output_dim: int,
        numeric_features: int = 0,
        embedding_dim: int = 16,
        frequency_scale: float = 0.1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_widths(input_dim=input_dim, embedding_dim=embedding_dim)
        if not 0 <= numeric_features <= input_dim:
            raise ValueError(f"numeric_features must be from 0 to input_dim ({input_dim}), got {numeric_features}")
        if frequency_scale <= 0:
            raise ValueError(f"frequency_scale must be above 0, got {frequency_scale}")
        self.input_dim = input_dim
        self.hidden_dims = list(hidden_dims)
        self.output_dim = output_dim
        self.numeric_features, self.embedding_dim = numeric_features, embedding_dim
        self.frequency_scale, self.dropout = frequency_scale, dropout
        self.numbers = None
        if numeric_features:
            self.numbers = PeriodicEmbeddings(
                numeric_features, embedding_dim, frequency_init_scale=frequency_scale, lite=True
            )
        self.mlp = MLP(input_dim + numeric_features * (embedding_dim - 1), hidden_dims, output_dim, dropout)

    def forward(self, inputs: Tensor) -> Tensor:
        if self.numbers is None:
            return self.mlp(inputs)
        numbers, rest = inputs[:, : self.numeric_features], inputs[:, self.numeric_features :]
        return self.mlp(torch.cat([self.numbers(numbers).flatten(1), rest], dim=1))


class ScratchNet(nn.Module):
    """The "from scratch" tutorials' network: a raw weight matrix and bias per layer, ReLU between.

    The layers are plain `nn.Parameter`s (no `nn.Linear`), made by `init_coeffs`;
    `forward` gives one score (logit) per output, as a `Classifier` takes them;
    `calc_preds` the tutorials' predictions: the sigmoid probability of class 1 for
    one output, log-probabilities for several; `update_coeffs` is the tutorials'
    hand-written SGD step.

    Args:
        input_dim: features per example; inputs of any shape are flattened.
        hidden_dims: width of each hidden layer, any depth.
        output_dim: 1 (binary: a sigmoid output) or one per class.
        init: "kaiming" (weights scaled by sqrt(2 / inputs), zero biases) or "tutorial"
            (weights `(rand - 0.3) / n_out * 4`, one random scalar bias per layer).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        output_dim: int,
        init: ScratchInit = "kaiming",
    ) -> None:
        super().__init__()
        _check_widths(input_dim=input_dim, hidden_dims=hidden_dims, output_dim=output_dim)
        check_choice("init", init, ScratchInit)
        self.input_dim = input_dim
        self.hidden_dims = list(hidden_dims)
        self.output_dim = output_dim
        self.init = init
        self.sizes = [input_dim, *hidden_dims, output_dim]
        self.weights, self.biases = self.init_coeffs(init)

    def init_coeffs(self, init: str) -> tuple[nn.ParameterList, nn.ParameterList]:
        """A weight matrix and a bias for each layer, drawn from the global torch generator."""
        weights, biases = [], []
        for n_in, n_out in pairwise(self.sizes):
            if init == "tutorial":
                weights.append((torch.rand(n_in, n_out) - 0.3) / n_out * 4)
                biases.append((torch.rand(1)[0] - 0.5) * 0.1)
            else:
                weights.append(torch.randn(n_in, n_out) * math.sqrt(2 / n_in))
                biases.append(torch.zeros(n_out))
        return nn.ParameterList(weights), nn.ParameterList(biases)

    def forward(self, inputs: Tensor) -> Tensor:
        """Scores, shape (N, output_dim): the last layer before the tutorials' sigmoid or log-softmax."""
        res = inputs.flatten(1)
        for i, (layer, const) in enumerate(zip(self.weights, self.biases, strict=True)):
            res = res @ layer + const
            if i != len(self.weights) - 1:
                res = F.relu(res)
        return res

    def calc_preds(self, inputs: Tensor) -> Tensor:
        """One output: the probability of class 1, shape (N,); several: log-probabilities, shape (N, C)."""
        return self.activate(self(inputs))

    def activate(self, scores: Tensor) -> Tensor:
        """The tutorials' last step, from scores to predictions (see `calc_preds`)."""
        if self.output_dim == 1:
            return torch.sigmoid(scores).reshape(-1)
        return F.log_softmax(scores, dim=1)

    @torch.no_grad()
    def update_coeffs(self, lr: float) -> None:
        """The tutorials' SGD step: each parameter moves against its gradient, then the gradient is cleared."""
        for layer in [*self.weights, *self.biases]:
            layer.sub_(layer.grad * lr)
            layer.grad.zero_()


class SmallCNN(nn.Module):
    """A small convolutional network for small images (28x28 digits).

    Two blocks of 3x3 convolution, batch normalisation, ReLU and 2x2 max-pooling, then a hidden linear layer and one
    score per class.

    Args:
        in_channels: image channels (1 for grayscale).
        image_size: height and width of the images, in pixels.
        num_classes: classes to tell apart.
        channels: output channels of the two convolution blocks.
        hidden_dim: width of the linear layer after them.
        dropout: dropout probability before each linear layer.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64),
        hidden_dim: int = 128,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        _check_widths(in_channels=in_channels, num_classes=num_classes, channels=channels, hidden_dim=hidden_dim)
        if not channels:
            raise ValueError("channels needs at least one convolution block, e.g. [32, 64]")
        side = image_size // 2 ** len(channels)  # each block halves the image
        if side < 1:
            raise ValueError(f"{image_size}x{image_size} images are too small for {len(channels)} blocks of pooling")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.image_size = image_size
        self.num_classes = num_classes
        self.channels = list(channels)
        self.hidden_dim, self.dropout = hidden_dim, dropout
        blocks: list[nn.Module] = []
        for width_in, width_out in pairwise([in_channels, *channels]):
            blocks += [
                nn.Conv2d(width_in, width_out, 3, padding=1, bias=False),  # the batch norm after it has the bias
                nn.BatchNorm2d(width_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels[-1] * side * side, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_classes),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.features(images))
