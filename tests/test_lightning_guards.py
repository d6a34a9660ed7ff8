"""Guards: the Lightning internals of nnmodules/_lightning.py still mean what they meant.

One test per function or class there; each fails with a message naming it when Lightning changes the thing.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import VAL_SIZE
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.profilers import SimpleProfiler
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_runs import LOGS_OFTEN
from torch.utils.tensorboard.summary import scalar

from datamodules import MNISTDataModule
from nnmodules import MLPClassifier, _lightning
from nnmodules._lightning import (
    FastHookNames,
    NoProfiler,
    epoch_position,
    epochs_done,
    is_last_batch,
    logs_this_step,
    tensorboard_writer,
    trainer_of,
)
from nnmodules.runs import make_trainer
from nnmodules.tasks.checkpoints import read_checkpoint

STEPS = 8  # per epoch: 256 fake training images in batches of 32


def mnist(mnist_dir: Path) -> MNISTDataModule:
    return MNISTDataModule(mnist_dir, batch_size=32, val_size=VAL_SIZE, download=False)


def trainer_in(folder: Path, epochs: int, **overrides) -> L.Trainer:
    return make_trainer("run", save_dir=folder, max_epochs=epochs, **{**LOGS_OFTEN, **overrides})


class Positions(L.Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[int, int, bool]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.seen.append((*epoch_position(trainer), is_last_batch(trainer)))


def test_guard_epoch_position_is_last_batch_and_epochs_done(mnist_dir, tmp_path):
    positions = Positions()
    trainer = trainer_in(tmp_path, epochs=2)
    trainer.callbacks.append(positions)
    trainer.fit(MLPClassifier(), mnist(mnist_dir))
    # at a step's end: the steps done, this one counted; on the epoch's last, a finished epoch (0)
    expected = [
        (epoch, batch, last) for epoch in (0, 1) for batch, last in [*((b, False) for b in range(1, STEPS)), (0, True)]
    ]
    assert positions.seen == expected, (
        f"Lightning's loop counters changed meaning (see epoch_position, is_last_batch): {positions.seen}"
    )
    checkpoint = read_checkpoint(trainer.checkpoint_callback.last_model_path)
    assert epochs_done(checkpoint) == 2, "Lightning's saved fit-loop progress changed (see epochs_done)"


class StepsLogged(Logger):
    """A logger that notes the steps Lightning writes metrics at."""

    name, version = "steps", 0

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        if "every_step" in metrics:
            self.steps.append(step)

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


class LogsEveryStep(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer, self.said = torch.nn.Linear(2, 1), []

    def training_step(self, batch, batch_idx):
        self.said.append((self.global_step, logs_this_step(self.trainer)))
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("every_step", loss, on_step=True, on_epoch=False)  # Lightning writes it only on logging steps
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_guard_logs_this_step():
    model, logger = LogsEveryStep(), StepsLogged()
    trainer = L.Trainer(max_steps=10, logger=logger, enable_checkpointing=False, **LOGS_OFTEN)  # logs every 3 steps
    trainer.fit(model, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(10, 2)), batch_size=1))
    told = [step for step, logs in model.said if logs]
    assert told == logger.steps == [2, 5, 8], f"Lightning's should_update_logs changed (see logs_this_step): {told}"


def test_guard_trainer_of():
    model = MLPClassifier(hidden_dims=(4,))
    assert trainer_of(model) is None, "a module without a Trainer no longer keeps None in _trainer (see trainer_of)"
    trainer = L.Trainer(logger=False, **LOGS_OFTEN)
    model.trainer = trainer
    assert trainer_of(model) is trainer, "see trainer_of"


def test_guard_tensorboard_writer(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="", version=0)
    tensorboard_writer(logger).add_summary(scalar("written/by_hand", 1.5), global_step=4)
    logger.experiment.flush()
    events = EventAccumulator(logger.log_dir).Reload()
    assert [(e.step, e.value) for e in events.Scalars("written/by_hand")] == [(4, 1.5)], "see tensorboard_writer"


class HookNames(FastHookNames):
    def __init__(self) -> None:
        super().__init__()
        self.layer, self.names = torch.nn.Linear(2, 1), []

    def training_step(self, batch, batch_idx):
        self.names.append(self._current_fx_name)
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("loss", loss)  # reads _current_fx_name to know where it is logged from
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_guard_fast_hook_names():
    model = HookNames()
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, **LOGS_OFTEN)
    trainer.fit(model, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4, 2)), batch_size=2))
    assert model.names == ["training_step"] * 2, "Lightning no longer names the hook in _current_fx_name"
    assert "_current_fx_name" in vars(model) and "loss" in trainer.callback_metrics, "see FastHookNames"


@pytest.mark.parametrize(("nvml_loads", "expected"), [(False, "0"), (True, "1")])
def test_guard_skip_nvml_check_without_nvml(nvml_loads, expected, monkeypatch):
    def load(name):
        if not nvml_loads:
            raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # as importing Lightning sets it
    monkeypatch.setattr(_lightning.ctypes, "CDLL", load)
    make_trainer(logger=False, **LOGS_OFTEN)
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == expected


def test_guard_no_profiler():
    profiler = make_trainer(logger=False).profiler
    assert isinstance(profiler, NoProfiler)
    assert profiler.profile("[Callback]ModelCheckpoint.on_train_batch_start") is profiler.profile("[Strategy]backward")
    assert isinstance(make_trainer(logger=False, profiler=SimpleProfiler()).profiler, SimpleProfiler)


def test_guard_no_last_checkpoint_in_fast_dev_run(tmp_path, mnist):
    def fast_dev_run(trainer: L.Trainer) -> list[Path]:
        trainer.fit(MLPClassifier(hidden_dims=[8]), mnist)
        return list(Path(trainer.default_root_dir).rglob("*.ckpt"))

    plain = L.Trainer(
        default_root_dir=tmp_path / "plain", fast_dev_run=True, callbacks=[ModelCheckpoint(save_last=True)]
    )
    assert fast_dev_run(plain), "Lightning no longer saves last.ckpt in a fast_dev_run: remove the workaround"
    assert fast_dev_run(make_trainer("project", save_dir=tmp_path, fast_dev_run=True)) == []
