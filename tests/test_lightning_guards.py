"""Guards: the Lightning internals of nnmodules/_lightning.py still mean what they meant.

One test per function or class there; each fails with a message naming it when Lightning changes the thing.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import CONFIGS, VAL_SIZE
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.profilers import SimpleProfiler
from lightning.pytorch.utilities.exceptions import SIGTERMException
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_networks import TinyRegressionNet
from test_runs import LOGS_OFTEN
from torch.utils.tensorboard.summary import scalar

from datamodules import MNISTDataModule
from nnmodules import MLPClassifier, Regressor, _lightning
from nnmodules._lightning import (
    FastHookNames,
    NoProfiler,
    built_as_the_cli_builds,
    cli_hyperparameters,
    drop_hyperparameters,
    epoch_position,
    epochs_done,
    is_last_batch,
    logger_version,
    logs_this_step,
    set_logger_version,
    stop_after_this_step,
    tensorboard_writer,
    trainer_of,
)
from nnmodules.checkpoints import net_config, read_checkpoint
from nnmodules.cli import LOGGER_DEFAULTS, LitCLI, make_trainer
from nnmodules.runs import LitTrainer

STEPS = 8  # per epoch: 256 fake training images in batches of 32


def mnist(mnist_dir: Path) -> MNISTDataModule:
    return MNISTDataModule(mnist_dir, batch_size=32, val_size=VAL_SIZE, download=False)


def trainer_in(folder: Path, epochs: int, **overrides) -> L.Trainer:
    logger = TensorBoardLogger(**{**LOGGER_DEFAULTS, "save_dir": str(folder), "name": "run", "log_graph": False})
    return make_trainer(logger=logger, max_epochs=epochs, **{**LOGS_OFTEN, **overrides})


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
    # at a step's end (before Lightning counts it): the steps before it; on the epoch's last, a finished epoch
    expected = [(epoch, batch, False) for epoch in (0, 1) for batch in range(STEPS - 1)]
    expected[STEPS - 1 : STEPS - 1] = [(0, 0, True)]
    assert positions.seen == [*expected, (1, 0, True)], (
        f"Lightning's loop counters changed meaning (see epoch_position, is_last_batch): {positions.seen}"
    )
    checkpoint = read_checkpoint(trainer.checkpoint_callback.last_model_path)
    assert epochs_done(checkpoint) == 2, "Lightning's saved fit-loop progress changed (see epochs_done)"


class StopAt(L.Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (0, 2):
            stop_after_this_step(trainer)


def test_guard_stop_after_this_step(mnist_dir, tmp_path):
    trainer = trainer_in(tmp_path, epochs=2)
    trainer.callbacks.append(StopAt())
    with pytest.raises(SIGTERMException):
        trainer.fit(MLPClassifier(), mnist(mnist_dir))
    assert trainer.global_step == 3, "Lightning's SIGTERM flag changed (see stop_after_this_step)"


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


def test_guard_logger_version_and_set_logger_version(tmp_path):
    for kind in (TensorBoardLogger, L.pytorch.loggers.CSVLogger):
        assert logger_version(kind(tmp_path, version=3)) == 3, f"{kind.__name__} keeps its version elsewhere"
        unset = kind(tmp_path)
        assert logger_version(unset) is None, f"{kind.__name__} chose a version before it was asked"
        set_logger_version(unset, 5)
        assert Path(unset.log_dir).name == "version_5", f"{kind.__name__} ignores _version (see set_logger_version)"


def test_guard_tensorboard_writer(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="", version=0)
    tensorboard_writer(logger).add_summary(scalar("written/by_hand", 1.5), global_step=4)
    logger.experiment.flush()
    events = EventAccumulator(logger.log_dir).Reload()
    assert [(e.step, e.value) for e in events.Scalars("written/by_hand")] == [(4, 1.5)], "see tensorboard_writer"


class RecordsWhatTheCliGave(MLPClassifier):
    given: dict | None = None

    def __init__(self, input_dim: int = 784, num_classes: int = 10) -> None:
        RecordsWhatTheCliGave.given = cli_hyperparameters()
        super().__init__(input_dim=input_dim, hidden_dims=(8,), num_classes=num_classes)


def test_guard_cli_hyperparameters_and_the_links_into_a_network_a_model_lacks(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli_hyperparameters() is None, "outside LightningCLI no config is handed over (see cli_hyperparameters)"
    data = [f"--data.data_dir={mnist_dir}", f"--data.val_size={VAL_SIZE}", "--data.download=false"]
    config = str(CONFIGS / "mnist_mlp.yaml")
    cli = LitCLI(args=["fit", "--config", config, *data, f"--model={__name__}.RecordsWhatTheCliGave",
                       "--trainer.fast_dev_run=true"])  # fmt: skip
    given = RecordsWhatTheCliGave.given
    assert given is not None and given["_instantiator"] == "lightning.pytorch.cli.instantiate_module", (
        f"LightningCLI no longer hands the model its config (see cli_hyperparameters): {given}"
    )
    # the links into model.init_args.net went into the empty network LitCLI put in the config's dump
    assert cli.config_dump["model"]["init_args"]["net"]["init_args"]["input_dim"] == 784, (
        "LightningCLI's config_dump changed (see take_links_into_a_network_the_model_lacks)"
    )
    assert "net" not in cli.model.hparams


def test_guard_built_as_the_cli_builds(tmp_path):
    net = TinyRegressionNet(3)
    model = Regressor(net)
    trainer = L.Trainer(logger=False, **LOGS_OFTEN)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    hyperparameters = torch.load(tmp_path / "model.ckpt", weights_only=True)["hyper_parameters"]
    assert hyperparameters == built_as_the_cli_builds({**dict(model.hparams)} | {"net": net_config(net)})
    restored = Regressor.load_from_checkpoint(tmp_path / "model.ckpt")
    assert isinstance(restored.net, TinyRegressionNet) and restored.net.input_dim == 3, "see built_as_the_cli_builds"


def test_guard_drop_hyperparameters(tmp_path):
    model = MLPClassifier(hidden_dims=(4,))
    drop_hyperparameters(model, ["dropout"])
    assert "dropout" not in model.hparams and "dropout" not in model.hparams_initial, "see drop_hyperparameters"


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


def test_no_last_checkpoint_in_fast_dev_run(tmp_path, mnist):
    def fast_dev_run(trainer_class: type) -> list[Path]:
        folder = tmp_path / trainer_class.__name__
        trainer = trainer_class(default_root_dir=folder, fast_dev_run=True, callbacks=[ModelCheckpoint(save_last=True)])
        trainer.fit(MLPClassifier(hidden_dims=[8]), mnist)
        return list(folder.rglob("*.ckpt"))

    assert fast_dev_run(L.Trainer), "Lightning no longer saves last.ckpt in a fast_dev_run: remove the workaround"
    assert fast_dev_run(LitTrainer) == []
