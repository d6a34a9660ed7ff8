"""`litmodules tune`: a hyperparameter search by Optuna, each trial an ordinary `fit` run.

    litmodules tune --config mnist_mlp --search mnist_mlp --trials 20

The study is `<save_dir>/<study>/study.db` (SQLite; `<study>` is the search file's name
unless `--study` names it), beside its trials' runs `<save_dir>/<study>/trial_<n>/`, each
with its config, checkpoints and TensorBoard events (HParams compares them). Every trial
is the config with the search's values (`nnmodules.search`), trained in one process,
reporting its metric after each validation to the pruner (`Pruning`). Running the same
command again continues the study up to `--trials` trials, completed or pruned; a trial
stopped by Ctrl-C or a killed process is continued from its newest checkpoint in its own
folder. Several processes may run one study at once (one per GPU, say). At the end, and
on Ctrl-C, the best trials are printed and `<save_dir>/<study>/best.yaml` written: the
best trial's config, which `litmodules fit --config` trains again to the same figures.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from jsonargparse import ArgumentError
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from datamodules.errors import UserError
from nnmodules import metrics
from nnmodules.callbacks import RunInterrupted
from nnmodules.cli.errors import plain_usage_error
from nnmodules.cli.lightning_cli import LitCLI
from nnmodules.cli.recipes import search_file
from nnmodules.cli.settings import differences_of, settings_of
from nnmodules.cli.tune.report import (
    STUDY_FILE,
    TRIAL_RUN,
    number,
    one_line,
    results,
    said,
    said_once,
    short_key,
    shown,
)
from nnmodules.cli.tune.search import Search, read_search
from nnmodules.tasks import TaskModule

RESUME = "the same `litmodules tune` continues it"  # what a trial stopped by Ctrl-C says
ONE_PROCESS = {"devices": 1}  # a trial trains in the tuning process: several GPUs serve several tune processes
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)  # what --trials counts (RUNNING: elsewhere)


def main(argv: list[str]) -> None:
    """`litmodules tune ...`: the options below; every other option is `litmodules fit`'s, for every trial."""
    parser = argparse.ArgumentParser(
        prog="litmodules tune",
        description="A hyperparameter search (Optuna): each trial a `litmodules fit` run with the search's values.",
        epilog="Every other option is passed to each trial's `litmodules fit` (--config, --model..., --data..., "
        "--trainer...). The same command again continues the study. docs/tune.md",
        allow_abbrev=False,
    )
    parser.add_argument("--search", required=True, help="the search file: its space, and optionally metric, pruner")
    parser.add_argument("--trials", required=True, type=int, help="trials in all, completed or pruned")
    parser.add_argument("--study", help="the study's name and folder under save_dir; default: the search file's name")
    options, fit_args = parser.parse_known_args(argv)
    tune(options.search, options.trials, fit_args, options.study, command=argv)


def tune(
    search: str | Path,
    trials: int,
    fit_args: list[str],
    study_name: str | None = None,
    command: list[str] | None = None,
) -> optuna.Study:
    """Runs (or continues) a study until it holds `trials` completed or pruned trials; returns it.

    Args:
        search: the search file (`nnmodules.search`).
        trials: how many trials, completed or pruned, the study holds at the end.
        fit_args: `litmodules fit`'s options, the same for every trial (e.g. ["--config", "mnist_mlp"]).
        study_name: the study's name and folder; None: the search file's name.
        command: the options as typed, to say how to continue the search when it is stopped.
    """
    if trials < 1:
        raise UserError(f"--trials {trials}: a study needs at least 1 trial")
    if not fit_args:
        raise UserError("tune needs what each trial trains, as `fit` does: --config CONFIG, or --model and --data")
    if fit_args[:1] == ["fit"] or any(arg.split("=")[0] == "--ckpt_path" for arg in fit_args):
        given = "fit" if fit_args[:1] == ["fit"] else "--ckpt_path"
        raise UserError(f"tune takes no {given}: it starts its trials, and continues them when run again")
    settings = read_search(search_file(search))  # a path, or a search recipe's name
    name = study_name or settings.path.stem
    base = _build(fit_args)
    metric, direction = _objective(settings, base.model)
    folder = _folder(base.trainer, name)
    _check_space(settings, fit_args)
    study = _open_study(folder, name, settings, settings_of(base), direction)
    again = f"litmodules tune {shlex.join(command or [])}" if command is not None else "the same tune"
    left = trials - _counted(study)
    try:
        if left > 0:
            objective = functools.partial(_run_trial, search=settings, fit_args=fit_args, folder=folder, metric=metric)
            after = functools.partial(_after_trial, search=settings, trials=trials)
            # FloatingPointError: a diverged trial is a result of its settings, not a reason to stop the search
            with said_once():  # each trial reads the same table: its column report, and every other line, once
                study.optimize(objective, n_trials=left, catch=(FloatingPointError,), callbacks=[said, after])
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the trial under way is continued by the next tune
        results(study, metric, folder, base.config.get("test_after_fit", False))
        print(f"search stopped: `{again}` continues it", file=sys.stderr)
        code = stop.__cause__.code if isinstance(stop.__cause__, RunInterrupted) else None
        raise SystemExit(code if isinstance(code, int) and code > 1 else 130) from None
    results(study, metric, folder, base.config.get("test_after_fit", False))
    return study


