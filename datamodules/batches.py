"""The one fast batch path: in-memory tensors handed out a batch at a time.

A data module decodes each split once into tensors (features, targets). Batches
are then cut by tensor indexing: the DataLoader hands the batch's indices to
`TensorTable.__getitems__`, which gathers all rows at once; no per-sample
`__getitem__`, no collation of single examples, no PIL. The order comes from a
`DistributedSampler`, seeded by `seed + epoch`, so runs repeat exactly and DDP
ranks get disjoint shards. It is an ordinary `DataLoader`, so `num_workers`,
`pin_memory`, `overfit_batches`, prediction and the rest of what Lightning does
with data loaders keep working.

Faster still, the tables can live on the Trainer's device (`device_resident`:
by default on a CPU, and on a GPU when they take at most half its free memory).
Then `DeviceBatches` permutes the rows with `torch.randperm` on the device and
hands out whole index tensors: no lists of indices, and on a GPU an epoch copies
nothing from the host, which never waits for the device. On a CPU the order is
the host path's.

Evaluation uses `eval_batch_size` (by default 4 x `batch_size`): it keeps no
activations for a backward pass, so larger batches fit, and fewer steps cost
less.

A checkpoint written mid-epoch (`interrupted.ckpt`) holds how far the epoch got
(`TensorDataModule.state_dict`), and the resumed run goes on with the next rows
of the same epoch's order: the samplers own the order, so they skip what was
trained. Lightning cannot do this for them: it does not hand a loader its state
back when `estimated_stepping_batches` was asked first
(Lightning-AI/pytorch-lightning#20550), and it prefetches a batch ahead.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from nnmodules._lightning import epoch_position


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


class TensorDataModule(L.LightningDataModule, metaclass=abc.ABCMeta):
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
        eval_batch_size: rows per validation, test and prediction batch; None: 4 x `batch_size`.
        drop_last: leave out each training epoch's last batch when it is shorter than the
            others (its rows still train in other epochs: each epoch shuffles anew), so all
            training batches have one shape, as compiled models and CUDA graphs like.
        device_resident: keep the tables on the Trainer's device and cut training and
            evaluation batches there (`DeviceBatches`); None: yes with `num_workers` 0 on
            a CPU (the tables are there already) or on a CUDA GPU where all tables take at
            most half its free memory. Otherwise, for prediction and for `overfit_batches`
            runs, the `DataLoader`'s own batching (`batch_loader`).
    """

    task = "multiclass"
    image_shape: tuple[int, ...] | None = None  # (channels, height, width) of image data
    class_weights: list[float] | None = None
    target_mean, target_std = 0.0, 1.0  # regression targets are fed as (target - mean) / std
    numeric_features = 0  # how many of the first input features are a table's numbers
    embeds_numbers = False  # whether models that can should embed those numbers (TabularDataModule decides)
    # arguments that say where data is or how fast it comes, not what is learnt: left out of TensorBoard's HParams
    plumbing: tuple[str, ...] = ("num_workers", "pin_memory", "eval_batch_size", "device_resident")

    def __init__(
        self,
        batch_size: int | None,
        seed: int = 42,
        num_workers: int = 0,
        pin_memory: bool = False,
        eval_batch_size: int | None = None,
        drop_last: bool = False,
        device_resident: bool | None = None,
    ) -> None:
        super().__init__()
        if batch_size is not None and batch_size < 1:  # None: a subclass chooses (TabularDataModule: by size)
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if eval_batch_size is not None and eval_batch_size < 1:
            raise ValueError(f"eval_batch_size must be at least 1 (or None: 4 x batch_size), got {eval_batch_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be 0 or more, got {num_workers}")
        if device_resident and num_workers:
            raise ValueError(
                f"device_resident=True cuts batches on the device, in the main process: num_workers must be 0, "
                f"got {num_workers}"
            )
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.drop_last = seed, drop_last
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.device_resident = device_resident
        self.tables: dict[str, TensorTable] = {}
        self._on_device: dict[str, tuple[TensorTable, TensorTable]] = {}  # split: (table, its copy on the device)
        self.resumption = Resumption()  # shared with the training loaders

    @abc.abstractmethod
    def setup(self, stage: str | None = None) -> None:
        """Fills `self.tables` with the splits `stage` needs."""

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The shape of one example's inputs, once a split is set up (None before)."""
        table = next(iter(self.tables.values()), None)
        return None if table is None else tuple(table.tensors[0].shape[1:])

    def example_inputs(self, rows: int) -> Tensor:
        """`rows` examples' inputs as the tables hold them (before `batch_transform`): what an exported model takes.

        The first rows of a set-up split; subclasses that know their inputs without reading data override this.
        """
        table = next(iter(self.tables.values()), None)
        if table is None:
            raise RuntimeError(f"{type(self).__name__} has no split yet to take example inputs from: call setup()")
        return table.tensors[0][:rows]

    @property
    def batch_transform(self) -> Callable[[Tensor], Tensor] | None:
        """What every batch's inputs go through on their way to the model (see `TensorTable`), or None."""
        table = next(iter(self.tables.values()), None)
        return None if table is None else table.transform

    def table(self, split: str) -> TensorTable:
        """One split's table; subclasses that build tables on demand override this."""
        if split not in self.tables:
            raise RuntimeError(f"{type(self).__name__} has no {split!r} split yet: call setup() first")
        return self.tables[split]

    def resident_device(self) -> torch.device | None:
        """Where the tables live while the Trainer runs: its device, or None for the host path."""
        trainer = self.trainer
        if self.device_resident is False or trainer is None or trainer.overfit_batches:
            return None  # (overfit_batches: Lightning swaps in a sampler of its own)
        device = trainer.strategy.root_device
        if self.device_resident is None:  # automatic: the CPU (nothing to copy), or a CUDA GPU with room to spare
            if self.num_workers or device.type not in ("cpu", "cuda"):
                return None
            tables_bytes = sum(table.nbytes for table in self.tables.values())
            if device.type == "cuda" and tables_bytes > torch.cuda.mem_get_info(device)[0] / 2:
                return None
        return device

    def _loader(self, split: str, train: bool = False, host: bool = False) -> DataLoader | DeviceLoader:
        table = self.table(split)
        batch_size = self.batch_size if train else self.eval_batch_size or 4 * self.batch_size
        device = None if host else self.resident_device()
        if device is not None:
            if self._on_device.get(split, (None,))[0] is not table:  # copied once per table
                self._on_device[split] = table, table.to(device)
            resident = self._on_device[split][1]
            return device_loader(resident, batch_size, train, self.seed, train and self.drop_last, self.resumption)
        return batch_loader(
            table,
            batch_size,
            train=train,
            seed=self.seed,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=train and self.drop_last,
            resumption=self.resumption,
        )

    def train_dataloader(self) -> DataLoader | DeviceLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader | DeviceLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader | DeviceLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        # the host path: Lightning tracks the rows of each prediction batch through its batch sampler
        return self._loader(self.predict_split, host=True)

    @property
    def predict_split(self) -> str:
        """What `predict` predicts: the "predict" table when there is one, else the test split."""
        return "predict" if "predict" in self.tables else "test"

    @property
    def predict_name(self) -> str:
        """What `predict` predicts, as a file name: "test" for the test split."""
        return self.predict_split

    def prediction_rows(self) -> pd.DataFrame:
        """Who each predicted row is, in the order of `predict`: its position in the split it comes from."""
        return pd.DataFrame({"row": range(len(self.table(self.predict_split)))})

    def state_dict(self) -> dict[str, Any]:
        """Mid-epoch (the checkpoint of an interrupted run), how far the epoch got; otherwise nothing."""
        trainer = self.trainer
        if trainer is None or not trainer.training:
            return {}
        epoch, batches = epoch_position(trainer)
        if not batches:
            return {}
        rows_per_step = self.batch_size * trainer.world_size  # the same in every step of an epoch (see below)
        return {POSITION: {"epoch": epoch, "batches": batches, "rows_per_step": rows_per_step}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Where an interrupted epoch goes on.

        It goes on in the steps it began with: Lightning counts an epoch's batches, and ends it at the count it
        expects. A mid-epoch checkpoint with other steps than this run's (another batch size or number of processes)
        is refused, before any training step.
        """
        position = state_dict.get(POSITION)
        if position is None:
            self.resumption.set()
            return
        before, trainer = position["rows_per_step"], self.trainer
        if trainer is not None and before != self.batch_size * trainer.world_size:
            last = Path(trainer.ckpt_path or ".").with_name("last.ckpt")
            raise ValueError(
                f"{trainer.ckpt_path} stopped in the middle of epoch {position['epoch']}, after "
                f"{position['batches']} steps of {before} rows (batch_size x processes), and this run takes "
                f"{self.batch_size} x {trainer.world_size}: an epoch goes on in the steps it began with. Finish it "
                f"with the batch size and processes it had, then change them at the next `--ckpt_path last`; "
                f"or go on from the end of the epoch before, in a new run folder, with `--ckpt_path {last}`"
            )
        self.resumption.set(position["epoch"], position["batches"] * before)
