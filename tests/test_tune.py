"""`litmodules tune`: trials as runs, pruning, a stopped search continued, best.yaml, and search files refused."""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import types
from pathlib import Path

import lightning as L
import optuna
import pytest
import torch
import yaml
from conftest import VAL_SIZE
from optuna.trial import TrialState

from nnmodules.callbacks import RunInterrupted
from nnmodules.cli import main, stages
from nnmodules.cli.tune import tune
from nnmodules.cli.tune.report import results
from nnmodules.cli.tune.search import read_search
from nnmodules.cli.tune.study import Pruning, _interruption, _pick_up

EPOCHS = 2


class InterruptAt(L.Callback):
    """Ctrl-C in the middle of trial_1's first epoch, when that trial starts (not when it is continued)."""

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.logger.version == "trial_1" and trainer.global_step == 3 and trainer.ckpt_path is None:
            os.kill(os.getpid(), signal.SIGINT)


def fit_args(mnist_dir: Path, *more: str) -> list[str]:
    data = [f"--data.data_dir={mnist_dir}", f"--data.val_size={VAL_SIZE}", "--data.download=false"]
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    model = ["--model=MLPClassifier", "--model.hidden_dims=[32]", "--data=MNISTDataModule", *data]
    return [*model, f"--trainer.max_epochs={EPOCHS}", "--trainer.log_every_n_steps=4", *quiet, *more]


