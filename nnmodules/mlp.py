"""The everyday multilayer perceptron, for classes and for numbers: `Classifier` and `Regressor` over `nets.MLP`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from nnmodules.classifier import Classifier
from nnmodules.nets import MLP, TableMLP
from nnmodules.regressor import Regressor
from nnmodules.tasks import Schedule


class MLPClassifier(Classifier):
    """Linear layers with ReLU between them, ending in one score per class: a `Classifier` over `nets.MLP`.

    The defaults are the MNIST tutorial's 784-128-128-10 network, with this project's
    recipe: dropout 0.1 and Adam on a one-cycle schedule peaking at 3e-3. Inputs of any
    shape are flattened, so 1x28x28 images work as well as 784-vectors.

    Args:
        input_dim: features per example (linked from the data module by the CLI).
        hidden_dims: width of each hidden layer; empty for logistic regression.
        num_classes: classes to tell apart (linked from the data module by the CLI).
        class_weights: a loss weight per class (linked from the data module by the CLI).
        lr: peak learning rate of the default optimizer (Adam, one-cycle schedule).
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" or "constant" (see `Classifier`).
        **net_settings: `dropout`, `numeric_features`, `embedding_dim`, `frequency_scale` (see `mlp_net`).
    """

    def __init__(
        self,
        input_dim: int = 784,
        hidden_dims: Sequence[int] = (128, 128),
        num_classes: int = 10,
        class_weights: Sequence[float] | None = None,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "one_cycle",
        **net_settings: Any,
    ) -> None:
        net = mlp_net(input_dim, hidden_dims, num_classes, **net_settings)
        super().__init__(
            net, num_classes, class_weights=class_weights, lr=lr, weight_decay=weight_decay, lr_schedule=lr_schedule
        )
        self.example_input_array = torch.zeros(1, input_dim)  # for the TensorBoard graph


class MLPRegressor(Regressor):
    """Linear layers with ReLU between them, ending in one number: a `Regressor` over `nets.MLP`.

    For tables with a numeric target (best fed standardised, as `TabularDataModule` does by default).

    Args:
        input_dim: features per example (linked from the data module by the CLI).
        hidden_dims: width of each hidden layer.
        target_mean, target_std: how the data scaled the targets (linked from the data module by the CLI).
        lr: peak learning rate of the default optimizer (Adam, one-cycle schedule).
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" or "constant" (see `Regressor`).
        **net_settings: `dropout`, `numeric_features`, `embedding_dim`, `frequency_scale` (see `mlp_net`).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (128, 128),
        target_mean: float = 0.0,
        target_std: float = 1.0,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "one_cycle",
        **net_settings: Any,
    ) -> None:
        net = mlp_net(input_dim, hidden_dims, 1, **net_settings)
        super().__init__(net, target_mean, target_std, lr=lr, weight_decay=weight_decay, lr_schedule=lr_schedule)
        self.example_input_array = torch.zeros(1, input_dim)  # for the TensorBoard graph


def mlp_net(
    input_dim: int,
    hidden_dims: Sequence[int],
    output_dim: int,
    dropout: float = 0.1,
    numeric_features: int = 0,
    **embeddings: Any,
) -> MLP | TableMLP:
    """The MLP presets' network: a plain `nets.MLP`, or, for a table's numbers, a `nets.TableMLP`.

    Args:
        input_dim: features per example.
        hidden_dims: width of each hidden layer.
        output_dim: outputs per example.
        dropout: dropout probability after each hidden layer.
        numeric_features: how many of the first inputs are a table's numbers (linked from the data module by
            the CLI): above 0, each is embedded first (`nets.TableMLP`); 0 (images): a plain `nets.MLP`.
        **embeddings: `embedding_dim` and `frequency_scale` of those embeddings (see `nets.TableMLP`).
    """
    if not numeric_features:
        return MLP(input_dim, hidden_dims, output_dim, dropout=dropout)
    return TableMLP(input_dim, hidden_dims, output_dim, numeric_features, dropout=dropout, **embeddings)
