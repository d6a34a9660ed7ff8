"""An MLP for tables, whose numbers each go through an embedding of their own first (rtdl_num_embeddings)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from rtdl_num_embeddings import PeriodicEmbeddings
from torch import Tensor, nn

from datamodules.arguments import KeepsArguments
from datamodules.errors import UserError
from nnmodules.nets.mlp import MLP, check_widths


class TableMLP(KeepsArguments, nn.Module):
    """An `MLP` for tables whose numbers each go through an embedding of their own first.

    A table's inputs come in two named parts (`DataFacts.parts`): its `numbers` first, `numeric_features`
    of them, then the `others`. Each number becomes `embedding_dim` values,
    ReLU(Linear([sin, cos](2π c x))) with frequencies c learnt per feature and started at
    N(0, `frequency_scale`²): the "PLR-lite" embeddings of Gorishniy et al., "On Embeddings for
    Numerical Features in Tabular Deep Learning" (2022), from their `rtdl_num_embeddings`. An
    MLP on such embeddings learns the sharp, uneven steps trees find in a number. The other
    inputs (one-hot categories, missing-value flags) go to the MLP as they are.

    Args:
        input_dim: features per example.
        hidden_dims: width of each hidden layer.
        output_dim: outputs per example: one score per class, or 1 (a binary logit, a regression).
        numeric_features: how many of the first inputs are numbers to embed; 0 (or None, unless the data fills
            it: `Classifier(net=TableMLP)`): a plain `MLP`'s inputs.
        embedding_dim: values per embedded number.
        frequency_scale: deviation of the starting frequencies, for numbers scaled to about ±3.
        dropout: dropout probability after each hidden layer.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        output_dim: int,
        numeric_features: int | None = None,
        embedding_dim: int = 16,
        frequency_scale: float = 0.1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_widths(input_dim=input_dim, embedding_dim=embedding_dim)
        numeric_features = numeric_features or 0
        if not 0 <= numeric_features <= input_dim:
            raise UserError(f"numeric_features must be from 0 to input_dim ({input_dim}), got {numeric_features}")
        if frequency_scale <= 0:
            raise UserError(f"frequency_scale must be above 0, got {frequency_scale}")
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
        # the table's two parts, in the order its data declares them (`DataFacts.parts`): numbers, then the others
        numbers, others = inputs.split([self.numeric_features, self.input_dim - self.numeric_features], dim=1)
        return self.mlp(torch.cat([self.numbers(numbers).flatten(1), others], dim=1))