def search_file(folder: Path, name: str = "search", **settings) -> Path:
    space = {"model.init_args.lr": {"low": 1e-3, "high": 3e-2, "log": True}, "data.init_args.batch_size": [16, 32]}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"space": space, **settings}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def study(mnist_dir, tmp_path_factory):
    """Three trials of a search over lr, hidden_dims and batch_size: (folder, study, fit args)."""
    folder = tmp_path_factory.mktemp("tune")
    space = {"model.init_args.hidden_dims": [[16], [32, 16]], "model.init_args.lr": {"low": 1e-3, "high": 3e-2}}
    (folder / "widths.yaml").write_text(yaml.safe_dump({"space": space}))
    args = fit_args(mnist_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        return folder, tune(folder / "widths.yaml", 3, args), args


def test_each_trial_is_a_run_of_its_own_with_the_search_values(study):
    folder, result, _ = study
    assert [trial.state for trial in result.trials] == [TrialState.COMPLETE] * 3  # 3 trials: none pruned yet
    for trial in result.trials:
        run = folder / "lightning_logs" / "widths" / f"trial_{trial.number}"
        config = yaml.safe_load((run / "config.yaml").read_text().split("\n", 1)[1])
        assert config["model"]["init_args"]["lr"] == trial.params["model.init_args.lr"]
        assert str(config["model"]["init_args"]["hidden_dims"]).replace(" ", "") == trial.params[
            "model.init_args.hidden_dims"
        ].replace(" ", "")
        assert config["test_after_fit"] is False  # a search never looks at the test split
        assert (run / "checkpoints" / "last.ckpt").is_file() and list(run.glob("events.out.tfevents.*"))
        assert sorted(trial.intermediate_values) == list(range(EPOCHS))  # the pruner saw every epoch
        assert trial.value == max(trial.intermediate_values.values())  # val/acc_best: the best epoch's
    assert len({trial.params["model.init_args.lr"] for trial in result.trials}) == 3  # each trial draws its own
    assert (folder / "lightning_logs" / "widths" / "study.db").is_file()


def test_best_yaml_trains_the_best_trial_again_to_the_same_figure(study, monkeypatch):
    folder, result, _ = study
    monkeypatch.chdir(folder)
    best = folder / "lightning_logs" / "widths" / "best.yaml"
    assert f"trial {result.best_trial.number}" in best.read_text().splitlines()[0]
    trial_checkpoints = folder / "lightning_logs" / "widths" / f"trial_{result.best_trial.number}" / "checkpoints"
    before = sorted(trial_checkpoints.iterdir())
    cli = stages.fit(["--config", str(best)])
    assert cli.trainer.callback_metrics["val/acc_best"].item() == result.best_value
    assert cli.trainer.logger.log_dir.endswith("widths/version_0")  # a new run, beside the trials
    assert cli.trainer.checkpoint_callback.dirpath.endswith("widths/version_0/checkpoints")
    assert sorted(trial_checkpoints.iterdir()) == before  # failed: saved into the trial's folder, as config.yaml said


def test_the_same_command_again_runs_only_what_is_missing(study, monkeypatch, capsys):
    folder, _, args = study
    monkeypatch.chdir(folder)
    again = tune(folder / "widths.yaml", 4, args)
    assert len(again.trials) == 4 and again.trials[3].user_attrs["run"] == "trial_3"
    assert len(tune(folder / "widths.yaml", 4, args).trials) == 4  # done: nothing runs
    output = capsys.readouterr().out
    assert "study lightning_logs/widths/study.db: 4 complete" in output
    assert "the best trial's config: lightning_logs/widths/best.yaml" in output


def test_a_study_refuses_another_search_or_other_options(study, monkeypatch):
    folder, _, args = study
    monkeypatch.chdir(folder)
    (folder / "other.yaml").write_text(yaml.safe_dump({"space": {"model.init_args.lr": [0.01, 0.02]}}))
    with pytest.raises(ValueError, match="holds a study widths of another search file"):
        tune(folder / "other.yaml", 5, args, study_name="widths")
    with pytest.raises(ValueError, match=r"a study widths of other settings \(--model.init_args.dropout 0.1 there, "):
        tune(folder / "widths.yaml", 5, [*args, "--model.dropout=0.3"])
    with pytest.raises(ValueError, match=r"settings \(--optimizer.class_path null there, \"torch.optim.SGD\" here"):
        tune(folder / "widths.yaml", 5, [*args, "--optimizer=SGD"])  # options the study's runs did not have


def by_meaning(args: list[str]) -> list[str]:
    """The same options as a person may type them another time: in another order, `--x y` for `--x=y`, no display."""
    kept = [arg for arg in args if not arg.startswith("--trainer.enable_progress_bar")]
    trainer_first = sorted(kept, key=lambda arg: not arg.startswith("--trainer."))  # classes still before their options
    return [part for arg in trainer_first for part in arg.split("=", 1)]


def test_a_study_continues_with_its_options_typed_another_way(study, monkeypatch):
    folder, _, args = study
    monkeypatch.chdir(folder)
    again = by_meaning(args)
    assert again != args and "--trainer.enable_progress_bar=false" in args
    done = len(tune(folder / "widths.yaml", 1, args).trials)  # as many as it holds: nothing more runs
    assert len(tune(folder / "widths.yaml", done, again).trials) == done  # failed: "a study of other options"


def test_a_search_built_to_prune_prunes_the_hopeless_trial_after_its_first_epoch(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = {"model.init_args.lr": [0.01, 1e-9]}  # 1e-9: chance accuracy, 0.1
    pruner = {"class_path": "ThresholdPruner", "init_args": {"lower": 0.3}}
    sampler = {"class_path": "GridSampler", "init_args": {"search_space": space}}  # each value once, then it stops
    (tmp_path / "prune.yaml").write_text(yaml.safe_dump({"space": space, "pruner": pruner, "sampler": sampler}))
    result = tune(tmp_path / "prune.yaml", 3, fit_args(mnist_dir, "--trainer.max_epochs=3"))
    assert len(result.trials) == 2  # the grid done, its sampler ends the study
    states = {trial.params["model.init_args.lr"]: trial.state for trial in result.trials}
    assert states == {0.01: TrialState.COMPLETE, 1e-9: TrialState.PRUNED}
    (pruned,) = result.get_trials(states=(TrialState.PRUNED,))
    assert list(pruned.intermediate_values) == [0]  # stopped after its first epoch, of three
    assert not (tmp_path / "lightning_logs" / "prune" / pruned.user_attrs["run"] / "checkpoints" / "last.ckpt").exists()
    assert len(tune(tmp_path / "prune.yaml", 2, fit_args(mnist_dir, "--trainer.max_epochs=3")).trials) == 2  # counted


def test_ctrl_c_stops_the_search_and_the_same_command_continues_the_trial(mnist_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = fit_args(mnist_dir, f"--trainer.callbacks+={__name__}.InterruptAt")
    with pytest.raises(SystemExit) as stop:
        tune(search_file(tmp_path), 3, args)
    assert stop.value.code == 130
    run = tmp_path / "lightning_logs" / "search" / "trial_1"
    assert (run / "checkpoints" / "interrupted.ckpt").is_file()
    assert "search stopped" in capsys.readouterr().err

    result = tune(search_file(tmp_path), 3, args)
    said = capsys.readouterr().out
    assert f"trial 1 ({Path('lightning_logs') / 'search' / 'trial_1'}): " in said
    assert "(continued where it stopped)" in said
    assert "trial 2 (" not in said  # failed: the continued trial was called trial 2, in trial_1's folder
    states = [trial.state for trial in result.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    continued = result.trials[2]
    assert continued.user_attrs["continues"] == 1 and continued.user_attrs["run"] == "trial_1"
    assert continued.params == result.trials[1].params
    assert sorted(continued.intermediate_values) == list(range(EPOCHS))
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert "study lightning_logs/search/study.db: 3 complete, 1 stopped" in said


def test_a_trial_of_a_killed_process_is_continued():
    study = optuna.create_study()
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    for key, value in {"run": "trial_0", "host": os.uname().nodename, "pid": 2**22 + 1}.items():  # above pid_max
        trial.set_user_attr(key, value)
    alive = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    for key, value in {"run": "trial_1", "host": os.uname().nodename, "pid": os.getpid()}.items():
        alive.set_user_attr(key, value)
    _pick_up(study)
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]
    assert study.trials[2].user_attrs == {"continues": 0, "run": "trial_0"}
    assert study.trials[2].system_attrs["fixed_params"] == trial.params  # its settings, when it is asked for
    _pick_up(study)  # the next tune, before the continued trial ran: queued once, not again
    assert [t.state for t in study.get_trials()] == states


def test_a_trial_killed_after_its_last_checkpoint_ends_with_what_it_reported(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = fit_args(mnist_dir)
    (done,) = tune(search_file(tmp_path), 1, args).trials
    last = tmp_path / "lightning_logs" / "search" / "trial_0" / "checkpoints" / "last.ckpt"
    written = last.stat().st_mtime_ns
    study = optuna.load_study(study_name="search", storage="sqlite:///lightning_logs/search/study.db")
    dead = {"run": "trial_0", "host": socket.gethostname(), "pid": 2**22 + 1, "queued_when_stopped": True}
    killed = optuna.trial.create_trial(  # as a worker killed after its last checkpoint, before it told the study
        state=TrialState.RUNNING,
        params=done.params,
        distributions=done.distributions,
        intermediate_values={0: 0.25, 1: 0.5},
        user_attrs=dead,
    )
    study.add_trial(killed)
    result = tune(search_file(tmp_path), 2, args)
    assert [trial.state for trial in result.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert result.trials[2].value == 0.5  # its last epoch's; failed: "nothing is left to train", the search ended
    assert last.stat().st_mtime_ns == written  # nothing trained again


def test_an_error_raised_while_a_ctrl_c_is_handled_stops_the_search_as_the_ctrl_c_does():
    def optuna_writing_a_trial_end():
        try:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the write
        finally:
            raise UnboundLocalError("cannot access local variable 'updated_state'")  # what Optuna 5.1 then raises

    with pytest.raises(UnboundLocalError) as raised:
        optuna_writing_a_trial_end()
    assert _interruption(raised.value) == 130
    assert _interruption(ValueError("a bug of ours")) is None  # keeps its traceback
    try:
        raise KeyboardInterrupt from RunInterrupted("stopped", signal.SIGTERM)
    except KeyboardInterrupt as stop:
        assert _interruption(stop) == 143


def test_the_best_trial_of_a_minimised_metric_is_the_lowest(tmp_path, capsys):
    study = optuna.create_study(direction="minimize")
    for number, value in enumerate([0.5, 0.2, 0.9]):
        run = tmp_path / f"trial_{number}"
        run.mkdir()
        (run / "config.yaml").write_text(yaml.safe_dump({"model": {"init_args": {"lr": number}}}))
        attrs = {"run": run.name, "seconds": 1.0}
        study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={}, user_attrs=attrs))
    results(study, "val/loss", tmp_path, test_after_fit=False, where="study.db")
    best = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert best["model"]["init_args"]["lr"] == 1 and "trial 1 (" in (tmp_path / "best.yaml").read_text()
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:5]] == ["1", "0", "2"]


BAD_SEARCHES = [
    pytest.param({"model.init_args.lrr": [0.1]}, "model.init_args.lrr: 0.1 is refused: ", id="unknown-key"),
    pytest.param({"model.init_args.lr": {"low": 0.1, "high": 0.01}}, r"low \(0.1\) must be below high", id="range"),
    pytest.param({"model.init_args.lr": {"low": 0, "high": 0.1, "log": True}}, "log scale needs low above 0", id="log"),
    pytest.param({"model.init_args.hidden_dims": [[16], "wide"]}, '"wide" is refused', id="bad-choice"),
    pytest.param({"model.init_args.dropout": {"low": 0.5, "high": 1.5}}, "1.5 is refused: .*dropout", id="model-check"),
    pytest.param({"model.init_args.lr": {"low": 0.1, "hi": 1}}, "no 'hi' \\(did you mean 'high'", id="bound"),
    pytest.param({}, "needs `space:`", id="empty"),
]


@pytest.mark.parametrize(("space", "message"), BAD_SEARCHES)
def test_a_bad_search_file_is_one_error_before_any_trial(space, message, mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"space": space}))
    with pytest.raises(ValueError, match=message):
        tune(tmp_path / "bad.yaml", 2, fit_args(mnist_dir))
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"spaces": {}}, "no section 'spaces' \\(did you mean 'space'"),
        ({"pruner": "MedianPrunr"}, "pruner 'MedianPrunr' is not in optuna.pruners \\(did you mean 'MedianPruner'"),
        ({"pruner": {"class_path": "MedianPruner", "init_args": {"startup": 3}}}, "pruner MedianPruner: .*startup"),
        ({"metric": "val/loss"}, "metric val/loss needs its direction"),
        ({"direction": "up", "metric": "val/loss"}, "direction 'up': maximize or minimize"),
        ({"direction": "minimize"}, "direction goes with a metric of your choice"),
    ],
)
def test_a_bad_section_is_one_error_on_the_command_line(settings, message, mnist_dir, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    path = search_file(tmp_path, **settings)
    monkeypatch.setattr(
        sys, "argv", ["litmodules", "tune", "--search", str(path), "--trials", "2", *fit_args(mnist_dir)]
    )
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 1
    error = capfd.readouterr().err
    assert error.startswith(f"error: {path}: ") and len(error.splitlines()) == 2
    assert re.search(message, error), error


def test_a_metric_the_runs_do_not_log_stops_the_search_naming_those_they_do(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = search_file(tmp_path, metric="val/accuracy", direction="maximize")
    with pytest.raises(ValueError, match="no metric val/accuracy to optimise: set `metric:` to one of .*val/acc_best"):
        tune(path, 2, fit_args(mnist_dir))


def test_tune_without_what_to_train_or_with_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(ValueError, match="tune needs what each trial trains"):
        tune(search_file(tmp_path), 2, [])
    with pytest.raises(ValueError, match="tune takes no --ckpt_path"):
        tune(search_file(tmp_path), 2, ["--config=c.yaml", "--ckpt_path=last"])


def test_a_study_of_a_table_says_its_column_report_once(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    args = ["--config", "tabular_mlp", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]
    with caplog.at_level("INFO"):
        tune(search_file(tmp_path), 2, [*args, "--trainer.enable_model_summary=false"])
    assert caplog.text.count("training rows; task binary") == 1  # failed: once per trial


def space_of(tmp_path: Path, **space) -> list:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"space": space}))
    return list(read_search(path).space)


