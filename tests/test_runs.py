"""Runs that survive: exact resume, Ctrl-C and SIGTERM, atomic and safely read checkpoints, no overwriting."""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from conftest import CONFIGS, EXAMPLES, QUIET, VAL_SIZE, in_another_process, python_path
from fsspec.implementations.local import LocalFileOpener
from lightning.pytorch.callbacks import Checkpoint, LearningRateMonitor, ModelCheckpoint, ProgressBar, TQDMProgressBar
from lightning.pytorch.loggers import Logger
from lightning.pytorch.profilers import SimpleProfiler

from datamodules import MNISTDataModule, TabularDataModule, ToyRegressionDataModule
from nnmodules import MLPClassifier, ScratchDeepNet, ToyRegressor
from nnmodules.callbacks import (
    RESUME_HINT,
    InterruptedCheckpoint,
    Interruption,
    LearningCurves,
    LitProgressBar,
    PredictionWriter,
    RunInterrupted,
    RunSummary,
)
from nnmodules.callbacks.progress import PROGRESS_BAR_STEPS
from nnmodules.callbacks.record import earlier_name
from nnmodules.runs import make_trainer
from nnmodules.runs.folders import run_of_checkpoint
from nnmodules.tasks import task as tasks
from nnmodules.tasks.checkpoints import CheckpointIO, read_checkpoint

LOGS_OFTEN = {**QUIET, "log_every_n_steps": 3}
EPOCHS = 4
PEOPLE = EXAMPLES / "people.csv"


def build(kind: str, mnist_dir: Path) -> tuple[L.LightningModule, L.LightningDataModule]:
    """The three kinds of run the resume guarantee covers: with dropout, manual optimization, a table."""
    L.seed_everything(0, verbose=False)
    if kind == "mlp":  # dropout draws from the global generator: its state must travel in the checkpoint
        return MLPClassifier(dropout=0.2), MNISTDataModule(mnist_dir, batch_size=32, val_size=VAL_SIZE, download=False)
    if kind == "scratch":  # manual optimization, a cosine step size over the run
        model = ScratchDeepNet(lr=0.2, lr_schedule="cosine")
        return model, MNISTDataModule(mnist_dir, batch_size=32, val_size=VAL_SIZE, download=False)
    data = TabularDataModule(PEOPLE, target="renewed", batch_size=32)
    data.setup("fit")
    return MLPClassifier(input_dim=data.num_features, num_classes=2, hidden_dims=[16], dropout=0.1), data


def trainer_in(folder: Path, kind: str, version: int | str | None = None, **overrides) -> L.Trainer:
    """A run of `kind` under `folder`: a new one, or with `version="last"` the newest, to continue."""
    return make_trainer(kind, version, save_dir=folder, **{"max_epochs": EPOCHS, **LOGS_OFTEN, **overrides})


class Crash(Exception):
    """Stands for the process dying (power cut, OOM killer) at the start of an epoch."""


