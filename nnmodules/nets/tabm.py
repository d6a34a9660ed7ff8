"""TabM for tables: an efficient ensemble of k MLPs sharing their weights, from its authors' `tabm` package."""

from __future__ import annotations

from typing import Literal

import tabm
import torch
from rtdl_num_embeddings import PeriodicEmbeddings
from torch import Tensor

from datamodules.arguments import KeepsArguments
from datamodules.choices import check_choice
from datamodules.errors import UserError
from nnmodules.nets.ensemble import Ensemble
from nnmodules.nets.mlp import check_dropout, check_widths

Architecture = Literal["tabm", "tabm-mini", "tabm-packed"]


class TabM(KeepsArguments, Ensemble):
    """TabM (Gorishniy et al., "TabM: Advancing Tabular Deep Learning with Parameter-Efficient Ensembling", 2025).

    k MLPs in one network: their linear layers share one weight matrix, each member scaling its inputs and
    outputs by vectors of its own (BatchEnsemble); all k learn at once from each batch, each on its own loss,
    and their predictions are averaged (`nets.Ensemble`). Built from the authors' parts (`tabm`'s backbone,
    `EnsembleView`, `LinearEnsemble`) as their `tabm.TabM` builds itself, for this project's table inputs: the
    numbers first, each embedded by periodic embeddings (`rtdl_num_embeddings`, shared by the members), then
    the other inputs as they come (one-hot categories, missing-value flags), each its own chunk of the first
    scaling's initialisation (the authors' give a category's one-hot columns one chunk).

    Args:
        input_dim: features per example.
        output_dim: outputs per example and member: one score per class, or 1 (a binary logit, a regression).
        numeric_features: how many of the first inputs are numbers to embed; 0 or None: none embedded.
        k: members.
        n_blocks: hidden layers; None: the authors' default, 2 with embedded numbers and 3 without.
        d_block: width of each hidden layer.
        dropout: dropout probability after each hidden layer.
        arch_type: "tabm" (a scaling per member before and after each layer), "tabm-mini" (one before the
            first layer only) or "tabm-packed" (k separate MLPs).
        embedding_dim: values per embedded number.
        frequency_scale: deviation of the embeddings' starting frequencies, for numbers scaled to about ±3.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        numeric_features: int | None = None,
        k: int = 32,
        n_blocks: int | None = None,
        d_block: int = 512,
        dropout: float = 0.1,
        arch_type: Architecture = "tabm",
        embedding_dim: int = 16,
        frequency_scale: float = 0.1,
    ) -> None:
        super().__init__()
        numeric_features = numeric_features or 0
        n_blocks = n_blocks if n_blocks is not None else (2 if numeric_features else 3)
        check_widths(input_dim=input_dim, output_dim=output_dim, k=k, n_blocks=n_blocks, d_block=d_block)
        check_widths(embedding_dim=embedding_dim)
        check_dropout(dropout)
        check_choice("arch_type", arch_type, Architecture)
        if not 0 <= numeric_features <= input_dim:
            raise UserError(f"numeric_features must be from 0 to input_dim ({input_dim}), got {numeric_features}")
        if frequency_scale <= 0:
            raise UserError(f"frequency_scale must be above 0, got {frequency_scale}")
        self.input_dim, self.output_dim, self.numeric_features, self.k = input_dim, output_dim, numeric_features, k
        self.numbers = None
        if numeric_features:
            self.numbers = PeriodicEmbeddings(
                numeric_features, embedding_dim, frequency_init_scale=frequency_scale, lite=False
            )
        chunks = [embedding_dim] * numeric_features + [1] * (input_dim - numeric_features)
        packed = arch_type == "tabm-packed"
        self.ensemble_view = tabm.EnsembleView(k=k)
        self.backbone = tabm.make_tabm_backbone(
            d_in=sum(chunks),
            n_blocks=n_blocks,
            d_block=d_block,
            dropout=dropout,
            k=k,
            arch_type=arch_type,
            # the authors' defaults (`tabm.TabM.make`): random signs, or normal scalings after embeddings
            start_scaling_init=None if packed else ("normal" if numeric_features else "random-signs"),
            start_scaling_init_chunks=None if packed else chunks,
        )
        self.output = tabm.LinearEnsemble(d_block, output_dim, k=k)

    def forward(self, inputs: Tensor) -> Tensor:
        """Each example's k predictions: (N, input_dim) in, (N, k, output_dim) out."""
        if self.numbers is not None:
            numbers, others = inputs.split([self.numeric_features, self.input_dim - self.numeric_features], dim=1)
            inputs = torch.cat([self.numbers(numbers).flatten(1), others], dim=1)
        return self.output(self.backbone(self.ensemble_view(inputs)))
