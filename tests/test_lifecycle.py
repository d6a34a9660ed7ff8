"""The life of a run after `fit`, one row each: train longer or shorter, other settings, finished runs,
test and predict from a checkpoint alone.

(Mid-epoch resumes, bitwise: tests/test_runs.py; several processes: tests/test_ddp.py; the Lightning internals
these rely on: tests/test_lightning_guards.py.)
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import signal
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pandas as pd
import pytest
import torch
from conftest import CONFIGS, ROOT, VAL_SIZE
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.core.saving import load_hparams_from_yaml
from lightning.pytorch.loggers import TensorBoardLogger
from test_runs import PEOPLE, QUIET, Crash, CrashAtEpoch, SignalAt

from datamodules import MNISTDataModule, TabularDataModule
from datamodules.batches import TensorDataModule
from datamodules.contract import DataFacts
from nnmodules import MLPClassifier, ScratchDeepNet
from nnmodules.callbacks import PredictionWriter, RunInterrupted, RunSummary
from nnmodules.cli import stages
from nnmodules.runs import make_trainer

STEPS = 8  # per epoch: 256 fake training images in batches of 32
CONFIG = str(CONFIGS / "mnist_mlp.yaml")


def mnist(mnist_dir: Path, batch_size: int = 32) -> MNISTDataModule:
    return MNISTDataModule(mnist_dir, batch_size=batch_size, val_size=VAL_SIZE, download=False)


def trainer_in(folder: Path, epochs: int, version: int | str | None = None, **overrides) -> L.Trainer:
    return make_trainer("run", version, save_dir=folder, max_epochs=epochs, **{**QUIET, **overrides})


def fit(folder: Path, model: L.LightningModule, data: L.LightningDataModule, epochs: int, **kwargs) -> L.Trainer:
    """A fit in a new run under `folder`; with `ckpt_path="last"`, continuing the newest (`version` to choose)."""
    L.seed_everything(0, verbose=False)
    ckpt_path = kwargs.pop("ckpt_path", None)
    version = kwargs.pop("version", "last" if ckpt_path == "last" else None)
    trainer = trainer_in(folder, epochs, version, **kwargs)
    trainer.fit(model, data, ckpt_path=ckpt_path)
    return trainer


def one_cycle(trainer: L.Trainer) -> torch.optim.lr_scheduler.OneCycleLR:
    (config,) = trainer.lr_scheduler_configs
    return config.scheduler


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.*")}


# -- train longer, shorter, with other settings --


def one_cycle_plan(peak: float, steps: int) -> list[float]:
    """The learning rate of each step of a new one-cycle run of `steps` steps."""
    optimizer = torch.optim.Adam([torch.zeros(1)])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak, total_steps=steps)
    rates = [schedule.get_last_lr()[0]]
    for _ in range(steps - 1):
        optimizer.step()  # a step without gradients changes nothing; torch expects one before the schedule's
        schedule.step()
        rates.append(schedule.get_last_lr()[0])
    return rates


def recording_rates(model: L.LightningModule) -> list[float]:
    """The learning rate of every training step the model takes from now on."""
    rates: list[float] = []
    model.on_train_batch_start = lambda batch, batch_idx: rates.append(model.optimizers().param_groups[0]["lr"])
    return rates


def test_train_longer_with_one_cycle_replans_it_to_the_new_end(mnist_dir, tmp_path, caplog):
    fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=1)
    rates = recording_rates(model := MLPClassifier())
    longer = fit(tmp_path, model, mnist(mnist_dir), epochs=3, ckpt_path="last")  # crashed at step 9
    assert longer.global_step == 3 * STEPS and Path(longer.log_dir).name == "version_0"
    assert one_cycle(longer).total_steps == 3 * STEPS
    assert rates == pytest.approx(one_cycle_plan(3e-3, 3 * STEPS)[STEPS:], rel=1e-6)  # down to its minimum
    line = "one-cycle schedule re-planned for this run's settings: 8 steps, peak 0.003 -> 24 steps, peak 0.003"
    assert f"{line}; going on from step 8" in caplog.text


def test_train_longer_with_gradient_accumulation_counts_optimizer_steps(mnist_dir, tmp_path):
    fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=1, accumulate_grad_batches=2)
    rates = recording_rates(model := MLPClassifier())
    longer = fit(tmp_path, model, mnist(mnist_dir), epochs=3, ckpt_path="last", accumulate_grad_batches=2)
    assert longer.global_step == one_cycle(longer).total_steps == 3 * STEPS // 2
    assert rates[1::2] == pytest.approx(one_cycle_plan(3e-3, 3 * STEPS // 2)[STEPS // 2 :], rel=1e-6)


def interrupted_in_epoch_1(folder: Path, mnist_dir: Path, batch: int) -> None:
    trainer = trainer_in(folder, epochs=2)
    trainer.callbacks.insert(0, SignalAt(signal.SIGTERM, epoch=1, batch=batch))
    with pytest.raises(RunInterrupted):
        trainer.fit(MLPClassifier(), mnist(mnist_dir))


def test_an_interrupted_epoch_resumed_for_longer_follows_the_longer_plan_from_its_step(mnist_dir, tmp_path, caplog):
    interrupted_in_epoch_1(tmp_path, mnist_dir, batch=2)
    rates = recording_rates(model := MLPClassifier())
    longer = fit(tmp_path, model, mnist(mnist_dir), epochs=3, ckpt_path="last")
    assert longer.global_step == one_cycle(longer).total_steps == 3 * STEPS
    assert rates == pytest.approx(one_cycle_plan(3e-3, 3 * STEPS)[STEPS + 3 :], rel=1e-6)
    assert "16 steps, peak 0.003 -> 24 steps, peak 0.003; going on from step 11" in caplog.text


def test_an_interrupted_epoch_resumed_as_it_was_keeps_its_schedule_and_says_nothing(mnist_dir, tmp_path, caplog):
    interrupted_in_epoch_1(tmp_path, mnist_dir, batch=2)
    same = fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=2, ckpt_path="last")
    assert same.global_step == one_cycle(same).total_steps == 2 * STEPS and "re-planned" not in caplog.text


def test_an_interrupted_epoch_resumed_with_another_peak_follows_that_peaks_plan(mnist_dir, tmp_path, caplog):
    interrupted_in_epoch_1(tmp_path, mnist_dir, batch=2)  # the same length: only the peak differs
    rates = recording_rates(model := MLPClassifier(lr=1e-2))
    fit(tmp_path, model, mnist(mnist_dir), epochs=2, ckpt_path="last")
    assert rates == pytest.approx(one_cycle_plan(1e-2, 2 * STEPS)[STEPS + 3 :], rel=1e-6)
    assert "16 steps, peak 0.003 -> 16 steps, peak 0.01; going on from step 11" in caplog.text


@pytest.mark.parametrize("done", [4, 5])
def test_an_epoch_resumed_past_a_smaller_limit_ends_as_lightning_counts_it_and_so_does_the_plan(
    done, mnist_dir, tmp_path
):
    interrupted_in_epoch_1(tmp_path, mnist_dir, batch=done - 1)  # `done` of the epoch's 8 steps taken
    shorter = fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=3, ckpt_path="last", limit_train_batches=4)
    # at or past the limit, Lightning counts the interrupted epoch anew: up to 4 more steps, as far as its data goes
    more = min(4, STEPS - done)
    assert shorter.global_step == one_cycle(shorter).total_steps == STEPS + done + more + 4


def test_a_resumed_run_with_max_steps_plans_for_that_many(mnist_dir, tmp_path):
    fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=1)
    rates = recording_rates(model := MLPClassifier())
    capped = fit(tmp_path, model, mnist(mnist_dir), epochs=10, ckpt_path="last", max_steps=20)
    assert capped.global_step == one_cycle(capped).total_steps == 20
    assert rates == pytest.approx(one_cycle_plan(3e-3, 20)[STEPS:], rel=1e-6)


def test_train_shorter_than_planned_replans_one_cycle_to_the_earlier_end(mnist_dir, tmp_path):
    trainer = trainer_in(tmp_path, epochs=4)
    trainer.callbacks.append(CrashAtEpoch(2))
    with pytest.raises(Crash):
        trainer.fit(MLPClassifier(), mnist(mnist_dir))
    rates = recording_rates(model := MLPClassifier())
    shorter = fit(tmp_path, model, mnist(mnist_dir), epochs=3, ckpt_path="last")
    assert shorter.global_step == 3 * STEPS and one_cycle(shorter).total_steps == 3 * STEPS
    assert rates == pytest.approx(one_cycle_plan(3e-3, 3 * STEPS)[2 * STEPS :], rel=1e-6)


def test_train_longer_at_a_constant_rate_keeps_the_rate(mnist_dir, tmp_path, caplog):
    fit(tmp_path, MLPClassifier(lr_schedule="constant"), mnist(mnist_dir), epochs=1)
    longer = fit(tmp_path, MLPClassifier(lr_schedule="constant"), mnist(mnist_dir), epochs=2, ckpt_path="last")
    assert longer.global_step == 2 * STEPS and longer.optimizers[0].param_groups[0]["lr"] == 3e-3
    assert "re-planned" not in caplog.text and "learning rate" not in caplog.text  # nothing changed


def test_train_longer_replans_the_scratch_nets_cosine_step(mnist_dir, tmp_path, caplog):
    fit(tmp_path, ScratchDeepNet(lr=0.2, lr_schedule="cosine"), mnist(mnist_dir), epochs=1)
    model = ScratchDeepNet(lr=0.2, lr_schedule="cosine")
    longer = fit(tmp_path, model, mnist(mnist_dir), epochs=3, ckpt_path="last")
    assert longer.global_step == 3 * STEPS
    assert longer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0)  # the cosine reached 0 at the new end
    assert "cosine step size re-planned for this run's settings: 8 -> 24 steps; going on from step 8" in caplog.text


def test_another_peak_step_size_of_the_scratch_nets_cosine_applies_from_the_resume(mnist_dir, tmp_path, caplog):
    fit(tmp_path, ScratchDeepNet(lr=0.2, lr_schedule="cosine"), mnist(mnist_dir), epochs=1)
    rates = recording_rates(model := ScratchDeepNet(lr=0.4, lr_schedule="cosine"))
    fit(tmp_path, model, mnist(mnist_dir), epochs=2, ckpt_path="last")
    cosine = [0.4 * (1 + math.cos(math.pi * step / (2 * STEPS))) / 2 for step in range(STEPS, 2 * STEPS)]
    assert rates == pytest.approx(cosine, rel=1e-6)  # the cosine of a 0.4 peak, from step 8 of 16
    assert "peak step size 0.2 -> 0.4" in caplog.text


def test_another_batch_size_from_an_epochs_end_goes_on_at_that_size(mnist_dir, tmp_path):
    fit(tmp_path, MLPClassifier(), mnist(mnist_dir, batch_size=32), epochs=1)
    data = mnist(mnist_dir, batch_size=16)
    resumed = fit(tmp_path, MLPClassifier(), data, epochs=2, ckpt_path="last")
    assert resumed.global_step == STEPS + 2 * STEPS  # the second epoch in 16 steps of 16
    assert one_cycle(resumed).total_steps == resumed.global_step
    run = Path(resumed.log_dir)  # config and hparams agree: this run's settings, the earlier ones kept
    assert load_hparams_from_yaml(run / "hparams.yaml")["data.batch_size"] == 16
    config, config_before = (load_hparams_from_yaml(run / name) for name in ("config.yaml", "config.1.yaml"))
    assert (config["data"]["init_args"]["batch_size"], config_before["data"]["init_args"]["batch_size"]) == (16, 32)


def test_a_run_continued_with_another_batch_size_says_so_in_config_and_hparams(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--config", CONFIG, f"--data.data_dir={mnist_dir}", f"--data.val_size={VAL_SIZE}"]
    args += ["--data.download=false", "--trainer.enable_progress_bar=false", "--test_after_fit=false"]
    stages.fit([*args, "--data.batch_size=32", "--trainer.max_epochs=1"])
    stages.fit([*args, "--data.batch_size=16", "--trainer.max_epochs=2", "--ckpt_path=last"])
    run = tmp_path / "lightning_logs" / "mnist_mlp" / "version_0"
    config, config_before = (load_hparams_from_yaml(run / name) for name in ("config.yaml", "config.1.yaml"))
    assert (config["data"]["init_args"]["batch_size"], config_before["data"]["init_args"]["batch_size"]) == (16, 32)
    assert load_hparams_from_yaml(run / "hparams.yaml")["data.batch_size"] == 16


def test_another_batch_size_mid_epoch_is_refused_naming_what_works(mnist_dir, tmp_path):
    trainer = trainer_in(tmp_path, epochs=2)
    trainer.callbacks.insert(0, SignalAt(signal.SIGTERM, epoch=1, batch=2))
    with pytest.raises(RunInterrupted):
        trainer.fit(MLPClassifier(), mnist(mnist_dir))
    run = tmp_path / "run" / "version_0"
    before = digests(run)
    checkpoints = run / "checkpoints"
    expected = (
        f"{checkpoints / 'interrupted.ckpt'} stopped in the middle of epoch 1, after 3 steps of 32 rows "
        f"(batch_size x processes), and this run takes 16 x 1: an epoch goes on in the steps it began with. "
        f"Finish it with the batch size and processes it had, then change them at the next `--ckpt_path last`; "
        f"or go on from the end of the epoch before, in a new run folder, with `--ckpt_path {checkpoints}/last.ckpt`"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        fit(tmp_path, MLPClassifier(), mnist(mnist_dir, batch_size=16), epochs=2, ckpt_path="last")
    after = digests(run)
    assert {name: after[name] for name in before} == before  # nothing it had changed
    last = checkpoints / "last.ckpt"
    both = fit(tmp_path, MLPClassifier(), mnist(mnist_dir, batch_size=16), epochs=2, ckpt_path=last)
    assert both.global_step == STEPS + 2 * STEPS and Path(both.log_dir).name == "version_1"  # the second command


@pytest.mark.parametrize("schedule", ["constant", "one_cycle"])
def test_another_learning_rate_takes_effect_from_the_resume(schedule, mnist_dir, tmp_path, caplog):
    fit(tmp_path, MLPClassifier(lr=1e-3, lr_schedule=schedule), mnist(mnist_dir), epochs=1)
    rates = recording_rates(model := MLPClassifier(lr=1e-2, lr_schedule=schedule))
    fit(tmp_path, model, mnist(mnist_dir), epochs=2, ckpt_path="last")
    if schedule == "constant":
        assert rates == [1e-2] * STEPS
        assert "learning rate 0.001 -> 0.01; going on from step 8" in caplog.text
    else:  # the one-cycle schedule of a 16-step run peaking at 0.01, from its step 8 on
        assert rates == pytest.approx(one_cycle_plan(1e-2, 2 * STEPS)[STEPS:], rel=1e-6)
        assert "-> 16 steps, peak 0.01; going on from step 8" in caplog.text


@pytest.mark.parametrize("schedule", ["constant", "one_cycle"])
def test_another_weight_decay_applies_from_the_resume_under_either_schedule(schedule, mnist_dir, tmp_path, caplog):
    fit(tmp_path, MLPClassifier(weight_decay=0.0, lr_schedule=schedule), mnist(mnist_dir), epochs=1)
    model = MLPClassifier(weight_decay=0.1, lr_schedule=schedule)
    decays: list[float] = []
    model.on_train_batch_start = lambda batch, i: decays.append(model.optimizers().param_groups[0]["weight_decay"])
    fit(tmp_path, model, mnist(mnist_dir), epochs=2, ckpt_path="last")
    assert decays == [0.1] * STEPS  # failed under one-cycle: the checkpoint's 0 stayed, the log said 0.1
    assert "weight decay 0 -> 0.1" in caplog.text


def test_the_command_lines_optimizer_settings_apply_from_the_resume(mnist_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    args = ["--config", CONFIG, f"--data.data_dir={mnist_dir}", f"--data.val_size={VAL_SIZE}"]
    args += ["--data.download=false", "--data.batch_size=32", "--trainer.enable_progress_bar=false"]
    args += ["--test_after_fit=false", "--optimizer=SGD"]
    stages.fit([*args, "--optimizer.lr=0.05", "--optimizer.momentum=0.5", "--trainer.max_epochs=1"])
    resumed = [*args, "--optimizer.lr=0.02", "--optimizer.momentum=0.9", "--trainer.max_epochs=2", "--ckpt_path=last"]
    with caplog.at_level("INFO"):
        cli = stages.fit(resumed)
    (group,) = cli.trainer.optimizers[0].param_groups
    assert (group["lr"], group["momentum"]) == (0.02, 0.9)  # failed: the checkpoint's 0.05 and 0.5
    assert "learning rate 0.05 -> 0.02, momentum 0.5 -> 0.9; going on from step 8" in caplog.text
    adam = [*args[:-1], "--optimizer=Adam", "--trainer.max_epochs=1", "--trainer.logger.init_args.name=adam"]
    stages.fit([*adam, "--optimizer.betas=[0.8, 0.99]"])
    cli = stages.fit([*adam, "--optimizer.betas=[0.9, 0.999]", "--trainer.max_epochs=2", "--ckpt_path=last"])
    assert cli.trainer.optimizers[0].param_groups[0]["betas"] == (0.9, 0.999)
    assert "betas (0.8, 0.99) -> (0.9, 0.999)" in caplog.text


def test_a_finished_run_is_refused_and_left_as_it_was(mnist_dir, tmp_path):
    done = fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=2)
    run, last = Path(done.log_dir), done.checkpoint_callback.last_model_path
    before = digests(run)
    expected = (
        f"{last} has trained 2 epoch(s) ({2 * STEPS} steps), as many as max_epochs=2 asks: nothing is left to train. "
        f"To train longer, ask for more (--trainer.max_epochs 4 with --ckpt_path); to evaluate it, "
        f"`litmodules test --ckpt_path {last}`"
    )
    for epochs in (2, 1):  # the same length, and a shorter one
        with pytest.raises(ValueError, match=re.escape(expected.replace("max_epochs=2", f"max_epochs={epochs}"))):
            fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=epochs, ckpt_path="last")
    assert digests(run) == before  # every checkpoint and file byte-identical


def test_last_continues_the_newest_of_several_runs(mnist_dir, tmp_path):
    first = fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=1)
    second = fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=1)
    assert [Path(t.log_dir).name for t in (first, second)] == ["version_0", "version_1"]
    older = digests(Path(first.log_dir))
    resumed = fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=2, ckpt_path="last")
    assert resumed.ckpt_path == second.checkpoint_callback.last_model_path and resumed.log_dir == second.log_dir
    assert digests(Path(first.log_dir)) == older


def test_a_runs_newest_checkpoint_goes_on_in_its_folder_and_an_older_one_starts_another(mnist_dir, tmp_path):
    first = fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=2)
    run = Path(first.log_dir)
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    before = digests(run)
    branch = fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=3, ckpt_path=best)  # not the newest: a branch
    assert Path(branch.log_dir).name == "version_1" and digests(run) == before
    last = run / "checkpoints" / "last.ckpt"  # from Python the run's folder is the Trainer's: its version
    again = fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=3, ckpt_path=last, version=0)
    assert Path(again.log_dir) == run and again.global_step == 3 * STEPS


def test_a_checkpoint_with_a_fixed_version_or_no_logger_goes_on_where_it_is_told(mnist_dir, tmp_path):
    last = Path(fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=1).checkpoint_callback.last_model_path)
    fixed = make_trainer("run", 5, save_dir=tmp_path, max_epochs=2, **QUIET)
    fixed.fit(MLPClassifier(), mnist(mnist_dir), ckpt_path=last)  # the newest checkpoint, but version 5 was asked
    assert Path(fixed.log_dir).name == "version_5" and fixed.global_step == 2 * STEPS
    alone = make_trainer("alone", save_dir=tmp_path, logger=False, max_epochs=2, **QUIET)
    alone.fit(MLPClassifier(), mnist(mnist_dir), ckpt_path=last)
    assert (tmp_path / "alone" / "version_0" / "checkpoints" / "last.ckpt").is_file()
    assert alone.global_step == 2 * STEPS and sorted(p.name for p in last.parents[1].parent.iterdir()) == [
        "version_0",
        "version_5",
    ]


# -- test and predict from a checkpoint alone --


def test_test_and_predict_from_a_checkpoint_alone_from_another_folder(mnist_dir, tmp_path, monkeypatch):
    (tmp_path / "data").symlink_to(mnist_dir, target_is_directory=True)  # the config's relative data_dir
    monkeypatch.chdir(tmp_path)
    args = [f"--data.val_size={VAL_SIZE}", "--data.download=false", "--data.batch_size=32", "--trainer.max_epochs=1"]
    stages.fit(["--config", CONFIG, "--data.data_dir=data", *args, "--trainer.enable_progress_bar=false"])
    run = tmp_path / "lightning_logs" / "mnist_mlp" / "version_0"
    before = digests(run)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # data/ is not here: only the config's first line says where the run trained
    checkpoint = "../lightning_logs/mnist_mlp/version_0/checkpoints/last.ckpt"
    test = stages.test([f"--ckpt_path={checkpoint}"])
    stages.predict([f"--ckpt_path={checkpoint}"])
    assert list(elsewhere.iterdir()) == [] and sorted(p.name for p in run.parent.iterdir()) == ["version_0"]
    after = digests(run)
    kept = {name for name in before if name != "test_metrics.json"}  # that one gains a row
    assert {name: after[name] for name in kept} == {name: before[name] for name in kept}  # config, hparams, ...
    added = sorted(set(after) - set(before))
    assert [name for name in added if not name.startswith("test/events")] == [
        "predictions/test.csv",
        "test/hparams.yaml",
    ]
    recorded = json.loads((run / "test_metrics.json").read_text())
    assert len(recorded) == 2  # the best checkpoint, tested by the fit, and last.ckpt now
    assert recorded["last.ckpt"]["test/acc"] == pytest.approx(test.trainer.callback_metrics["test/acc"].item())
    assert len(pd.read_csv(run / "predictions" / "test.csv")) == 80
    config = "../lightning_logs/mnist_mlp/version_0/config.yaml"  # given by hand: read the same way
    validate = stages.validate(["--config", config, f"--ckpt_path={checkpoint}"])
    assert validate.trainer.callback_metrics["val/acc"] > 0.5 and (run / "validate_metrics.json").is_file()


def test_a_checkpoint_that_cannot_be_a_run_is_refused_naming_why(tmp_path):
    empty = tmp_path / "model.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(f"{empty} is not a readable checkpoint (EOFError): it may be")):
        stages.test([f"--ckpt_path={empty}"])
    alone = tmp_path / "0.1.0.ckpt"  # a 0.1.0 checkpoint records no run: its run's config.yaml must be beside it
    alone.write_bytes((ROOT / "tests" / "runs_0_1_0" / "mnist_mlp" / "checkpoints" / "last.ckpt").read_bytes())
    message = f"{alone} was not written by litmodules (it records no run): load it with the code that wrote it; "
    with pytest.raises(ValueError, match=re.escape(message)):
        stages.test([f"--ckpt_path={alone}"])
    absent = tmp_path / "checkpoints" / "absent.ckpt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"checkpoint {absent} does not exist")):
        stages.predict([f"--ckpt_path={absent}"])


def test_predict_a_new_table_with_its_id_column(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    people = pd.read_csv(PEOPLE)
    people.to_csv("people.csv", index=False)
    config = ["--config", str(CONFIGS / "tabular_scratch.yaml"), "--data.csv=people.csv"]
    stages.fit([*config, "--data.init_args.id_column=id", "--data.drop=[]", "--trainer.max_epochs=2"])
    new = people.drop(columns="renewed").iloc[[5, 3, 11]]
    new.to_csv("new.csv", index=False)
    run = tmp_path / "lightning_logs" / "tabular_scratch" / "version_0"
    stages.predict([f"--ckpt_path={run}/checkpoints/last.ckpt", "--data.init_args.predict_csv=new.csv"])
    written = pd.read_csv(run / "predictions" / "new.csv")
    assert list(written.columns) == ["row", "id", "prediction", "p_0", "p_1"]
    assert written["row"].tolist() == [0, 1, 2] and written["id"].tolist() == new["id"].tolist()
    model = ScratchDeepNet.load_from_checkpoint(run / "checkpoints" / "last.ckpt")
    data = TabularDataModule.load_from_checkpoint(run / "checkpoints" / "last.ckpt", predict_csv="new.csv")
    with torch.no_grad():
        expected = model.probabilities(model.eval()(data.table("predict").tensors[0]))[:, 1]
    assert torch.allclose(torch.tensor(written["p_1"].to_numpy(), dtype=torch.float32), expected, atol=1e-5)
    assert written["prediction"].tolist() == (expected > 0.5).long().tolist()  # the label of the likelier class


# -- the prediction file, column by column (PredictionWriter with a stand-in trainer: no training) --


class Labelled(TensorDataModule):
    """A data module whose rows have ids and whose classes have names, as a table's do."""

    def __init__(self) -> None:
        super().__init__(batch_size=2)
        self.facts = DataFacts(task="multiclass", input_shape=(1,), class_names=("no", "yes"))

    def setup(self, stage: str | None = None) -> None:
        pass

    @property
    def predict_name(self) -> str:
        return "new"

    def prediction_rows(self) -> pd.DataFrame:
        return pd.DataFrame({"row": [0, 1], "id": ["b", "a"]}, index=[7, 3])  # the index is not written


