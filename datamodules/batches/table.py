"""`TensorTable`: a split's rows as equally long tensors, fetched a batch of rows at a time by one gather each."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset

from datamodules.errors import UserError


class TensorTable(Dataset):
    """Rows of equally long tensors, fetched a batch of rows at a time.

    Args:
        *tensors: tensors that share their first dimension (e.g. features, targets).
        transform: applied to the first tensor of every batch (e.g. uint8 pixels to
            normalised floats), so the stored table stays small.
    """

    def __init__(self, *tensors: Tensor, transform: Callable[[Tensor], Tensor] | None = None) -> None:
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise UserError(f"TensorTable needs tensors of equal length, got {[len(t) for t in tensors]}")
        self.tensors = tensors
        self.transform = transform

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, ...]:
        """One batch: the DataLoader asks for all its rows at once, and gets them by one gather per tensor."""
        return self[torch.tensor(indices, device=self.device)]

    def __getitem__(self, index: int | Tensor) -> tuple[Tensor, ...]:
        """One row for an int; one batch for a tensor of row indices (what `DeviceBatches` hands out)."""
        if not isinstance(index, Tensor):
            return tuple(column[0] for column in self[torch.tensor([index], device=self.device)])
        # index_select: t[index] takes advanced indexing's slower, general path
        first, *rest = (t.index_select(0, index) for t in self.tensors)
        if self.transform is not None:
            first = self.transform(first)
        return (first, *rest)

    @property
    def device(self) -> torch.device:
        return self.tensors[0].device

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def to(self, device: torch.device | str) -> TensorTable:
        """The same rows on `device` (this table itself when they are there already)."""
        if self.device == torch.device(device):
            return self
        return TensorTable(*(t.to(device) for t in self.tensors), transform=self.transform)
