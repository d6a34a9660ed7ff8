"""The contract of a network that is k networks in one (`Ensemble`), and networks trained apart as one (`Members`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from datamodules.arguments import KeepsArguments
from datamodules.errors import UserError
from nnmodules.nets.configs import build_from_config


class Ensemble(nn.Module):
    """A network of `k` members in one, which gives each example k predictions: shape (N, k, outputs).

    `Classifier` and `Regressor` train each member on its own predictions (the mean of the members' losses, as
    TabM is trained) and answer with the members together: the mean of their class probabilities, or of their
    numbers. Everything downstream of the model (metrics, checkpoints' scores, predictions, exports) sees one
    prediction per example, as from any network. Subclass it (before `nn.Module`'s other subclasses) and set `k`.
    """

    k: int


class Members(KeepsArguments, Ensemble):
    """Networks trained apart, as one ensemble: every member's outputs side by side, (N, k, outputs).

    The folds of a cross-validation as one model (`nnmodules.runs.ensemble_of`). A member that is an ensemble
    itself (`TabM`) brings its own members, so that every member counts alike in the mean.

    Args:
        members: each network's config (`class_path`, `init_args`), as a checkpoint keeps it.
    """

    def __init__(self, members: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        if not members:
            raise UserError("Members needs at least one network")
        self.members = nn.ModuleList(build_from_config(config) for config in members)
        self.k = sum(net.k if isinstance(net, Ensemble) else 1 for net in self.members)

    def forward(self, inputs: Tensor) -> Tensor:
        outputs = [net(inputs) if isinstance(net, Ensemble) else net(inputs).unsqueeze(1) for net in self.members]
        return torch.cat(outputs, dim=1)
