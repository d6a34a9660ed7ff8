"""The contract of a network that is k networks in one: `Ensemble`."""

from __future__ import annotations

from torch import nn


class Ensemble(nn.Module):
    """A network of `k` members in one, which gives each example k predictions: shape (N, k, outputs).

    `Classifier` and `Regressor` train each member on its own predictions (the mean of the members' losses, as
    TabM is trained) and answer with the members together: the mean of their class probabilities, or of their
    numbers. Everything downstream of the model (metrics, checkpoints' scores, predictions, exports) sees one
    prediction per example, as from any network. Subclass it (before `nn.Module`'s other subclasses) and set `k`.
    """

    k: int