class CrashAtEpoch(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise Crash


def weights(model: L.LightningModule) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


@pytest.fixture(scope="module")
def uninterrupted(mnist_dir, tmp_path_factory) -> dict:
    """Each kind trained for EPOCHS epochs without a stop: its trainer, final weights and metrics."""
    runs = {}
    for kind in ("mlp", "scratch", "tabular"):
        model, data = build(kind, mnist_dir)
        trainer = trainer_in(tmp_path_factory.mktemp(kind), kind)
        trainer.fit(model, data)
        runs[kind] = trainer, weights(model), dict(trainer.callback_metrics)
    return runs


@pytest.mark.parametrize("kind", ["mlp", "scratch", "tabular"])
@pytest.mark.parametrize("stop", [1, 2, 3])
def test_a_resumed_run_ends_bitwise_like_an_uninterrupted_one(kind, stop, uninterrupted, mnist_dir, tmp_path):
    full_trainer, full_weights, full_metrics = uninterrupted[kind]
    model, data = build(kind, mnist_dir)
    trainer = trainer_in(tmp_path, kind)
    trainer.callbacks.append(CrashAtEpoch(stop))
    with pytest.raises(Crash):
        trainer.fit(model, data)

    model, data = build(kind, mnist_dir)  # a new process: the same config, nothing carried over but the files
    resumed = trainer_in(tmp_path, kind, "last")
    resumed.fit(model, data, ckpt_path="last")

    assert Path(resumed.log_dir) == tmp_path / kind / "version_0"  # the same run folder, continued
    assert resumed.global_step == full_trainer.global_step
    assert all(torch.equal(full_weights[name], tensor) for name, tensor in weights(model).items())
    assert dict(resumed.callback_metrics).keys() == full_metrics.keys()
    assert all(torch.equal(full_metrics[name], value) for name, value in resumed.callback_metrics.items())


def test_last_without_an_earlier_run_starts_a_new_one(mnist_dir, tmp_path):
    model, data = build("mlp", mnist_dir)
    trainer = trainer_in(tmp_path, "mlp", "last", max_epochs=1)
    trainer.fit(model, data, ckpt_path="last")  # e.g. a preemptible job that always passes it
    assert trainer.global_step == 8 and Path(trainer.log_dir).name == "version_0"
    (tmp_path / "mlp" / "version_0" / "checkpoints").rename(tmp_path / "elsewhere")  # a run with none to continue
    assert Path(trainer_in(tmp_path, "mlp", "last").log_dir).name == "version_1"  # not into version_0


def test_last_continues_a_run_whose_version_is_a_name(mnist_dir, tmp_path):
    """As `litmodules tune` names its trials' folders (trial_<n>)."""
    for epochs in (1, 2):
        model, data = build("mlp", mnist_dir)
        trainer = make_trainer("study", "trial_3", save_dir=tmp_path, max_epochs=epochs, **QUIET)
        trainer.fit(model, data, ckpt_path="last")
    assert trainer.global_step == 16 and trainer.log_dir == str(tmp_path / "study" / "trial_3")
    assert sorted(p.name for p in (tmp_path / "study").iterdir()) == ["trial_3"]


class SignalAt(L.Callback):
    """Sends a signal to this very process during one training step (first of the callbacks: as if it came then)."""

    def __init__(self, signum: int, epoch: int, batch: int) -> None:
        self.signum, self.at = signum, (epoch, batch)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == self.at:
            os.kill(os.getpid(), self.signum)


def test_sigterm_saves_the_step_it_ended_and_a_new_process_continues_from_it(mnist_dir, tmp_path):
    model, data = build("mlp", mnist_dir)
    trainer = trainer_in(tmp_path, "mlp")
    trainer.callbacks.insert(0, SignalAt(signal.SIGTERM, epoch=1, batch=2))
    ctrl_c = signal.getsignal(signal.SIGINT)  # Python's, or what the process running the tests set (mutmut: ignore)
    with pytest.raises(RunInterrupted) as stop:
        trainer.fit(model, data)
    assert stop.value.code == 128 + signal.SIGTERM
    folder = tmp_path / "mlp" / "version_0" / "checkpoints"
    interrupted, last = read_checkpoint(folder / "interrupted.ckpt"), read_checkpoint(folder / "last.ckpt")
    assert (interrupted["global_step"], last["global_step"]) == (8 + 3, 8)  # the finished step; the epoch before
    assert str(stop.value) == f"SIGTERM at epoch 1, step 11: saved {folder / 'interrupted.ckpt'}; {RESUME_HINT}"
    assert signal.getsignal(signal.SIGINT) is ctrl_c  # Ctrl-C does again what it did before the fit

    model, data = build("mlp", mnist_dir)
    resumed = trainer_in(tmp_path, "mlp", "last")
    resumed.fit(model, data, ckpt_path="last")
    assert resumed.ckpt_path == str(folder / "interrupted.ckpt")  # the step it ended, not the epoch before
    assert Path(resumed.log_dir).name == "version_0" and resumed.global_step == EPOCHS * 8


def stand_in_trainer(world_size: int = 1, others_signal: int = 0, **state) -> SimpleNamespace:
    """What Interruption reads of a Trainer; under DDP `reduce` takes the max with another rank's flag."""

    def reduce(flag: torch.Tensor, reduce_op: str) -> torch.Tensor:
        assert reduce_op == "max"
        return torch.maximum(flag, torch.tensor(float(others_signal)))

    saved = []
    batch_progress = SimpleNamespace(is_last_batch=state.pop("last_batch", False))
    return SimpleNamespace(
        world_size=world_size,
        strategy=SimpleNamespace(root_device=torch.device("cpu"), reduce=reduce),
        fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=batch_progress)),
        callbacks=[],
        saved=saved,
        save_checkpoint=lambda path, weights_only=None: saved.append(path),
        **{"current_epoch": 1, "global_step": 11, **state},
    )


def signal_once(interruption: Interruption, signum: int) -> None:
    """A signal that must not stop at once (a KeyboardInterrupt would stop the test run itself)."""
    try:
        interruption._on_signal(signum, None)
    except KeyboardInterrupt:
        pytest.fail(f"{signal.Signals(signum).name} stopped at once")


def test_the_first_ctrl_c_says_it_stops_after_the_step_and_a_second_stops_at_once(caplog):
    interruption = Interruption("run/checkpoints")
    signal_once(interruption, signal.SIGINT)
    assert interruption._signal == signal.SIGINT
    assert caplog.messages == ["\nCtrl-C: stopping after this training step (press again to stop at once)"]
    with pytest.raises(KeyboardInterrupt):
        interruption._on_signal(signal.SIGINT, None)