def stand_in_trainer(run: Path | None, datamodule=None, **overrides) -> SimpleNamespace:
    folder = str(run) if run is not None else str(Path.cwd())  # a Trainer's default_root_dir is the cwd unless told
    return SimpleNamespace(
        **{"default_root_dir": folder, "datamodule": datamodule, "world_size": 1, "is_global_zero": True} | overrides
    )


def write(writer: PredictionWriter, trainer: SimpleNamespace, outputs: list[torch.Tensor], rows=None) -> None:
    writer.write_on_epoch_end(trainer, None, outputs, [rows or []])


def test_predictions_of_data_without_rows_or_labels_number_both(tmp_path, caplog):
    writer, run = PredictionWriter(), tmp_path / "run"
    with caplog.at_level("INFO"):
        write(writer, stand_in_trainer(run), [torch.tensor([[0.75, 0.25], [1 / 3, 2 / 3]]), torch.tensor([[0.5, 0.5]])])
    path = run / "predictions" / "predictions.csv"  # no ckpt_path, no predict_name: the log folder, a plain name
    assert path.read_text() == "row,prediction,p_0,p_1\n0,0,0.75,0.25\n1,1,0.333333,0.666667\n2,0,0.5,0.5\n"
    assert f"predictions of 3 examples written to {path}" in caplog.text


