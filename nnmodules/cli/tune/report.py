"""What a search says: a line per trial as it ends, and at the end the best trials and `best.yaml`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

STUDY_FILE = "study.db"
BEST_FILE = "best.yaml"
SHOWN = 5  # how many of the best trials the table at the end shows
OUTCOMES = ("complete", "pruned", "failed", "stopped", "running")  # as the summary counts them


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
    print(f"trial {trial.number}: {line} ({epochs} epoch{'' if epochs == 1 else 's'}, {seconds:.1f} s)")


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


def results(study: optuna.Study, metric: str, folder: Path, test_after_fit: bool) -> None:
    """Prints the best trials and the count of each outcome; writes best.yaml."""
    trials = study.get_trials(deepcopy=False)
    outcomes = [outcome(trial) for trial in trials]
    counts = ", ".join(f"{outcomes.count(outcome)} {outcome}" for outcome in OUTCOMES if outcome in outcomes)
    print(f"study {folder / STUDY_FILE}: {counts}")
    done = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    if not done:
        return
    done.sort(key=lambda trial: trial.value, reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE)
    rows = [
        {"trial": trial.number, metric: round(trial.value, 4), "seconds": trial.user_attrs.get("seconds")}
        | {short_key(key): value for key, value in trial.params.items()}
        | {"run": trial.user_attrs["run"]}
        for trial in done[:SHOWN]
    ]
    print(pd.DataFrame(rows).to_string(index=False))
    best = write_best(done[0], metric, folder, test_after_fit)
    print(f"the best trial's config: {best} (litmodules fit --config {best} trains it again)")


def write_best(trial: optuna.trial.FrozenTrial, metric: str, folder: Path, test_after_fit: bool) -> Path:
    """`best.yaml`: the trial's own config.yaml, as a new run in the study's folder (logger version unset)."""
    run = folder / trial.user_attrs["run"]
    settings = yaml.safe_load((run / "config.yaml").read_text())
    logger = settings.get("trainer", {}).get("logger")
    if isinstance(logger, dict) and isinstance(logger.get("init_args"), dict):
        logger["init_args"]["version"] = None
    settings["ckpt_path"] = None  # a trial continued after a stop
    settings["test_after_fit"] = test_after_fit  # the config's own: trials never look at the test split
    about = f"# the best trial of {folder / STUDY_FILE}: trial {trial.number} ({run}), {metric} {trial.value:.6g}\n"
    path = folder / BEST_FILE
    partial = path.with_suffix(f".{os.getpid()}.partial")  # written whole, then renamed: other processes may read it
    partial.write_text(f"{about}{yaml.safe_dump(settings, sort_keys=False)}")
    partial.replace(path)
    return path
