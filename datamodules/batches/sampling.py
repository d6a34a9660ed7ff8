"""The order of a split's rows: a seeded shuffle per epoch, DDP shards, and where an interrupted epoch goes on.

Each epoch's order depends only on (seed, epoch), so a run repeats exactly and DDP ranks take disjoint
shares; a resumed run skips the rows of its interrupted epoch that were trained already. Evaluation gives
every row to exactly one rank, in the batches one process would make, so metrics are exact under DDP.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler

from datamodules.batches.table import TensorTable


def _world() -> tuple[int, int]:
    """(number of processes, this process's rank) of `torch.distributed`, or (1, 0) outside it."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


POSITION = "epoch_position"  # the key of an interrupted epoch's position in a data module's state


def epoch_order(rows: int, seed: int, epoch: int, total: int, device: torch.device | str = "cpu") -> Tensor:
    """An epoch's shuffled row order: `torch.randperm` seeded by `seed + epoch`.

    Repeated from its start up to `total` rows as `DistributedSampler` pads it (so that every DDP rank takes as many
    rows).
    """
    generator = torch.Generator(device).manual_seed(seed + epoch)
    order = torch.randperm(rows, generator=generator, device=device)
    return order.repeat(math.ceil(total / rows))[:total]


class Resumption:
    """Where a resumed run's interrupted epoch goes on: `rows` of its global order were trained already.

    The global order is `epoch_order`; rank r of n takes its rows r, r + n, r + 2n, ..., so after k steps of
    b rows on each of n ranks, the first k * b * n rows of it are done.
    """

    def __init__(self) -> None:
        self.set()

    def set(self, epoch: int = -1, rows: int = 0) -> None:
        self.epoch, self.rows = epoch, rows

    def start(self, epoch: int) -> int:
        """Rows of `epoch`'s global order to skip: those done before the interruption, in its epoch only."""
        return self.rows if epoch == self.epoch else 0


class TrainSampler(DistributedSampler):
    """`DistributedSampler`'s shuffled shards (the same order), which can start partway through an epoch."""

    def __init__(self, table: Dataset, num_replicas: int, rank: int, seed: int, resumption: Resumption) -> None:
        super().__init__(table, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.resumption = resumption

    def __iter__(self):
        order = epoch_order(len(self.dataset), self.seed, self.epoch, self.total_size)
        return iter(order[self.resumption.start(self.epoch) + self.rank :: self.num_replicas].tolist())


def evaluation_rows(rows: int, batch_size: int, num_replicas: int, rank: int) -> Tensor:
    """One rank's evaluation rows, in order: the one-process batches, every `num_replicas`-th of them.

    Each row is evaluated once, in a batch of exactly the rows it has in a single
    process, so every rank computes the very outputs one process would (a matrix
    product's last bits depend on the batch it is part of), and metrics gathered
    from all ranks equal the one-process metrics exactly. A split of fewer batches
    than processes is dealt out row by row instead, so that no rank is left
    without a batch (equal then up to rounding).
    """
    order = torch.arange(rows)
    batches = order.split(batch_size)
    if len(batches) < num_replicas:
        return order[rank::num_replicas]
    return torch.cat(batches[rank::num_replicas])


class BatchShards(DistributedSampler):
    """The host path's evaluation order under DDP: this rank's `evaluation_rows`, each row once."""

    def __init__(self, table: Dataset, batch_size: int, num_replicas: int, rank: int) -> None:
        super().__init__(table, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.rows = evaluation_rows(len(table), batch_size, num_replicas, rank).tolist()
        self.num_samples = self.total_size = len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return self.num_samples


class DeviceBatches(DistributedSampler):
    """Whole batches of row indices, as tensors on the table's device: how a device-resident table is cut.

    A shuffled epoch is `torch.randperm` on the device, seeded by `seed + epoch`
    (on the CPU this is the very order of the host path's `DistributedSampler`).
    Under DDP each rank takes every `num_replicas`-th index in training, padded
    with repeated rows as `DistributedSampler` does, so ranks take as many steps;
    in evaluation every `num_replicas`-th batch (`evaluation_rows`).

    Args:
        table: the split, already on its device.
        batch_size: rows per batch (per process under DDP).
        train: shuffle and pad (training) or keep the order (evaluation).
        seed: base seed of the permutation.
        num_replicas, rank: the DDP world, (1, 0) in one process.
        drop_last_batch: leave out the last batch when it is shorter than `batch_size`.
        resumption: where an interrupted epoch goes on (training only).
    """

    def __init__(
        self,
        table: TensorTable,
        batch_size: int,
        train: bool,
        seed: int,
        num_replicas: int,
        rank: int,
        drop_last_batch: bool = False,
        resumption: Resumption | None = None,
    ) -> None:
        super().__init__(table, num_replicas=num_replicas, rank=rank, shuffle=train, seed=seed)
        self.batch_size, self.drop_last_batch = batch_size, drop_last_batch
        self.resumption = resumption or Resumption()

    def __iter__(self):
        device = self.dataset.device
        if not self.shuffle:  # evaluation: this rank's share of the one-process batches
            return iter(self._evaluation_rows().to(device).split(self.batch_size))
        order = epoch_order(len(self.dataset), self.seed, self.epoch, self.total_size, device)
        start = self.resumption.start(self.epoch)
        batches = order[start + self.rank :: self.num_replicas].split(self.batch_size)
        if self.drop_last_batch and batches and len(batches[-1]) < self.batch_size:
            batches = batches[:-1]
        return iter(batches)

    def _evaluation_rows(self) -> Tensor:
        return evaluation_rows(len(self.dataset), self.batch_size, self.num_replicas, self.rank)

    def __len__(self) -> int:
        if not self.shuffle:
            return math.ceil(len(self._evaluation_rows()) / self.batch_size)
        if self.drop_last_batch:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)