def test_predictions_name_rows_and_labels_as_the_data_has_them(tmp_path):
    run = tmp_path / "run"
    write(PredictionWriter(), stand_in_trainer(run, Labelled()), [torch.tensor([[0.9, 0.1], [2e-7, 1 - 2e-7]])])
    written = (run / "predictions" / "new.csv").read_text()
    assert written == "row,id,prediction,p_no,p_yes\n0,b,no,0.9,0.1\n1,a,yes,2e-07,1\n"


def test_predictions_in_target_units_and_a_file_in_a_new_subfolder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no log folder at all: the working directory
    write(PredictionWriter("deeper/still/out.csv"), stand_in_trainer(None), [torch.tensor([1.5, -1 / 3])])
    assert (tmp_path / "deeper" / "still" / "out.csv").read_text() == "row,prediction\n0,1.5\n1,-0.333333\n"


def test_predictions_for_fewer_rows_than_the_data_has_are_refused(tmp_path):
    with pytest.raises(RuntimeError, match=re.escape("3 predictions for 2 rows: the data changed while predicting")):
        write(PredictionWriter(), stand_in_trainer(tmp_path, Labelled()), [torch.rand(3, 2)])


def test_predictions_never_replace_a_file_that_appeared_while_predicting(tmp_path):
    target = tmp_path / "predictions" / "predictions.csv"
    target.parent.mkdir()
    target.write_text("earlier work\n")  # after on_predict_start looked: "x" still refuses it
    with pytest.raises(FileExistsError):
        write(PredictionWriter(), stand_in_trainer(tmp_path), [torch.tensor([1.0])])
    assert target.read_text() == "earlier work\n"


