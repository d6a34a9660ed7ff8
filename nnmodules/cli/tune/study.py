"""A hyperparameter search by Optuna, each trial an ordinary `fit` run (`litmodules tune`: `command.main`).

    litmodules tune --config mnist_mlp --search mnist_mlp --trials 20

The study is `<save_dir>/<study>/study.db` (SQLite; `<study>` is the search file's name
unless `--study` names it), or any storage `--storage` names (`storage`), beside its trials'
runs `<save_dir>/<study>/trial_<n>/`, each with its config, checkpoints and TensorBoard
events (HParams compares them). Every trial is the config with the search's values
(`search`), reporting its metric after each validation to the pruner (`Pruning`), on one
device or several (DDP: its other ranks train its values). Running the same command again
continues the study up to `--trials` trials, completed, pruned or diverged; a trial stopped
by Ctrl-C or whose process died is continued from its newest checkpoint in its own folder
(`liveness`). Several processes, on one machine or many, may run one study at once
(`--workers`: `workers`). At the end, and on Ctrl-C, the best trials are printed and
`<save_dir>/<study>/best.yaml` written: the best trial's config, which `litmodules fit
--config` trains again to the same figures.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shlex
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import optuna
import torch
from jsonargparse import ArgumentError
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from datamodules.errors import UserError
from nnmodules import metrics
from nnmodules.callbacks import RunInterrupted
from nnmodules.callbacks.record import FinishedRunError
from nnmodules.cli.errors import plain_usage_error
from nnmodules.cli.lightning_cli import LitCLI
from nnmodules.cli.recipes import search_file
from nnmodules.cli.settings import differences_of, settings_of
from nnmodules.cli.tune.liveness import alive, beating, claimed
from nnmodules.cli.tune.report import (
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
from nnmodules.cli.tune.storage import (
    STUDY_FILE,
    has_heartbeat,
    masked,
    open_storage,
    shown_storage,
    storage_of,
    study_shown,
)
from nnmodules.cli.tune.workers import QUIET, Workers, wait_for_word
from nnmodules.tasks import TaskModule

RESUME = "the same `litmodules tune` continues it"  # what a trial stopped by Ctrl-C says
ONE_PROCESS = {"devices": 1}  # a trial's devices unless the config says more (then DDP: `_given_to_other_ranks`)
POLL_S = 0.5  # how often a process whose trials are done looks at those under way elsewhere (a read)
RANK_TRIAL = "LITMODULES_RANK_TRIAL"  # a trial's options and metric, for the other ranks of its DDP (JSON)
QUEUED_WHEN_STOPPED = "queued_when_stopped"  # a trial whose stop is queued by what stops it (see `_pick_up`)


def tune(
    search: str | Path,
    trials: int,
    fit_args: list[str],
    study_name: str | None = None,
    command: list[str] | None = None,
    storage: str | None = None,
    workers: int = 1,
    worker: int | None = None,
    others: Workers | None = None,
) -> optuna.Study:
    """Runs (or continues) a study until it holds `trials` completed, pruned or diverged trials; returns it.

    Args:
        search: the search file (`nnmodules.search`).
        trials: how many trials, completed or pruned, the study holds at the end.
        fit_args: `litmodules fit`'s options, the same for every trial (e.g. ["--config", "mnist_mlp"]).
        study_name: the study's name and folder; None: the search file's name.
        command: the options as typed, to say how to continue the search when it is stopped.
        storage: where the study lives (`nnmodules.cli.tune.storage`); None: LITMODULES_STORAGE, else the
            SQLite file beside the trials.
        workers: processes to run the trials in, on this machine, each bound to one device (`workers`).
        worker: set in a process that `workers` started: its number (it leaves the summary to the one that did).
        others: the other workers, started already (by the command line, as it starts): they wait for this
            process's checks, and are stopped if they fail.
    """
    if (given := os.environ.get(RANK_TRIAL)) is not None and os.environ.get("LOCAL_RANK", "0") != "0":
        _train_a_rank(**json.loads(given))  # this process is another rank of a trial's DDP: that trial alone
        raise SystemExit(0)
    try:
        _refuse_arguments(trials, workers, fit_args)
        storage = storage_of(storage)
        settings = read_search(search_file(search))  # a path, or a search recipe's name
        name = study_name or settings.path.stem
        base = _build(fit_args)
        metric, direction = _objective(settings, base.model)
        folder = _folder(base.trainer, name)
        if worker is None:  # a worker that --workers started: the command that started it checked the space
            _check_space(settings, fit_args)
        else:
            wait_for_word()  # ... and says when the study may be opened
        study = _open_study(folder, name, settings, settings_of(base), direction, storage)
    except BaseException:  # a mistake is said once, by this process: the others go without a word
        if others is not None:
            others.discard()
        raise
    where = study_shown(storage, folder, name)
    again = masked(f"litmodules tune {shlex.join(command)}", storage) if command is not None else "the same tune"
    test_after_fit = base.config.get("test_after_fit", False)
    if workers > 1:  # this process is worker 0
        others = _the_others(others, workers, settings, trials, name, fit_args, storage, base.trainer.num_devices)
        fit_args = [*fit_args, *QUIET]
    beats = not has_heartbeat(storage)
    objective = functools.partial(
        _run_trial, search=settings, fit_args=fit_args, folder=folder, metric=metric, beats=beats
    )
    try:
        with said_once():  # each trial reads the same table: its column report, and every other line, once
            _work(study, objective, trials)
        codes = [] if others is None else others.wait()
    except BaseException as stop:  # Ctrl-C or SIGTERM: the trial under way is continued by the next tune
        if (code := _interruption(stop)) is None:
            raise
        _continue_own(study)
        _stopped(others)
        if worker is None:
            results(study, metric, folder, test_after_fit, where)
            print(f"search stopped: `{again}` continues it", file=sys.stderr)
        raise SystemExit(code) from None
    if worker is None:
        results(study, metric, folder, test_after_fit, where)
    _short(study, trials, codes, again)
    return study


def _short(study: optuna.Study, trials: int, codes: list[int], again: str) -> None:
    """A study left short by a worker's error (said in its lines) ends the command with that worker's status."""
    if _ended(study) < trials and any(codes):
        print(f"search stopped with {_ended(study)} of {trials} trials: `{again}` continues it", file=sys.stderr)
        raise SystemExit(max(codes))


def _the_others(
    started: Workers | None,
    workers: int,
    search: Search,
    trials: int,
    name: str,
    fit_args: list[str],
    storage: str | None,
    devices: int,
) -> Workers:
    """The other workers, told to go: those started already, or started now (again, if a trial takes more devices)."""
    if started is not None and started.per_worker != devices:
        started.discard()
        started = None
    if started is None:
        same = ["--search", str(search.path), "--trials", str(trials), "--study", name, *fit_args]
        started = Workers(workers, same, storage, devices)
    started.go()
    return started


def _interruption(error: BaseException) -> int | None:
    """The exit status of a search stopped by Ctrl-C (130) or SIGTERM (143); None for any other error.

    A KeyboardInterrupt, or an error raised while one was handled: Ctrl-C while Optuna writes a trial's end ends in
    an UnboundLocalError of Optuna's (its trial is then continued as a stopped one).
    """
    seen: BaseException | None = error
    while seen is not None and not isinstance(seen, KeyboardInterrupt):
        seen = seen.__context__
    if seen is None:
        return None
    code = seen.__cause__.code if isinstance(seen.__cause__, RunInterrupted) else None
    return code if isinstance(code, int) and code > 1 else 130


def _refuse_arguments(trials: int, workers: int, fit_args: list[str]) -> None:
    if trials < 1:
        raise UserError(f"--trials {trials}: a study needs at least 1 trial")
    if workers < 1:
        raise UserError(f"--workers {workers}: at least 1")
    if not fit_args:
        raise UserError("tune needs what each trial trains, as `fit` does: --config CONFIG, or --model and --data")
    if fit_args[:1] == ["fit"] or any(arg.split("=")[0] == "--ckpt_path" for arg in fit_args):
        given = "fit" if fit_args[:1] == ["fit"] else "--ckpt_path"
        raise UserError(f"tune takes no {given}: it starts its trials, and continues them when run again")


def _stopped(others: Workers | None) -> None:
    """The other workers stopped as this process was (Ctrl-C), and waited for; a second Ctrl-C passed on too."""
    if others is None:
        return
    others.stop()
    try:
        others.wait()
    except KeyboardInterrupt:  # they stop at once, as a tune does on its second
        others.stop()
        others.wait()


def _work(study: optuna.Study, objective: Callable[[optuna.Trial], float], trials: int) -> None:
    """Runs trials until the study holds `trials`, counting those other processes run; then waits for those.

    While it waits, a trial whose process died (on this machine, or with no heartbeat for `GRACE_S` on another,
    with a database's storage) is continued here, from its checkpoint: a study ends with all its trials.
    """
    # FloatingPointError: a diverged trial is a result of its settings, not a reason to stop the search
    catch = (FloatingPointError,)
    _pick_up(study)
    if _counted(study) < trials:  # until the study holds them (`_after_trial`), or its sampler ends it (a grid's)
        study.optimize(objective, catch=catch, callbacks=[said, functools.partial(_after_trial, trials=trials)])
    waited = False
    while True:
        _pick_up(study)
        if waiting := study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):  # a dead process's trials
            study.optimize(objective, n_trials=len(waiting), catch=catch, callbacks=[said])
            continue
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return
        if not waited:
            numbers = ", ".join(str(number(trial)) for trial in running)
            print(f"waiting for trial {numbers}, under way in another process (to continue it here if it dies)")
            waited = True
        time.sleep(POLL_S)


def _ended(study: optuna.Study) -> int:
    """The trials that ended by their settings: completed, pruned, or failed (diverged)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    return sum(trial.state != TrialState.FAIL or "failed" in trial.user_attrs for trial in trials)


def _counted(study: optuna.Study) -> int:
    """The trials `--trials` counts: those that ended by their settings, and those under way in other processes."""
    return _ended(study) + len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial, trials: int) -> None:
    """Before the next trial: a dead process's trial queued to be continued first; the search ended at `trials`."""
    _pick_up(study)
    if _counted(study) >= trials:
        study.stop()


