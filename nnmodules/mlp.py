"""The everyday multilayer perceptron, for classes and for numbers: `Classifier` and `Regressor` over `nets.MLP`."""

from __future__ import annotations

from collections.abc import Sequence

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
        dropout: dropout probability after each hidden layer.
        lr: peak learning rate of the default optimizer (Adam, one-cycle schedule).
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" or "constant" (see `Classifier`).
        numeric_features: how many of the first inputs are a table's numbers (linked from the data module
            by the CLI): above 0, each is embedded first (`nets.TableMLP`); 0 (images): a plain `nets.MLP`.
        embedding_dim, frequency_scale: the embeddings of those numbers (see `nets.TableMLP`).
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
        lr_schedule: Schedule = "one_cycle",
        numeric_features: int = 0,
        embedding_dim: int = 16,
        frequency_scale: float = 0.1,
    ) -> None:
        net = _mlp(input_dim, hidden_dims, num_classes, dropout, numeric_features, embedding_dim, frequency_scale)
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
        dropout: dropout probability after each hidden layer.
        lr: peak learning rate of the default optimizer (Adam, one-cycle schedule).
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" or "constant" (see `Regressor`).
        target_mean, target_std: how the data scaled the targets (linked from the data module by the CLI).
        numeric_features: how many of the first inputs are a table's numbers (linked from the data module
            by the CLI): above 0, each is embedded first (`nets.TableMLP`); 0: a plain `nets.MLP`.
        embedding_dim, frequency_scale: the embeddings of those numbers (see `nets.TableMLP`).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (128, 128),
        dropout: float = 0.1,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "one_cycle",
        target_mean: float = 0.0,
        target_std: float = 1.0,
        numeric_features: int = 0,
        embedding_dim: int = 16,
        frequency_scale: float = 0.1,
    ) -> None:
        net = _mlp(input_dim, hidden_dims, 1, dropout, numeric_features, embedding_dim, frequency_scale)
        super().__init__(net, target_mean, target_std, lr=lr, weight_decay=weight_decay, lr_schedule=lr_schedule)
        self.example_input_array = torch.zeros(1, input_dim)  # for the TensorBoard graph


def _mlp(
    input_dim: int,
    hidden_dims: Sequence[int],
    output_dim: int,
    dropout: float,
    numeric_features: int,
    embedding_dim: int,
    frequency_scale: float,
) -> MLP | TableMLP:
    """A plain MLP, or, for a table's numbers, one that embeds them first."""
    if not numeric_features:
        return MLP(input_dim, hidden_dims, output_dim, dropout=dropout)
    return TableMLP(input_dim, hidden_dims, output_dim, numeric_features, embedding_dim, frequency_scale, dropout)