def test_predictions_replace_an_earlier_file_only_when_asked(tmp_path):
    target = tmp_path / "predictions" / "predictions.csv"
    target.parent.mkdir()
    target.write_text("earlier work\n")
    trainer = stand_in_trainer(tmp_path)
    message = f"{target} exists: pass --prediction_writer.overwrite true to replace it, or another"
    with pytest.raises(FileExistsError, match=re.escape(message)):
        PredictionWriter().on_predict_start(trainer, None)
    replacing = PredictionWriter(overwrite=True)
    replacing.on_predict_start(trainer, None)
    write(replacing, trainer, [torch.tensor([2.0])])
    assert target.read_text() == "row,prediction\n0,2\n"


@pytest.mark.parametrize("rank", [0, 1])
def test_predictions_of_several_processes_are_written_once_in_the_datas_order(rank, tmp_path, monkeypatch):
    """Two ranks, each given every other row (as DistributedSampler does); rank 0 writes them all."""
    mine, theirs = (torch.tensor([0, 2, 4]), torch.tensor([1, 3])) if rank == 0 else (torch.tensor([1, 3]), None)

    def all_gather_object(shares, share):
        rows, outputs = share
        assert rows.dtype == torch.long and torch.equal(rows, mine) and torch.equal(outputs, mine * 10.0)
        shares[:] = [share, (theirs, theirs * 10.0)] if rank == 0 else [(torch.tensor([0, 2, 4]),) * 2, share]

    monkeypatch.setattr(torch.distributed, "all_gather_object", all_gather_object)
    trainer = stand_in_trainer(tmp_path, world_size=2, is_global_zero=rank == 0)
    batches = [mine[:2].tolist(), mine[2:].tolist()]
    write(PredictionWriter(), trainer, [mine[:2] * 10.0, mine[2:] * 10.0], rows=batches)
    written = tmp_path / "predictions" / "predictions.csv"
    if rank == 0:
        assert written.read_text() == "row,prediction\n0,0\n1,10\n2,20\n3,30\n4,40\n"
    else:
        assert not written.exists()