def test_sigterm_says_nothing_and_a_second_one_changes_nothing(caplog):
    interruption = Interruption("run/checkpoints")
    signal_once(interruption, signal.SIGTERM)
    signal_once(interruption, signal.SIGTERM)  # only a second Ctrl-C stops at once
    assert interruption._signal == signal.SIGTERM and caplog.text == ""
    with pytest.raises(KeyboardInterrupt):  # a Ctrl-C after it does
        interruption._on_signal(signal.SIGINT, None)


@pytest.mark.parametrize(("mine", "others", "stops"), [(0, 0, False), (signal.SIGTERM, 0, True), (0, 2, True)])
def test_every_process_stops_after_the_step_in_which_any_of_them_got_a_signal(mine, others, stops):
    interruption = Interruption("run/checkpoints")
    interruption._signal = mine or None
    trainer = stand_in_trainer(world_size=2, others_signal=others)
    if not stops:
        interruption.on_train_batch_end(trainer, None)
        assert trainer.saved == [] and trainer.callbacks == []
        return
    with pytest.raises(RunInterrupted) as stop:
        interruption.on_train_batch_end(trainer, None)
    assert stop.value.code == 128 + (mine or others)  # another rank's signal names this one's exit
    assert trainer.saved == [os.path.join("run/checkpoints", "interrupted.ckpt")]
    assert [type(callback) for callback in trainer.callbacks] == [InterruptedCheckpoint]  # the next fit goes on


def test_a_signal_on_an_epochs_last_step_waits_for_its_validation_and_checkpoints():
    interruption = Interruption("run/checkpoints")
    interruption._signal = signal.SIGTERM
    trainer = stand_in_trainer(last_batch=True)
    interruption.on_train_batch_end(trainer, None)
    assert trainer.saved == []


def test_a_diverged_model_stopped_by_a_signal_saves_nothing_and_says_why():
    interruption = Interruption("run/checkpoints")
    interruption._signal = signal.SIGTERM
    trainer = stand_in_trainer()

    def diverged(*args: Any, **kwargs: Any) -> None:
        raise tasks.Diverged("the training loss is nan at step 11")

    trainer.save_checkpoint = diverged
    with pytest.raises(RunInterrupted) as stop:
        interruption.on_train_batch_end(trainer, None)
    assert str(stop.value) == "SIGTERM at epoch 1, step 11: nothing saved: the training loss is nan at step 11"
    assert trainer.callbacks == []


def test_the_signal_handlers_are_the_interruptions_while_it_trains_and_the_earlier_ones_after():
    interruption, before = Interruption("run/checkpoints"), signal.getsignal(signal.SIGTERM)
    interruption.on_train_start(stand_in_trainer(), None)
    try:
        assert signal.getsignal(signal.SIGTERM) == interruption._on_signal
        assert signal.getsignal(signal.SIGINT) == interruption._on_signal
    finally:
        interruption.on_train_end(stand_in_trainer(), None)
    assert signal.getsignal(signal.SIGTERM) == before


PAUSE = """
import time
import lightning as L

class PauseForSignal(L.Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == (1, 2):
            print("PAUSED", flush=True)
            deadline = time.monotonic() + 60
            while not any(getattr(c, "_signal", None) for c in trainer.callbacks) and time.monotonic() < deadline:
                time.sleep(0.01)
"""


