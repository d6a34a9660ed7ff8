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
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from datamodules._lightning import epoch_position
from datamodules.arguments import KeepsArguments
from datamodules.batches.loaders import DeviceLoader, batch_loader, device_loader
from datamodules.batches.sampling import POSITION, Resumption
from datamodules.batches.table import TensorTable
from datamodules.contract import DataFacts
from datamodules.errors import UserError


class TensorDataModule(KeepsArguments, L.LightningDataModule, metaclass=abc.ABCMeta):
    """Base of the project's data modules: each split held as a `TensorTable`, and the facts of the data.

    Subclasses read their data in `setup` (or take a checkpoint's state in `load_state_dict`), fill
    `self.tables` ("train", "val", "test", optionally "predict") with the splits asked for, and publish
    `facts` (`datamodules.contract.DataFacts`): what a model may know of the data. This class turns the tables
    into data loaders. The data module's arguments are its hyperparameters, as plain data (paths absolute, so
    that a run's config works from any folder), and travel in its checkpoints with its state.

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

    # arguments that say where data is or how fast it comes, not what is learnt: left out of TensorBoard's HParams
    plumbing: tuple[str, ...] = ("num_workers", "pin_memory", "eval_batch_size", "device_resident")
    paths: tuple[str, ...] = ()  # arguments that name files or folders: saved absolute

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
            raise UserError(f"batch_size must be at least 1, got {batch_size}")
        if eval_batch_size is not None and eval_batch_size < 1:
            raise UserError(f"eval_batch_size must be at least 1 (or None: 4 x batch_size), got {eval_batch_size}")
        if num_workers < 0:
            raise UserError(f"num_workers must be 0 or more, got {num_workers}")
        if device_resident and num_workers:
            raise UserError(
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
        self.facts: DataFacts | None = None  # set by setup, or by load_state_dict from a checkpoint's state
        # the arguments, saved in checkpoints (`datamodule_hyper_parameters`); not through `save_hyperparameters`,
        # which reads them again from the calling frames, where a DataFrame given as a table cannot be compared
        self.hparams.update(self.saved_arguments())

    def saved_arguments(self) -> dict[str, Any]:
        """The arguments as a checkpoint keeps them: plain data, `paths` absolute, data given as an object left out."""
        saved = {}
        for name, value in self.init_args.items():
            if name in self.paths and isinstance(value, (str, Path)):
                value = os.path.abspath(os.path.expanduser(value))
            saved[name] = None if isinstance(value, pd.DataFrame) else value  # a DataFrame would need pickle
        return saved

    @abc.abstractmethod
    def setup(self, stage: str | None = None) -> None:
        """Reads what `stage` needs (unless a checkpoint's state gave it), fills `self.tables`, sets `facts`."""

    def known_facts(self) -> DataFacts:
        """`facts`, or an error saying they come with `setup`."""
        if self.facts is None:
            raise UserError(
                f"{type(self).__name__} knows its data once set up: call setup('fit') first, or let the Trainer "
                "do it (a model takes its widths from the data then)"
            )
        return self.facts

    @property
    def num_features(self) -> int:
        """Input values per example (once set up)."""
        return self.known_facts().num_features

    @property
    def num_classes(self) -> int | None:
        """Classes to tell apart, None for a regression (once set up)."""
        return self.known_facts().num_classes

    @property
    def class_names(self) -> list[str] | None:
        """The classes in label order (once set up)."""
        names = self.known_facts().class_names
        return None if names is None else list(names)

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

    def deployment(self) -> dict[str, Any] | None:
        """What predicting raw inputs needs besides the model, as plain data (a table's preprocessing), or None."""
        return None

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
            raise UserError(
                f"{trainer.ckpt_path} stopped in the middle of epoch {position['epoch']}, after "
                f"{position['batches']} steps of {before} rows (batch_size x processes), and this run takes "
                f"{self.batch_size} x {trainer.world_size}: an epoch goes on in the steps it began with. Finish it "
                f"with the batch size and processes it had, then change them at the next `--ckpt_path last`; "
                f"or go on from the end of the epoch before, in a new run folder, with `--ckpt_path {last}`"
            )
        self.resumption.set(position["epoch"], position["batches"] * before)