def test_a_fit_ends_saying_where_its_best_and_last_checkpoints_are(tmp_path, caplog):
    checkpoint = ModelCheckpoint(monitor="val/loss")
    checkpoint.best_model_path, checkpoint.best_model_score = "run/checkpoints/epoch03.ckpt", torch.tensor(0.123456)
    checkpoint.last_model_path = "run/checkpoints/last.ckpt"
    logger = TensorBoardLogger(tmp_path, name="run", version=0)
    metrics = {"val/acc": torch.tensor(0.25), "val/acc_best": torch.tensor(0.5)}
    trainer = SimpleNamespace(
        fast_dev_run=False, callback_metrics=metrics, checkpoint_callback=checkpoint, logger=logger
    )
    with caplog.at_level("INFO"):
        RunSummary().on_fit_end(trainer, None)
        checkpoint.best_model_score = None  # no score to name (nothing monitored): no best checkpoint either
        RunSummary().on_fit_end(trainer, None)
        RunSummary().on_fit_end(SimpleNamespace(fast_dev_run=True), None)  # a trial run: nothing to point to
    board = f"TensorBoard: tensorboard --logdir {tmp_path}/run/version_0"
    best = "best checkpoint: run/checkpoints/epoch03.ckpt (val/loss 0.1235)\n"
    last = "last checkpoint: run/checkpoints/last.ckpt\n"
    expected = [f"val/acc_best: 0.5000\n{best}{last}{board}", f"val/acc_best: 0.5000\n{last}{board}"]
    assert [record.getMessage() for record in caplog.records] == expected