@in_another_process
def test_ctrl_c_in_a_real_process_then_the_same_command_with_ckpt_path_last(mnist_dir, tmp_path):
    (tmp_path / "pause.py").write_text(PAUSE)
    command = [sys.executable, "-m", "nnmodules", "fit", "--config", str(CONFIGS / "mnist_mlp.yaml")]
    command += [f"--data.data_dir={mnist_dir}", f"--data.val_size={VAL_SIZE}", "--data.download=false"]
    command += ["--data.batch_size=32", "--trainer.max_epochs=3", "--trainer.enable_progress_bar=false"]
    env = {**os.environ, "PYTHONPATH": python_path(tmp_path), "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen(
        [*command, "--trainer.callbacks+=pause.PauseForSignal"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    for line in run.stdout:  # mid-epoch: epoch 1, after its third step
        output.append(line)
        if line.strip() == "PAUSED":
            run.send_signal(signal.SIGINT)
            break
    started = time.monotonic()
    output += run.stdout.readlines()
    assert run.wait(timeout=60) == 130, "".join(output)[-3000:]
    assert time.monotonic() - started < 30  # prompt: the rest of one step, one checkpoint
    folder = tmp_path / "lightning_logs" / "mnist_mlp" / "version_0" / "checkpoints"
    assert f"SIGINT at epoch 1, step 11: saved {folder.relative_to(tmp_path) / 'interrupted.ckpt'}" in "".join(output)
    assert "--ckpt_path last" in "".join(output) and "weights_only" not in "".join(output)  # one line: no more
    assert read_checkpoint(folder / "last.ckpt")["global_step"] == 8  # the last complete checkpoint, intact

    resumed = subprocess.run([*command, "--ckpt_path=last"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "continuing the run in lightning_logs/mnist_mlp/version_0 from interrupted.ckpt" in resumed.stderr
    assert read_checkpoint(folder / "last.ckpt")["global_step"] == 3 * 8
    assert not (folder.parents[1] / "version_1").exists()


def test_a_checkpoint_write_that_fails_midway_leaves_the_previous_one(uninterrupted, monkeypatch):
    trainer = uninterrupted["mlp"][0]
    path = Path(trainer.checkpoint_callback.last_model_path)
    before, files = path.read_bytes(), sorted(path.parent.iterdir())
    real_write = LocalFileOpener.write

    def disk_full_halfway(self, data):
        real_write(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LocalFileOpener, "write", disk_full_halfway)
    with pytest.raises(OSError, match="No space left on device"):
        trainer.save_checkpoint(path)
    assert path.read_bytes() == before and sorted(path.parent.iterdir()) == files  # no half file, no leftovers


def test_checkpoints_hold_plain_data_only(uninterrupted):
    for trainer, *_ in uninterrupted.values():
        checkpoint = torch.load(trainer.checkpoint_callback.last_model_path, weights_only=True)
        assert set(checkpoint["rng_states"]) == {"torch", "cuda"}


def unreadable(folder: Path, good: Path) -> dict[str, Path]:
    truncated = folder / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = folder / "notes.ckpt"
    text.write_text("not a checkpoint")
    pickled = folder / "pickled.ckpt"
    torch.save({"state_dict": {}, "ratio": Fraction(1, 3)}, pickled)  # needs pickle to load
    plain = folder / "plain.ckpt"
    torch.save({"weights": torch.zeros(2)}, plain)
    return {"truncated": truncated, "text": text, "pickled": pickled, "plain": plain}


@pytest.mark.parametrize("kind", ["truncated", "text", "pickled", "plain"])
def test_a_damaged_or_foreign_file_is_refused_by_name(kind, uninterrupted, mnist_dir, tmp_path):
    trainer = uninterrupted["mlp"][0]
    path = unreadable(tmp_path, Path(trainer.checkpoint_callback.last_model_path))[kind]
    reason = {  # torch's exception, and the first line of its message
        "truncated": "RuntimeError: PytorchStreamReader failed reading zip archive: failed finding central directory",
        "text": "UnpicklingError: ",
        "pickled": "UnpicklingError: Weights only load failed.",
    }
    if kind == "plain":
        expected = re.escape(f"{path} is not a Lightning checkpoint: it holds no state_dict")
    else:
        expected = rf"^{re.escape(f'{path} is not a readable checkpoint ({reason[kind]}')}.*\): it may be truncated"
    with pytest.raises(ValueError, match=expected):
        MLPClassifier.load_from_checkpoint(path)
    model, data = build("mlp", mnist_dir)
    fresh = trainer_in(tmp_path, "mlp")
    with pytest.raises(ValueError, match=expected):
        fresh.fit(model, data, ckpt_path=path)
    assert fresh.global_step == 0
    with pytest.raises(FileNotFoundError, match=f"checkpoint {tmp_path}/absent.ckpt does not exist"):
        MLPClassifier.load_from_checkpoint(tmp_path / "absent.ckpt")


def test_a_checkpoint_of_another_model_is_refused_by_name(uninterrupted):
    path = uninterrupted["scratch"][0].checkpoint_callback.last_model_path
    expected = (
        f"{path} is a checkpoint of nnmodules.ScratchDeepNet, not of MLPClassifier: load it with "
        "ScratchDeepNet.load_from_checkpoint, or with nnmodules.load_run, which takes any run's checkpoint"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        MLPClassifier.load_from_checkpoint(path)
    assert type(ScratchDeepNet.load_from_checkpoint(path)) is ScratchDeepNet


class OwnClassifier(MLPClassifier):
    """A user's subclass: it loads the checkpoints of the class it derives from."""


def test_a_subclass_loads_the_checkpoints_of_the_class_it_derives_from(uninterrupted):
    _, trained, _ = uninterrupted["mlp"]
    model = OwnClassifier.load_from_checkpoint(uninterrupted["mlp"][0].checkpoint_callback.last_model_path)
    assert type(model) is OwnClassifier and all(torch.equal(trained[k], v) for k, v in model.state_dict().items())


def test_a_checkpoint_whose_weights_do_not_fit_names_each_missing_and_unexpected_one(uninterrupted, tmp_path):
    checkpoint = read_checkpoint(uninterrupted["mlp"][0].checkpoint_callback.last_model_path)
    checkpoint["state_dict"]["net.extra"] = checkpoint["state_dict"].pop("net.1.bias")
    torch.save(checkpoint, tmp_path / "renamed.ckpt")
    with pytest.raises(ValueError, match=r"Missing key\(s\) in state_dict: \"net.1.bias\"\. Unexpected key\(s\)"):
        MLPClassifier.load_from_checkpoint(tmp_path / "renamed.ckpt")


def test_load_from_checkpoint_takes_arguments_that_override_the_saved_ones(uninterrupted):
    path = uninterrupted["mlp"][0].checkpoint_callback.last_model_path
    assert MLPClassifier.load_from_checkpoint(path).hparams.dropout != 0.5
    assert MLPClassifier.load_from_checkpoint(path, dropout=0.5).hparams.dropout == 0.5


def test_checkpoints_are_read_onto_the_device_asked_for(uninterrupted):
    path = uninterrupted["mlp"][0].checkpoint_callback.last_model_path
    for read in (read_checkpoint, CheckpointIO().load_checkpoint):  # the second is how the Trainer reads
        weights = read(path, map_location="meta")["state_dict"].values()
        assert {tensor.device.type for tensor in weights} == {"meta"}


def test_the_gpus_random_state_is_restored_with_the_cpus(monkeypatch):
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    model, cuda_states = MLPClassifier(), [torch.ones(3, dtype=torch.uint8)]
    model.on_load_checkpoint({"rng_states": {"torch": torch.get_rng_state(), "cuda": cuda_states}})
    model.on_train_batch_start(None, 0)
    assert restored == [cuda_states] and model._rng_to_restore is None


class PoisonAt(L.Callback):
    """Turns every weight into NaN after one step, as a diverging run does; remembers last.ckpt before it."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.at, self.last_before = (epoch, batch), b""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == self.at:
            self.last_before = Path(trainer.checkpoint_callback.last_model_path).read_bytes()
            with torch.no_grad():
                for parameter in module.parameters():
                    parameter.fill_(float("nan"))


def test_a_nan_loss_stops_naming_epoch_and_batch_and_keeps_the_last_good_checkpoint(mnist_dir, tmp_path):
    model, data = build("mlp", mnist_dir)
    trainer = trainer_in(tmp_path, "mlp")
    poison = PoisonAt(epoch=1, batch=2)
    trainer.callbacks.append(poison)
    with pytest.raises(FloatingPointError, match=r"^the training loss became nan at epoch 1, batch 3: training stop"):
        trainer.fit(model, data)
    last = Path(trainer.checkpoint_callback.last_model_path)
    assert last.read_bytes() == poison.last_before  # not overwritten by the diverged model
    assert all(torch.isfinite(t).all() for t in read_checkpoint(last)["state_dict"].values())
    assert not (last.parent / "interrupted.ckpt").exists()


def test_a_new_run_never_writes_into_an_earlier_runs_folder(uninterrupted, mnist_dir):
    trainer = uninterrupted["mlp"][0]
    folder = Path(trainer.log_dir)
    model, data = build("mlp", mnist_dir)
    again = make_trainer("mlp", 0, save_dir=folder.parents[1], max_epochs=EPOCHS, **LOGS_OFTEN)
    before = sorted(folder.rglob("*"))
    expected = f"{folder} already holds a run, which a new run would overwrite: continue it with `--ckpt_path last`"
    with pytest.raises(ValueError, match=re.escape(expected)):
        again.fit(model, data)
    assert again.global_step == 0 and sorted(folder.rglob("*")) == before


def test_predictions_never_overwrite_a_file_unless_asked(uninterrupted, mnist_dir, tmp_path):
    model = uninterrupted["mlp"][0].lightning_module
    target = tmp_path / "predictions.csv"
    target.write_text("earlier work\n")
    data = MNISTDataModule(mnist_dir, batch_size=32, val_size=VAL_SIZE, download=False)
    for overwrite in (False, True):
        trainer = L.Trainer(callbacks=[PredictionWriter(str(target), overwrite=overwrite)], logger=False, **LOGS_OFTEN)
        if not overwrite:
            message = f"{target} exists: pass --prediction_writer.overwrite true to replace it"
            with pytest.raises(FileExistsError, match=re.escape(message)):
                trainer.predict(model, datamodule=data, return_predictions=False)
            assert target.read_text() == "earlier work\n"
        else:
            trainer.predict(model, datamodule=data, return_predictions=False)
            assert target.read_text().startswith("row,prediction,p_0,")


def test_the_progress_bar_redraws_every_few_steps_unless_given_or_off():
    def bars(trainer: L.Trainer) -> list:
        return [(type(c).__name__, c.refresh_rate) for c in trainer.callbacks if isinstance(c, ProgressBar)]

    assert bars(make_trainer(logger=False)) == [("LitProgressBar", PROGRESS_BAR_STEPS)]
    assert bars(make_trainer(logger=False, callbacks=[TQDMProgressBar(refresh_rate=1)])) == [("TQDMProgressBar", 1)]
    assert bars(make_trainer(logger=False, enable_progress_bar=False)) == []


def test_the_progress_bar_shows_the_last_logged_loss_which_lightning_never_reads_back(mnist_dir, tmp_path):
    model, data = build("mlp", mnist_dir)
    trainer = trainer_in(tmp_path, "mlp", max_epochs=1, enable_progress_bar=True)
    trainer.fit(model, data)
    bar = next(c for c in trainer.callbacks if isinstance(c, LitProgressBar))
    shown = bar.get_metrics(trainer, model)
    assert list(shown)[:2] == ["v_num", "train/loss"]
    assert shown["train/loss"] == float(trainer.callback_metrics["train/loss"])
    assert "train/loss" not in trainer.progress_bar_metrics  # what Lightning turns into a number after every step


@pytest.mark.parametrize("kind", ["mlp", "scratch", "tabular"])
@pytest.mark.parametrize("stop", [(0, 4), (3, 5)], ids=["epoch0-batch4", "last-epoch-batch5"])  # metrics: of the last
def test_a_run_resumed_mid_epoch_goes_on_with_the_next_batch_and_ends_bitwise(
    kind, stop, uninterrupted, mnist_dir, tmp_path
):
    full_trainer, full_weights, full_metrics = uninterrupted[kind]
    model, data = build(kind, mnist_dir)
    trainer = trainer_in(tmp_path, kind)
    trainer.callbacks.insert(0, SignalAt(signal.SIGTERM, *stop))
    with pytest.raises(RunInterrupted):
        trainer.fit(model, data)
    interrupted = tmp_path / kind / "version_0" / "checkpoints" / "interrupted.ckpt"
    assert read_checkpoint(interrupted)[type(data).__qualname__]["epoch_position"]["batches"] == stop[1] + 1

    model, data = build(kind, mnist_dir)
    resumed = trainer_in(tmp_path, kind, "last")
    resumed.fit(model, data, ckpt_path="last")
    assert resumed.ckpt_path == str(interrupted)  # the checkpoint it read: the interrupted step, not last.ckpt
    assert resumed.global_step == full_trainer.global_step
    assert all(torch.equal(full_weights[name], tensor) for name, tensor in weights(model).items())
    # the epoch's metrics; those logged by step only where this process reached a logging step
    assert dict(resumed.callback_metrics).keys() | {"train/loss", "lr-Adam", "lr-TutorialSGD"} >= full_metrics.keys()
    assert all(torch.equal(full_metrics[name], value) for name, value in resumed.callback_metrics.items())


def test_a_mid_epoch_checkpoint_keeps_the_running_training_metrics(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "PENDING_STEPS", 2)  # the metrics hold steps of the epoch when it stops
    runs = []
    for stop in (None, (3, 5)):
        model, data = build("mlp", mnist_dir)
        trainer = trainer_in(tmp_path / str(stop), "mlp")
        if stop:
            trainer.callbacks.insert(0, SignalAt(signal.SIGTERM, *stop))
            with pytest.raises(RunInterrupted):
                trainer.fit(model, data)
            state = read_checkpoint(Path(trainer.log_dir) / "checkpoints" / "interrupted.ckpt")["epoch_state"]
            assert state["metrics"]["train_loss.weight"] == 6 * 32 and len(state["_pending"]) == 0
            model, data = build("mlp", mnist_dir)
            trainer = trainer_in(tmp_path / str(stop), "mlp", "last")
            trainer.fit(model, data, ckpt_path="last")
        else:
            trainer.fit(model, data)
        runs.append(trainer.callback_metrics)
    assert runs[0]["train/loss_epoch"] == runs[1]["train/loss_epoch"] and runs[0]["train/acc"] == runs[1]["train/acc"]


def test_a_run_without_a_logger_trains_without_the_learning_rate_monitor(tmp_path):
    trainer = make_trainer(logger=False, max_steps=2, default_root_dir=tmp_path, enable_progress_bar=False)
    trainer.fit(ToyRegressor(), ToyRegressionDataModule())  # failed: "Cannot use `LearningRateMonitor` ... no logger"
    assert trainer.global_step == 2 and not any(isinstance(c, LearningRateMonitor) for c in trainer.callbacks)
    assert any(isinstance(c, LearningRateMonitor) for c in make_trainer(default_root_dir=tmp_path).callbacks)


# -- the run machinery's small rules, on the toy regression (a fit takes a second) --


def toy_fit(folder: Path, ckpt_path: str | None = None, **overrides) -> L.Trainer:
    L.seed_everything(0, verbose=False)
    version = "last" if ckpt_path == "last" else None
    trainer = trainer_in(folder, "toy", version, **{"max_steps": 2, "max_epochs": -1, **overrides})
    trainer.fit(ToyRegressor(optimizer="adam"), ToyRegressionDataModule(), ckpt_path=ckpt_path)
    return trainer


def test_a_checkpoints_run_is_the_folder_above_checkpoints_else_the_folder_it_is_in():
    assert run_of_checkpoint("runs/version_3/checkpoints/last.ckpt") == Path("runs/version_3").absolute()
    assert run_of_checkpoint("runs/version_3/elsewhere/last.ckpt") == Path("runs/version_3/elsewhere").absolute()


def test_an_earlier_file_is_kept_under_the_next_free_number(tmp_path):
    (tmp_path / "hparams.1.yaml").touch()
    (tmp_path / "hparams.2.yaml").touch()
    assert earlier_name(tmp_path / "hparams.yaml") == tmp_path / "hparams.3.yaml"


def test_continuing_the_last_run_looks_only_at_version_folders_in_numeric_order(tmp_path):
    for name in ("version_0", "version_2", "version_10", "version_old"):
        (tmp_path / name / "checkpoints").mkdir(parents=True)
        (tmp_path / name / "checkpoints" / "last.ckpt").touch()
    (tmp_path / "version_11").touch()  # a file, not a run
    (tmp_path / "version_12" / "checkpoints").mkdir(parents=True)  # a run without a checkpoint to continue
    assert make_trainer(version="last", save_dir=tmp_path).log_dir == str(tmp_path / "version_10")
    assert make_trainer(save_dir=tmp_path).log_dir == str(tmp_path / "version_13")  # after the highest, not the count


def test_a_profiler_given_is_kept(tmp_path):
    assert isinstance(make_trainer(default_root_dir=tmp_path, profiler="simple").profiler, SimpleProfiler)


def test_a_continued_run_neither_warns_of_its_own_checkpoints_nor_loses_its_earlier_settings(tmp_path, caplog):
    toy_fit(tmp_path)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Checkpoint directory .* exists and is not empty")
        toy_fit(tmp_path, "last", max_steps=4)  # Lightning would warn: it is meant to hold checkpoints
    run = tmp_path / "toy" / "version_0"
    assert not (run / "config.1.yaml").exists()  # the same settings: no copy kept
    toy_fit(tmp_path, "last", max_steps=6, gradient_clip_val=1.0)  # a Trainer setting: the model's stay equal
    assert not (run / "config.1.yaml").exists()
    L.seed_everything(0, verbose=False)
    trainer = trainer_in(tmp_path, "toy", "last", max_steps=8, max_epochs=-1)
    with caplog.at_level(logging.INFO):
        trainer.fit(ToyRegressor(optimizer="adam", lr=0.5), ToyRegressionDataModule(), ckpt_path="last")
    assert f"this run's settings differ from its earlier ones, which are kept in {run / 'config.1.yaml'}" in caplog.text
    assert "lr: 0.5" in (run / "config.yaml").read_text() and "lr: 0.5" not in (run / "config.1.yaml").read_text()


def test_a_new_run_from_another_runs_checkpoint_leaves_that_runs_settings_alone(tmp_path):
    every_2 = ModelCheckpoint(every_n_train_steps=2, save_top_k=-1)
    first = toy_fit(tmp_path, max_steps=4, callbacks=[every_2])
    (earlier,) = (tmp_path / "toy" / "version_0" / "checkpoints").glob("*step=2.ckpt")  # not the newest: a new run
    settings = (tmp_path / "toy" / "version_0" / "config.yaml").read_bytes()
    seen = FileSeen(tmp_path / "toy" / "version_0" / "config.yaml")
    toy_fit(tmp_path, str(earlier), max_steps=6, callbacks=[seen])
    assert seen.during_training  # not even moved aside for a while: a killed run would leave it so
    assert (tmp_path / "toy" / "version_1" / "config.yaml").is_file() and first.global_step == 4
    assert (tmp_path / "toy" / "version_0" / "config.yaml").read_bytes() == settings
    assert sorted(path.name for path in (tmp_path / "toy" / "version_0").glob("config*")) == ["config.yaml"]


def test_with_a_checkpoint_folder_set_by_hand_last_is_lightnings_own_search(tmp_path):
    folder = tmp_path / "by-hand"
    toy_fit(tmp_path, callbacks=[ModelCheckpoint(dirpath=folder, save_last=True)])
    steps = StepCount()
    toy_fit(tmp_path, "last", max_steps=4, callbacks=[ModelCheckpoint(dirpath=folder, save_last=True), steps])
    assert steps.count == 2  # went on from by-hand/last.ckpt, at step 2


class StepCount(L.Callback):
    def __init__(self) -> None:
        self.count = 0

    def on_train_batch_end(self, *args: Any) -> None:
        self.count += 1


class Silent(Logger):
    """A logger with no version folders of its own."""

    name, version = "silent", 0

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        pass

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass


class FileSeen(L.Callback):
    def __init__(self, path: Path) -> None:
        self.path, self.during_training = path, None

    def on_train_start(self, *args: Any) -> None:
        self.during_training = self.path.is_file()


class FolderlessCheckpoint(Checkpoint):
    """A checkpoint callback of one's own, with no `dirpath`."""


def test_with_a_logger_without_version_folders_the_run_folder_is_the_projects(tmp_path):
    trainer = make_trainer("silent", logger=Silent(), save_dir=tmp_path)
    run = tmp_path / "silent" / "version_0"
    assert trainer.default_root_dir == str(run) and trainer.checkpoint_callback.dirpath == str(run / "checkpoints")
    trainer = make_trainer("mine", save_dir=tmp_path, callbacks=[FolderlessCheckpoint()])
    assert trainer.default_root_dir == str(tmp_path / "mine" / "version_0")
    own = make_trainer("own", logger=Silent(), save_dir=tmp_path, callbacks=[ModelCheckpoint(monitor="val/loss")])
    assert own.checkpoint_callback.dirpath == str(tmp_path / "own" / "version_0" / "checkpoints")  # not the logger's


def test_a_run_that_has_taken_its_max_steps_is_refused(tmp_path):
    toy_fit(tmp_path, max_steps=2)
    with pytest.raises(ValueError, match=r"has trained \d+ epoch\(s\) \(2 steps\), as many as max_steps=2 asks"):
        toy_fit(tmp_path, "last", max_steps=2)
    assert toy_fit(tmp_path, "last", max_steps=3).global_step == 3


def test_a_version_given_that_does_not_exist_yet_is_a_new_run(tmp_path):
    trainer = make_trainer("toy", 7, save_dir=tmp_path, max_steps=2, max_epochs=-1, **LOGS_OFTEN)
    trainer.fit(ToyRegressor(optimizer="adam"), ToyRegressionDataModule())
    assert (tmp_path / "toy" / "version_7" / "checkpoints" / "last.ckpt").is_file()


def test_the_learning_curves_of_a_resumed_run_hold_every_epoch(mnist_dir, tmp_path):
    model, data = build("mlp", mnist_dir)
    first = trainer_in(tmp_path, "mlp", callbacks=[LearningCurves(), CrashAtEpoch(2)])
    with pytest.raises(Crash):
        first.fit(model, data)
    model, data = build("mlp", mnist_dir)
    curves = LearningCurves()
    trainer_in(tmp_path, "mlp", "last", callbacks=[curves]).fit(model, data, ckpt_path="last")
    assert curves.epochs == list(range(EPOCHS))  # 0 and 1 from the checkpoint, 2 and 3 after it
    assert all(math.isfinite(loss) for loss in curves.train_loss) and len(curves.val_metric) == EPOCHS


def test_the_projects_callbacks_can_be_left_out_or_replaced(tmp_path):
    def kinds(trainer: L.Trainer) -> set[str]:
        return {type(callback).__name__ for callback in trainer.callbacks}

    assert {"RunSummary", "LearningRateMonitor", "Interruption", "RunRecord"} <= kinds(make_trainer(save_dir=tmp_path))
    without = kinds(make_trainer(save_dir=tmp_path, without=(RunSummary, LearningRateMonitor)))
    assert not {"RunSummary", "LearningRateMonitor"} & without and "Interruption" in without
    mine = RunSummary()
    assert [c for c in make_trainer(save_dir=tmp_path, callbacks=[mine]).callbacks if isinstance(c, RunSummary)] == [
        mine
    ]


class ValidationsSeen(L.Callback):
    """The validation accuracy after each validation of a fit (twice an epoch with val_check_interval=0.5)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, float]] = []

    def on_validation_end(self, trainer, module) -> None:
        if not trainer.sanity_checking:
            self.seen.append((trainer.current_epoch, float(trainer.callback_metrics["val/acc"])))


def test_the_learning_curves_draw_an_epoch_validated_twice_once_with_its_latest_figure(mnist_dir, tmp_path):
    model, data = build("mlp", mnist_dir)
    curves, seen = LearningCurves(), ValidationsSeen()
    trainer_in(tmp_path, "mlp", max_epochs=2, val_check_interval=0.5, callbacks=[seen, curves]).fit(model, data)
    assert [epoch for epoch, _ in seen.seen] == [0, 0, 1, 1]
    assert curves.epochs == [0, 1]  # failed: [0, 0, 1, 1]
    assert curves.val_metric == [seen.seen[1][1], seen.seen[3][1]]  # each epoch's latest
