"""Data loaders over a `TensorTable`: a `DataLoader` that cuts batches by indexing, or batches cut on the device.

`batch_loader` is an ordinary `DataLoader` (workers, pinned memory, Lightning's own handling of loaders);
`device_loader` hands out whole index tensors of a table that lives on the Trainer's device (`DeviceBatches`),
where a `DataLoader` would only add its own cost to every batch.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from datamodules.batches.sampling import BatchShards, DeviceBatches, Resumption, TrainSampler, _world
from datamodules.batches.table import TensorTable


def _batch_as_is(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return batch  # `TensorTable.__getitems__` already returns a whole batch: nothing to collate


def batch_loader(
    table: TensorTable,
    batch_size: int,
    train: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
    drop_last: bool = False,
    resumption: Resumption | None = None,
) -> DataLoader:
    """A `DataLoader` that cuts `table` into batches by tensor indexing.

    Its sampler shards for DDP, also in a single process (one shard): Lightning
    leaves a sampler that already shards in place and calls its `set_epoch`.

    Args:
        table: the split to hand out.
        batch_size: rows per batch (per process under DDP).
        train: shuffle with a permutation seeded by `seed + epoch`, and under DDP give
            every rank as many batches (`DistributedSampler` pads with a few repeated
            rows); otherwise keep the order and give every batch to exactly one rank
            (`BatchShards`), so evaluation metrics are exact.
        seed: base seed of the permutation.
        num_workers: worker processes (0: batches are cut in the main process).
        pin_memory: page-locked batches, for faster copies to a GPU.
        drop_last: leave out the last batch when it is shorter than `batch_size`.
        resumption: where an interrupted epoch goes on (training only).
    """
    num_replicas, rank = _world()
    if train:
        sampler = TrainSampler(table, num_replicas, rank, seed, resumption or Resumption())
    else:
        sampler = BatchShards(table, batch_size, num_replicas=num_replicas, rank=rank)
    return TableLoader(
        table,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=_batch_as_is,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        drop_last=drop_last,
        # each iteration draws a seed for its workers: from a generator of its own, not the global one, so
        # that data loading leaves the model's random numbers (dropout) alone and a resumed run repeats them
        generator=torch.Generator().manual_seed(seed),
    )


class TableLoader(DataLoader):
    """A `DataLoader` that says it resumes (see `state_dict`)."""

    def state_dict(self) -> dict:
        """Nothing: an interrupted epoch's position travels in the data module's state.

        Lightning always restores that state. Having these two methods tells Lightning the loader resumes mid-epoch,
        as it does.
        """
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class DeviceLoader:
    """A resident table's batches, one per index tensor of its `DeviceBatches`, as Lightning iterates them.

    A plain iterable, not a `DataLoader`: it has nothing to do for it (no workers,
    no collation, no pinning) and would add its own cost to every batch.
    Lightning calls its `sampler.set_epoch` and leaves it as it is under DDP.
    """

    batch_sampler = None  # Lightning looks for one beside `sampler`: the sampler hands out whole batches
    state_dict, load_state_dict = TableLoader.state_dict, TableLoader.load_state_dict  # resumes, as TableLoader

    def __init__(self, table: TensorTable, sampler: DeviceBatches) -> None:
        self.dataset, self.sampler = table, sampler

    def __iter__(self):
        # a generator: the order is drawn at the first batch, after Lightning's `set_epoch` (which can come
        # after `iter()`, as when a run resumes)
        for index in self.sampler:
            yield self.dataset[index]

    def __len__(self) -> int:
        return len(self.sampler)


def device_loader(
    table: TensorTable,
    batch_size: int,
    train: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    resumption: Resumption | None = None,
) -> DeviceLoader:
    """Batches of a table on its device, cut by `DeviceBatches` (arguments as `batch_loader`'s)."""
    num_replicas, rank = _world()
    sampler = DeviceBatches(table, batch_size, train, seed, num_replicas, rank, drop_last, resumption)
    return DeviceLoader(table, sampler)