def test_a_run_resumed_at_an_epochs_end_logs_nothing_for_the_epoch_ended_again(mnist_dir, tmp_path, recwarn):
    """Lightning runs the end of the checkpoint's epoch again on resuming, with no step: logging it then would
    compute empty means (torchmetrics warns the user: "compute ... called before the update")."""
    fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=1)
    fit(tmp_path, MLPClassifier(), mnist(mnist_dir), epochs=10, ckpt_path="last", max_steps=20)
    assert not [w for w in recwarn if "was called before the ``update`` method" in str(w.message)]


class RatesSeen(L.Callback):
    """The learning rate of every training step."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_a_schedule_of_the_command_line_keeps_setting_the_rate_after_a_resume(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--config", CONFIG, f"--data.data_dir={mnist_dir}", f"--data.val_size={VAL_SIZE}", "--data.download=false"]
    args += ["--data.batch_size=32", "--trainer.enable_progress_bar=false", "--test_after_fit=false"]
    args += ["--optimizer=SGD", "--optimizer.lr=0.1", "--lr_scheduler=StepLR", "--lr_scheduler.step_size=1"]
    args += ["--lr_scheduler.gamma=0.5", f"--trainer.callbacks+={__name__}.RatesSeen"]
    stages.fit([*args, "--optimizer.momentum=0.5", "--trainer.max_epochs=2"])
    cli = stages.fit([*args, "--optimizer.momentum=0.9", "--trainer.max_epochs=3", "--ckpt_path=last"])
    (seen,) = [callback for callback in cli.trainer.callbacks if isinstance(callback, RatesSeen)]
    assert seen.rates == [0.1 * 0.5**2] * STEPS  # the schedule's third epoch; failed: 0.1, the optimizer's own
    assert cli.trainer.optimizers[0].param_groups[0]["momentum"] == 0.9  # a schedule that does not cycle it