class Pruning(L.Callback):
    """Reports `monitor` to the trial after each validation and stops a trial its pruner prunes.

    A metric the runs do not log stops the search at the first validation, naming those they log. After the last
    epoch the metric is reported and nothing is pruned: stopping then would save nothing and lose a finished result.
    Under DDP only rank 0 holds the trial (`trial` None elsewhere): it reports and decides, and every rank stops
    with it (one broadcast after each validation). Optuna's own callback (optuna-integration) wants the trial in
    every rank, and a database for it.
    """

    def __init__(self, trial: optuna.Trial | None, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.monitor not in trainer.callback_metrics:
            logged = ", ".join(sorted(trainer.callback_metrics))
            raise UserError(f"the runs log no metric {self.monitor} to optimise: set `metric:` to one of {logged}")
        epoch, pruned = pl_module.current_epoch, False
        if self.trial is not None and trainer.is_global_zero:
            self.trial.report(float(trainer.callback_metrics[self.monitor]), step=epoch)
            last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
            pruned = not last and self.trial.should_prune()
        if trainer.world_size > 1:
            pruned = trainer.strategy.broadcast(pruned)
        if pruned:
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")


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
    """Where the study's runs go: `<save_dir>/<name>/`."""
    logger = trainer.logger
    if not isinstance(logger, (TensorBoardLogger, CSVLogger)):
        raise UserError("tune keeps each trial in a run folder of its logger: use TensorBoardLogger (the default)")
    return Path(logger.save_dir) / name


def _check_new(folder: Path, where: str) -> None:
    """A new study's folder holds no other study's trial runs."""
    if any(folder.glob(TRIAL_RUN.format("*"))):
        raise UserError(f"{folder} holds trial runs of a study that {where} is not: name another with --study NAME")


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


def _open_study(
    folder: Path, name: str, search: Search, settings: dict[str, Any], direction: str, storage: str | None
) -> optuna.Study:
    """The study of this folder, new or continued; the same search and settings, or refused naming what differs."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial's line is printed here (`said`), not Optuna's
    where = study_shown(storage, folder, name)
    if storage is None and not (folder / STUDY_FILE).is_file():
        _check_new(folder, where)  # before the file is made
    opened = open_storage(storage, folder, on_dead_trial=continue_later)
    if storage is not None and name not in optuna.get_all_study_names(opened):
        _check_new(folder, where)
    study = optuna.create_study(
        storage=opened,
        study_name=name,
        direction=direction,
        sampler=search.per_trial_sampler(),
        pruner=search.make_pruner(),
        load_if_exists=True,
    )
    if not study.user_attrs:
        study.set_user_attr("search", search.text)
    if "settings" not in study.user_attrs:  # a new study, or 0.1.0's, which kept its options as typed
        study.set_user_attr("settings", settings)
    if study.user_attrs["search"] != search.text:
        raise UserError(
            f"{shown_storage(storage, folder)} holds a study {name} of another search file: continue it with the same, "
            "or name a new study with --study NAME"
        )
    if study.user_attrs["settings"] != settings:
        differences = differences_of(study.user_attrs["settings"], settings)
        raise UserError(
            f"{shown_storage(storage, folder)} holds a study {name} of other settings ({differences}): continue it "
            "with the same, or name a new study with --study NAME"
        )
    return study


def _pick_up(study: optuna.Study) -> None:
    """Trials whose process is gone (`liveness.alive`) are failed and queued to be continued from their checkpoints.

    Failing a trial succeeds in one process only (the storage refuses to end an ended trial): the one that queues
    it. So does Optuna's heartbeat, for a database's trials on other machines (`storage.open_storage`).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # Optuna's heartbeat, experimental since Optuna 2.9
        optuna.storages.fail_stale_trials(study)  # its callback is `continue_later`; nothing without a heartbeat
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not alive(trial.user_attrs) and claimed(study, trial):
            continue_later(study, trial)
    # a trial stopped by 0.2.0, which left queueing it to the next tune (since then, who stops a trial queues it)
    trials = study.get_trials(deepcopy=False)
    continued = {trial.user_attrs.get("continues") for trial in trials}
    for trial in trials:
        stopped = trial.state == TrialState.FAIL and QUEUED_WHEN_STOPPED not in trial.user_attrs
        if stopped and trial.number not in continued and not alive(trial.user_attrs):
            continue_later(study, trial)


def continue_later(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queues a trial stopped before its end to be continued in its folder, with its values, from its checkpoint.

    Not one that failed by its settings (`failed`), nor one stopped before it had a folder.
    """
    if "run" in trial.user_attrs and "failed" not in trial.user_attrs:
        user_attrs = {"continues": trial.number, "run": trial.user_attrs["run"]}
        study.enqueue_trial(trial.params, user_attrs=user_attrs)


def _continue_own(study: optuna.Study) -> None:
    """The trial this process stopped (Ctrl-C), queued to be continued: by this process alone, so once."""
    trials = study.get_trials(deepcopy=False)
    continued = {trial.user_attrs.get("continues") for trial in trials}
    for trial in trials:
        ours = trial.user_attrs.get("pid") == os.getpid() and trial.user_attrs.get("host") == socket.gethostname()
        if trial.state == TrialState.FAIL and ours and trial.number not in continued:
            continue_later(study, trial)


@contextlib.contextmanager
def _given_to_other_ranks(args: list[str], metric: str) -> Iterator[None]:
    """Within it, a trial's options are in the environment of the processes DDP starts for its other ranks.

    Lightning starts them by running this command again; they train this trial (`_train_a_rank`) rather than ask
    the study for one of their own, so every rank trains the same values. After it, the environment and the
    process group are as before: the next trial's DDP starts its own.
    """
    before = dict(os.environ)
    os.environ[RANK_TRIAL] = json.dumps({"args": args, "metric": metric})
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        os.environ.clear()
        os.environ.update(before)


def _train_a_rank(args: list[str], metric: str) -> None:
    """Another rank of a trial under DDP: the trial's options as rank 0 gave them; rank 0 reports and prunes."""
    cli = LitCLI(args, trainer_defaults=ONE_PROCESS, callbacks=[Pruning(None, metric)], resume_hint=RESUME)
    try:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.ckpt_path)
    except optuna.TrialPruned:
        pass
    except RunInterrupted as stop:  # rank 0 says how to continue
        raise SystemExit(stop.code) from None


def _goes_on(trial: optuna.Trial, folder: Path) -> tuple[str, int | None, str]:
    """Where a trial trains: its run folder, the trial it continues (None: none, or from the start), a note to say.

    A trial continued after a stop goes on from its folder's newest checkpoint, the pruner seeing the epochs before
    the stop as if it had not stopped; one stopped before its first checkpoint trains its values again in a folder
    of its own, the stopped one kept.
    """
    run = trial.user_attrs.get("run") or TRIAL_RUN.format(trial.number)
    continues = trial.user_attrs.get("continues")
    if continues is None:
        return run, None, ""
    if not any((folder / run / "checkpoints").glob("*.ckpt")):
        note = f" (trial {number(trial)} again: it stopped before its first checkpoint)"
        return TRIAL_RUN.format(trial.number), None, note
    for step, value in trial.study.trials[continues].intermediate_values.items():
        trial.report(value, step)
    return run, continues, " (continued where it stopped)"


def _run_trial(
    trial: optuna.Trial, search: Search, fit_args: list[str], folder: Path, metric: str, beats: bool
) -> float:
    """One trial: a `litmodules fit` run of the search's values, in its folder; its `metric`.

    `beats`: the trial says it is alive while it runs (`liveness.beating`), for a storage without Optuna's heartbeat.
    """
    values = search.suggest(trial)
    run, continues, again = _goes_on(trial, folder)
    for key, value in {"run": run, "host": socket.gethostname(), "pid": os.getpid(), QUEUED_WHEN_STOPPED: True}.items():
        trial.set_user_attr(key, value)
    args = [*fit_args, *(_option(key, value) for key, value in values.items()), "--test_after_fit=false"]
    args += [f"--trainer.logger.init_args.name={folder.name}", f"--trainer.logger.init_args.version={run}"]
    chosen = ", ".join(f"{short_key(key)}={shown(value)}" for key, value in values.items())
    print(f"trial {number(trial)} ({folder / run}): {chosen}{again}")
    started = time.perf_counter()
    if continues is not None:  # its folder's newest checkpoint
        args.append("--ckpt_path=last")
    try:
        with _given_to_other_ranks(args, metric), beating(trial) if beats else contextlib.nullcontext():
            cli = LitCLI(args, trainer_defaults=ONE_PROCESS, callbacks=[Pruning(trial, metric)], resume_hint=RESUME)
            cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.ckpt_path)
    except optuna.TrialPruned:
        raise
    except RunInterrupted as stop:  # Ctrl-C (or SIGTERM) as `fit` ends on it: the trial's checkpoint is kept
        raise KeyboardInterrupt from stop  # Optuna records a stopped trial and ends the search
    except FinishedRunError:
        stopped = trial.study.trials[continues].intermediate_values if continues is not None else {}
        if not stopped:
            raise
        # stopped after its last checkpoint, before the study heard: its result is what its last epoch reported
        return stopped[max(stopped)]
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
