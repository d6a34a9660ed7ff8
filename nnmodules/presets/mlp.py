"""The everyday multilayer perceptron, for classes and for numbers: `Classifier` and `Regressor` over `nets.MLP`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from datamodules.contract import DataFacts
from datamodules.errors import UserError
from nnmodules.nets import MLP, TableMLP, check_dropout, check_widths
from nnmodules.tasks import Classifier, Regressor, Schedule

EMBED_FROM_ROWS = 1_000  # a table's numbers are embedded from this many training rows on (fewer: they overfit)


class MLPClassifier(Classifier):
    """Linear layers with ReLU between them, ending in one score per class: a `Classifier` over `nets.MLP`.

    The defaults are the MNIST tutorial's 784-128-128-10 network, with this project's recipe: dropout 0.1 and
    Adam on a one-cycle schedule peaking at 3e-3. Inputs of any shape are flattened, so 1x28x28 images work
    as well as 784-vectors. On a table, each of its numbers can go through an embedding of its own first
    (`nets.TableMLP`). What is left as None comes from the data when the Trainer sets the model up.

    Args:
        input_dim: features per example; None: the data's.
        hidden_dims: width of each hidden layer; empty for logistic regression.
        num_classes: classes to tell apart; None: the data's.
        class_weights: a loss weight per class; None: the data's (e.g. its "balanced" weights), or none.
        lr: peak learning rate of the default optimizer (Adam, one-cycle schedule).
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" or "constant" (see `Classifier`).
        dropout: dropout probability after each hidden layer.
        embed_numbers: embed a table's numbers (`nets.TableMLP`); None: for tables of 1,000 training rows or
            more, below which the embeddings' own weights overfit.
        numeric_features: how many of the inputs are numbers to embed (they come first); None: the data's when
            embedding, else 0.
        embedding_dim, frequency_scale: the embeddings' (see `nets.TableMLP`).
        betas: Adam's (see `Classifier`).
        label_smoothing: in training, the share of each target spread over the classes (see `Classifier`).
    """

    def __init__(
        self,
        input_dim: int | None = None,
        hidden_dims: Sequence[int] = (128, 128),
        num_classes: int | None = None,
        class_weights: Sequence[float] | None = None,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "one_cycle",
        dropout: float = 0.1,
        embed_numbers: bool | None = None,
        numeric_features: int | None = None,
        embedding_dim: int = 16,
        frequency_scale: float = 0.1,
        betas: Sequence[float] = (0.9, 0.999),
        label_smoothing: float = 0.0,
    ) -> None:
        self.net_settings = mlp_settings(
            input_dim, hidden_dims, dropout, embed_numbers, numeric_features, embedding_dim, frequency_scale
        )
        super().__init__(
            None, num_classes, "multiclass", class_weights, lr, weight_decay, lr_schedule, betas, label_smoothing
        )

    def can_build(self, facts: DataFacts | None) -> bool:
        return facts is not None or (self.net_settings["input_dim"] is not None and self.num_classes is not None)

    def make_network(self, facts: DataFacts | None) -> nn.Module:
        return mlp_network(self, facts, self.num_classes)


class MLPRegressor(Regressor):
    """Linear layers with ReLU between them, ending in one number: a `Regressor` over `nets.MLP`.

    For tables with a numeric target (best fed standardised, as `TabularDataModule` does by default). What is
    left as None comes from the data when the Trainer sets the model up.

    Args:
        input_dim: features per example; None: the data's.
        hidden_dims: width of each hidden layer.
        target_mean, target_std: how the data scaled the targets; None: the data's.
        lr: peak learning rate of the default optimizer (Adam, one-cycle schedule).
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" or "constant" (see `Regressor`).
        dropout, embed_numbers, numeric_features, embedding_dim, frequency_scale, betas: as for `MLPClassifier`.
    """

    def __init__(
        self,
        input_dim: int | None = None,
        hidden_dims: Sequence[int] = (128, 128),
        target_mean: float | None = None,
        target_std: float | None = None,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "one_cycle",
        dropout: float = 0.1,
        embed_numbers: bool | None = None,
        numeric_features: int | None = None,
        embedding_dim: int = 16,
        frequency_scale: float = 0.1,
        betas: Sequence[float] = (0.9, 0.999),
    ) -> None:
        self.net_settings = mlp_settings(
            input_dim, hidden_dims, dropout, embed_numbers, numeric_features, embedding_dim, frequency_scale
        )
        super().__init__(
            None, target_mean, target_std, lr=lr, weight_decay=weight_decay, lr_schedule=lr_schedule, betas=betas
        )

    def can_build(self, facts: DataFacts | None) -> bool:
        return facts is not None or self.net_settings["input_dim"] is not None

    def make_network(self, facts: DataFacts | None) -> nn.Module:
        return mlp_network(self, facts, 1)


def mlp_settings(
    input_dim: int | None,
    hidden_dims: Sequence[int],
    dropout: float,
    embed_numbers: bool | None,
    numeric_features: int | None,
    embedding_dim: int,
    frequency_scale: float,
) -> dict[str, Any]:
    """The MLP presets' network settings, checked now: what builds the network once the data gives the rest."""
    check_widths(hidden_dims=hidden_dims, embedding_dim=embedding_dim)
    check_dropout(dropout)
    return {
        "input_dim": input_dim, "hidden_dims": hidden_dims, "dropout": dropout, "embed_numbers": embed_numbers,
        "numeric_features": numeric_features, "embedding_dim": embedding_dim, "frequency_scale": frequency_scale,
    }  # fmt: skip


def mlp_network(model: MLPClassifier | MLPRegressor, facts: DataFacts | None, output_dim: int) -> MLP | TableMLP:
    """The MLP presets' network, from their settings and the data's facts: an `MLP`, or a `TableMLP` that embeds."""
    settings = model.net_settings
    input_dim = model.input_width(settings["input_dim"], facts)
    numeric_features = settings["numeric_features"]
    if numeric_features is not None:  # as given: 0 embeds nothing, more must be the data's count of numbers
        known = facts.numeric_features if facts is not None and numeric_features else None
        numeric_features = model.take("numeric_features", numeric_features, known)
    else:  # the data's numbers, if they are embedded
        embed = settings["embed_numbers"]
        if embed is None:
            embed = facts is not None and facts.numeric_features > 0 and (facts.training_rows or 0) >= EMBED_FROM_ROWS
            model.from_data["embed_numbers"] = embed
        elif embed and facts is None:
            raise UserError("embed_numbers=True embeds a table's numbers: give numeric_features, or train on its data")
        numeric_features = model.from_data["numeric_features"] = facts.numeric_features if embed else 0
    model.example_input_array = torch.zeros(1, input_dim)  # for TensorBoard's graph
    if not numeric_features:
        return MLP(input_dim, settings["hidden_dims"], output_dim, dropout=settings["dropout"])
    embeddings = {name: settings[name] for name in ("embedding_dim", "frequency_scale", "dropout")}
    return TableMLP(input_dim, settings["hidden_dims"], output_dim, numeric_features, **embeddings)