def _counted(study: optuna.Study) -> int:
    """The trials `--trials` counts: completed, pruned, and under way in other processes."""
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def _after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial, search: Search, trials: int) -> None:
    """Ends the search at `trials`; else seeds the sampler anew for the next trial (see `Search.make_sampler`).

    By the study's trials so far: a process never draws what another process sharing the study drew before it.
    """
    if _counted(study) >= trials:
        study.stop()
    study.sampler = search.make_sampler(len(study.get_trials(deepcopy=False)))


class Pruning(PyTorchLightningPruningCallback):
    """Optuna's Lightning pruning callback: reports `monitor` after each validation and stops a trial it prunes.

    A metric the runs do not log stops the search at the first validation, naming those they log. After the last
    epoch the metric is reported and nothing is pruned: stopping then would save nothing and lose a finished result.
    """

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.monitor not in trainer.callback_metrics:
            logged = ", ".join(sorted(trainer.callback_metrics))
            raise UserError(f"the runs log no metric {self.monitor} to optimise: set `metric:` to one of {logged}")
        if trainer.max_epochs is not None and pl_module.current_epoch + 1 >= trainer.max_epochs:
            self._trial.report(float(trainer.callback_metrics[self.monitor]), step=pl_module.current_epoch)
            return
        super().on_validation_end(trainer, pl_module)


def _build(fit_args: list[str], exit_on_error: bool = True) -> LitCLI:
    """The run of these options, built but not trained."""
    return LitCLI(fit_args, trainer_defaults=ONE_PROCESS, parser_kwargs={"exit_on_error": exit_on_error})


def _objective(search: Search, model: L.LightningModule) -> tuple[str, str]:
    """The search file's metric and direction, or by default what the model's task is judged by."""
    if search.metric is not None:
        return search.metric, str(search.direction)
    if not isinstance(model, TaskModule):
        raise UserError(
            f"{type(model).__name__} does not say what a search optimises: give `metric:` and `direction:` "
            f"in {search.path} (e.g. metric: val/loss, direction: minimize)"
        )
    return metrics.objective(model.data_tasks[0])


def _folder(trainer: L.Trainer, name: str) -> Path:
    """Where the study and its runs go: `<save_dir>/<name>/`, checked to hold nothing else of a study's."""
    logger = trainer.logger
    if not isinstance(logger, (TensorBoardLogger, CSVLogger)):
        raise UserError("tune keeps each trial in a run folder of its logger: use TensorBoardLogger (the default)")
    if trainer.world_size > 1:
        raise UserError(
            f"tune trains each trial in its own process, not on {trainer.world_size} devices: to search on several, "
            f"run one tune per device with the same options (CUDA_VISIBLE_DEVICES=<k> litmodules tune ...)"
        )
    folder = Path(logger.save_dir) / name
    if not (folder / STUDY_FILE).is_file() and any(folder.glob(TRIAL_RUN.format("*"))):
        raise UserError(f"{folder} holds trial runs but no {STUDY_FILE}: name another study with --study NAME")
    return folder


def _check_space(search: Search, fit_args: list[str]) -> None:
    """Builds the run with each bound and each choice of every key: a value the config refuses stops the search now.

    The keys' values go together (the first bound or choice of each, then the second, ...): as many builds as the
    longest list of choices. One that fails is built again key by key, to name the key and value at fault.
    """
    bounds = {setting.key: setting.bounds() for setting in search.space}
    for corner in range(max(map(len, bounds.values()))):
        values = {key: values[corner % len(values)] for key, values in bounds.items()}
        if _refused(fit_args, values) is None:
            continue
        for key, value in values.items():
            if (reason := _refused(fit_args, {key: value})) is not None:
                raise UserError(f"{search.path}: {key}: {json.dumps(value)} is refused: {reason}")
        together = ", ".join(f"{key}={json.dumps(value)}" for key, value in values.items())
        raise UserError(f"{search.path}: {together} are refused together: {_refused(fit_args, values)}")