def test_a_range_is_searched_as_written_whole_numbers_as_whole_a_log_scale_as_log(tmp_path):
    (sizes,) = space_of(tmp_path, **{"data.init_args.batch_size": {"low": 16, "high": 256}})
    assert isinstance(sizes.distribution, optuna.distributions.IntDistribution)  # failed: floats, 48.7 rows
    assert sizes.distribution.step == 1
    (steps,) = space_of(tmp_path, **{"model.init_args.dropout": {"low": 0, "high": 1, "step": 0.25}})
    assert isinstance(steps.distribution, optuna.distributions.FloatDistribution) and steps.distribution.step == 0.25
    (rates,) = space_of(tmp_path, **{"model.init_args.lr": {"low": 1e-4, "high": 1e-1, "log": True}})
    trial = optuna.create_study().ask()
    value = rates.suggest(trial)
    assert trial.distributions["model.init_args.lr"].log is True and 1e-4 <= value <= 1e-1  # failed: evenly


def test_a_range_of_one_value_is_refused(tmp_path):
    with pytest.raises(ValueError, match=re.escape("model.init_args.lr: low (0.1) must be below high (0.1)")):
        space_of(tmp_path, **{"model.init_args.lr": {"low": 0.1, "high": 0.1}})


class HopelessTrial:
    """A trial whose pruner prunes at any epoch: what Pruning reports, and whether it stops."""

    def __init__(self) -> None:
        self.reported: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reported.append((value, step))

    def should_prune(self) -> bool:
        return True


@pytest.mark.parametrize(("epoch", "pruned"), [(1, True), (2, False)], ids=["before-the-last", "the-last"])
def test_a_trial_is_pruned_before_its_last_epoch_never_after_it(epoch, pruned):
    trial = HopelessTrial()
    pruning = Pruning(trial, "val/acc")
    trainer = types.SimpleNamespace(
        sanity_checking=False,
        max_epochs=3,
        callback_metrics={"val/acc": torch.tensor(0.5)},
        is_global_zero=True,
        world_size=1,
    )
    module = types.SimpleNamespace(current_epoch=epoch)
    if pruned:
        with pytest.raises(optuna.TrialPruned):
            pruning.on_validation_end(trainer, module)
    else:
        pruning.on_validation_end(trainer, module)  # failed: pruned after its last epoch, its result lost
    assert trial.reported == [(0.5, epoch)]
