"""The one fast batch path: in-memory tensors handed out a batch at a time.

A data module decodes each split once into tensors (features, targets). Batches
are then cut by tensor indexing: the DataLoader hands the batch's indices to
`TensorTable.__getitems__`, which gathers all rows at once; no per-sample
`__getitem__`, no collation of single examples, no PIL. The order comes from a
`DistributedSampler`, seeded by `seed + epoch`, so runs repeat exactly and DDP
ranks get disjoint shards. It is an ordinary `DataLoader`, so `num_workers`,
`pin_memory`, `overfit_batches`, prediction and the rest of what Lightning does
with data loaders keep working.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class TensorTable(Dataset):
    """Rows of equally long tensors, fetched a batch of rows at a time.

    Args:
        *tensors: tensors that share their first dimension (e.g. features, targets).
        transform: applied to the first tensor of every batch (e.g. uint8 pixels to
            normalised floats), so the stored table stays small.
    """

    def __init__(self, *tensors: Tensor, transform: Callable[[Tensor], Tensor] | None = None) -> None:
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError(f"TensorTable needs tensors of equal length, got {[len(t) for t in tensors]}")
        self.tensors = tensors
        self.transform = transform

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, ...]:
        """One batch: the DataLoader asks for all its rows at once, and gets them by one gather per tensor."""
        index = torch.tensor(indices)
        first, *rest = (t[index] for t in self.tensors)
        if self.transform is not None:
            first = self.transform(first)
        return (first, *rest)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(column[0] for column in self.__getitems__([index]))


def _world() -> tuple[int, int]:
    """(number of processes, this process's rank) of `torch.distributed`, or (1, 0) outside it."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _batch_as_is(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return batch  # `TensorTable.__getitems__` already returns a whole batch: nothing to collate


def batch_loader(
    table: TensorTable,
    batch_size: int,
    train: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A `DataLoader` that cuts `table` into batches by tensor indexing.

    Its sampler shards for DDP, also in a single process (one shard): Lightning
    leaves a sampler that already shards in place and calls its `set_epoch`.

    Args:
        table: the split to hand out.
        batch_size: rows per batch (per process under DDP).
        train: shuffle with a permutation seeded by `seed + epoch`, and under DDP give
            every rank as many batches (`DistributedSampler` pads with a few repeated
            rows); otherwise keep the order and give every row to exactly one rank,
            so evaluation metrics are exact.
        seed: base seed of the permutation.
        num_workers: worker processes (0: batches are cut in the main process).
        pin_memory: page-locked batches, for faster copies to a GPU.
    """
    num_replicas, rank = _world()
    sampler_class = DistributedSampler if train else UnrepeatedDistributedSampler
    sampler = sampler_class(table, num_replicas=num_replicas, rank=rank, shuffle=train, seed=seed)
    return DataLoader(
        table,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=_batch_as_is,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )


class TensorDataModule(L.LightningDataModule):
    """Base of the project's data modules: each split held as a `TensorTable`.

    Subclasses fill `self.tables` ("train", "val", "test", optionally "predict")
    in `setup`, or override `table`; this class turns them into data loaders.
    Like `num_features` and `num_classes` in subclasses, the attributes below say
    what a model needs: the task kind, and loss weights per class (linked by the CLI).

    Args:
        batch_size: rows per batch; a plain attribute, so `Tuner.scale_batch_size` can change it.
        seed: seeds the split of the data and the shuffle of every epoch.
        num_workers: worker processes per data loader; 0 (the default) is fastest for
            in-memory tables.
        pin_memory: hand out batches in page-locked memory, for faster copies to a GPU.
    """

    task = "multiclass"
    class_weights: list[float] | None = None
    target_mean, target_std = 0.0, 1.0  # regression targets are fed as (target - mean) / std

    def __init__(self, batch_size: int, seed: int = 42, num_workers: int = 0, pin_memory: bool = False) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be 0 or more, got {num_workers}")
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.tables: dict[str, TensorTable] = {}

    def table(self, split: str) -> TensorTable:
        """One split's table; subclasses that build tables on demand override this."""
        if split not in self.tables:
            raise RuntimeError(f"{type(self).__name__} has no {split!r} split yet: call setup() first")
        return self.tables[split]

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        return batch_loader(
            self.table(split),
            self.batch_size,
            train=train,
            seed=self.seed,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict" if "predict" in self.tables else "test")
