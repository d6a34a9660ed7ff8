"""The "from scratch" tutorials' network: a raw weight matrix and bias per layer, as plain `nn.Parameter`s."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamodules.arguments import KeepsArguments
from datamodules.choices import check_choice
from nnmodules.nets.mlp import check_widths

ScratchInit = Literal["kaiming", "tutorial"]  # the scratch net's first weights: see `ScratchNet`


class ScratchNet(KeepsArguments, nn.Module):
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
        check_widths(input_dim=input_dim, hidden_dims=hidden_dims, output_dim=output_dim)
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
