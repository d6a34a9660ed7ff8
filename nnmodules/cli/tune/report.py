"""What a search says: a line per trial as it ends, and at the end the best trials and `best.yaml`."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

BEST_FILE = "best.yaml"
SHOWN = 5  # how many of the best trials the table at the end shows
TRIAL_RUN = "trial_{}"  # a trial's run folder, beside the study; a continued trial keeps the folder it began
OUTCOMES = ("complete", "pruned", "failed", "stopped", "running")  # as the summary counts them


class SaidOnce(logging.Filter):
    """Lets each message through once: a study's trials say the same things (a table's column report, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


@contextlib.contextmanager
def said_once(name: str = "lightning.pytorch.utilities.rank_zero") -> Iterator[None]:
    """Within it, Lightning's lines (and the project's, which go through Lightning's) each said once."""
    logger, once = logging.getLogger(name), SaidOnce()
    logger.addFilter(once)
    try:
        yield
    finally:
        logger.removeFilter(once)


def said(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """A trial's line when it ends: its metric or what became of it, its epochs and seconds."""
    epochs = len(trial.intermediate_values)
    ended = outcome(trial)
    line = {
        "complete": f"{trial.value:.4f}" if trial.value is not None else "",
        "pruned": f"pruned after epoch {epochs}",
        "failed": f"failed: {trial.user_attrs.get('failed')}",
    }.get(ended, ended)
    seconds = trial.user_attrs.get("seconds", 0.0)
    print(f"trial {number(trial)}: {line} ({epochs} epoch{'' if epochs == 1 else 's'}, {seconds:.1f} s)")


def number(trial: optuna.trial.FrozenTrial | optuna.Trial) -> int:
    """A trial's number as said, its run folder's: a trial continued after a stop keeps the number it began with."""
    run = trial.user_attrs.get("run")
    return int(run.removeprefix("trial_")) if run and run.removeprefix("trial_").isdigit() else trial.number


def one_line(error: BaseException) -> str:
    """An error's message in one line (its type's name if it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


def outcome(trial: optuna.trial.FrozenTrial) -> str:
    """What became of a trial, in words (a stopped one is continued by a later trial)."""
    if trial.state == TrialState.FAIL:
        return "failed" if "failed" in trial.user_attrs else "stopped"
    return {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(trial.state, "running")


def shown(value: Any) -> str:
    """A searched value as a trial's line shows it."""
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


def short_key(key: str) -> str:
    """A key as the table shows it: `model.init_args.lr` as `model.lr`."""
    return key.replace(".init_args.", ".")


def results(study: optuna.Study, metric: str, folder: Path, test_after_fit: bool, where: str) -> None:
    """Prints the best trials and the count of each outcome; writes best.yaml. `where`: the study, as lines name it."""
    trials = study.get_trials(deepcopy=False)
    outcomes = [outcome(trial) for trial in trials]
    counts = ", ".join(f"{outcomes.count(outcome)} {outcome}" for outcome in OUTCOMES if outcome in outcomes)
    print(f"study {where}: {counts}")
    done = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    if not done:
        return
    done.sort(key=lambda trial: trial.value, reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE)
    rows = [
        {"trial": number(trial), metric: round(trial.value, 4), "seconds": trial.user_attrs.get("seconds")}
        | {short_key(key): value for key, value in trial.params.items()}
        | {"run": trial.user_attrs["run"]}
        for trial in done[:SHOWN]
    ]
    print(pd.DataFrame(rows).to_string(index=False))
    best = write_best(done[0], metric, folder, test_after_fit, where)
    print(f"the best trial's config: {best} (litmodules fit --config {best} trains it again)")


def write_best(trial: optuna.trial.FrozenTrial, metric: str, folder: Path, test_after_fit: bool, where: str) -> Path:
    """`best.yaml`: the trial's own config.yaml, as a new run in the study's folder (logger version unset)."""
    run = folder / trial.user_attrs["run"]
    settings = yaml.safe_load((run / "config.yaml").read_text())
    logger = settings.get("trainer", {}).get("logger")
    if isinstance(logger, dict) and isinstance(logger.get("init_args"), dict):
        logger["init_args"]["version"] = None
    settings["ckpt_path"] = None  # a trial continued after a stop
    settings["test_after_fit"] = test_after_fit  # the config's own: trials never look at the test split
    about = f"# the best trial of {where}: trial {number(trial)} ({run}), {metric} {trial.value:.6g}\n"
    path = folder / BEST_FILE
    partial = path.with_suffix(f".{os.getpid()}.partial")  # written whole, then renamed: other processes may read it
    partial.write_text(f"{about}{yaml.safe_dump(settings, sort_keys=False)}")
    partial.replace(path)
    return path