def _refused(fit_args: list[str], values: dict[str, Any]) -> str | None:
    """Why the run of these options and values cannot be built, or None."""
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            _build([*fit_args, *(_option(key, value) for key, value in values.items())], exit_on_error=False)
    except (ArgumentError, ValueError, TypeError) as error:
        return plain_usage_error(str(error)).split("\n(")[0]
    return None


def _option(key: str, value: Any) -> str:
    return f"--{key}={json.dumps(value)}"


def _open_study(folder: Path, name: str, search: Search, settings: dict[str, Any], direction: str) -> optuna.Study:
    """The study of this folder, new or continued; the same search and settings, or refused naming what differs."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial's line is printed here (`said`), not Optuna's
    folder.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{folder / STUDY_FILE}",
        engine_kwargs={"connect_args": {"timeout": 60}},  # others may be writing
    )
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=direction,
        sampler=search.make_sampler(0),
        pruner=search.make_pruner(),
        load_if_exists=True,
    )
    if not study.user_attrs:
        study.set_user_attr("search", search.text)
    if "settings" not in study.user_attrs:  # a new study, or 0.1.0's, which kept its options as typed
        study.set_user_attr("settings", settings)
    if study.user_attrs["search"] != search.text:
        raise UserError(
            f"{folder / STUDY_FILE} holds a study of another search file: continue it with the same, or name a new "
            "study with --study NAME"
        )
    if study.user_attrs["settings"] != settings:
        differences = differences_of(study.user_attrs["settings"], settings)
        raise UserError(
            f"{folder / STUDY_FILE} holds a study of other settings ({differences}): continue it with the same, "
            "or name a new study with --study NAME"
        )
    trials = study.get_trials(deepcopy=False)
    study.sampler = search.make_sampler(len(trials))
    _pick_up(study)
    return study


def _pick_up(study: optuna.Study) -> None:
    """Trials stopped before their end (Ctrl-C, a killed process) are queued to be continued from their checkpoints."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _alive(trial.user_attrs):
            study.tell(trial.number, state=TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    continued = {trial.user_attrs.get("continues") for trial in trials}
    for trial in trials:
        stopped = trial.state == TrialState.FAIL and "run" in trial.user_attrs and "failed" not in trial.user_attrs
        if stopped and trial.number not in continued:
            user_attrs = {"continues": trial.number, "run": trial.user_attrs["run"]}
            study.enqueue_trial(trial.params, user_attrs=user_attrs)


def _alive(user_attrs: dict[str, Any]) -> bool:
    """Whether the process that ran a trial still runs (one on another machine is taken to)."""
    if user_attrs.get("host") != socket.gethostname() or "pid" not in user_attrs:
        return True
    try:
        os.kill(user_attrs["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _run_trial(trial: optuna.Trial, search: Search, fit_args: list[str], folder: Path, metric: str) -> float:
    """One trial: a `litmodules fit` run of the search's values, in its folder; its `metric`."""
    values = search.suggest(trial)
    run = trial.user_attrs.get("run") or TRIAL_RUN.format(trial.number)
    continues = trial.user_attrs.get("continues")
    if continues is not None:  # the pruner sees the epochs before the stop, as if the trial had not stopped
        for step, value in trial.study.trials[continues].intermediate_values.items():
            trial.report(value, step)
    for key, value in {"run": run, "host": socket.gethostname(), "pid": os.getpid()}.items():
        trial.set_user_attr(key, value)
    args = [*fit_args, *(_option(key, value) for key, value in values.items()), "--test_after_fit=false"]
    args += [f"--trainer.logger.init_args.name={folder.name}", f"--trainer.logger.init_args.version={run}"]
    chosen = ", ".join(f"{short_key(key)}={shown(value)}" for key, value in values.items())
    again = "" if continues is None else " (continued where it stopped)"
    print(f"trial {number(trial)} ({folder / run}): {chosen}{again}")
    started = time.perf_counter()
    if continues is not None:  # its folder's newest checkpoint
        args.append("--ckpt_path=last")
    try:
        cli = LitCLI(args, trainer_defaults=ONE_PROCESS, callbacks=[Pruning(trial, metric)], resume_hint=RESUME)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.ckpt_path)
    except optuna.TrialPruned:
        raise
    except RunInterrupted as stop:  # Ctrl-C (or SIGTERM) as `fit` ends on it: the trial's checkpoint is kept
        raise KeyboardInterrupt from stop  # Optuna records a stopped trial and ends the search
    except Exception as error:
        trial.set_user_attr("failed", one_line(error))
        raise
    finally:
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
    value = cli.trainer.callback_metrics.get(metric)
    if value is None:  # a run too short to validate
        trial.set_user_attr("failed", f"no {metric} logged")
        raise UserError(f"trial {number(trial)} logged no {metric}: does it validate? (see limit_val_batches)")
    return float(value)
