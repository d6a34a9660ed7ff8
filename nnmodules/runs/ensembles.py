"""Models of several runs as one: the folds of a cross-validation, their predictions averaged (`ensemble_of`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L

from datamodules.batches import POSITION
from datamodules.errors import UserError
from nnmodules.nets.configs import object_config
from nnmodules.nets.ensemble import Members
from nnmodules.runs.loading import load_run
from nnmodules.tasks import Classifier, Regressor, TaskModule

RUN_ONLY = ("training_rows", POSITION)  # what a data module's state says of its run alone, not of its inputs


def ensemble_of(paths: Sequence[str | Path]) -> tuple[TaskModule, L.LightningDataModule | None]:
    """The models of these checkpoints as one model, and the data module of the first, with its fitted state.

    Each model's network becomes a member of one `nets.Members` under the runs' task (`Classifier` or
    `Regressor`), which answers with the mean of the members' probabilities, or numbers (in the target's units).
    Checkpointed, tested, predicted and exported like any model. The runs must be of one task and take the
    same inputs: the same data, preprocessed alike (the folds of `litmodules cv` share their preprocessing).

    Raises:
        UserError: no checkpoint, checkpoints of different tasks, or of data preprocessed otherwise.
    """
    if not paths:
        raise UserError("an ensemble needs at least one checkpoint")
    runs = [load_run(path) for path in paths]
    models = [model for model, _ in runs]
    tasks = {Classifier if isinstance(model, Classifier) else Regressor for model in models}
    if len(tasks) > 1 or not all(isinstance(model, (Classifier, Regressor)) for model in models):
        kinds = sorted({type(model).__name__ for model in models})
        raise UserError(f"an ensemble averages models of one task (a classifier or a regressor), got {kinds}")
    states = [_inputs_of(data) for _, data in runs]
    if any(state != states[0] for state in states[1:]):
        other = next(str(path) for path, state in zip(paths, states, strict=True) if state != states[0])
        raise UserError(
            f"{other} takes other inputs than {paths[0]} (its data preprocessed otherwise): an ensemble's models "
            "take the same inputs, as the folds of one `litmodules cv` do"
        )
    members = Members([object_config(model.net) for model in models])
    for member, model in zip(members.members, models, strict=True):
        member.load_state_dict(model.net.state_dict())
    task = tasks.pop()
    return task(members, **_task_arguments(models[0])), runs[0][1]


def _task_arguments(model: Classifier | Regressor) -> dict[str, Any]:
    """What the ensemble keeps of its members' task; the rest (classes' weights, the target's scale) is the data's."""
    return {"task": model.task, "num_classes": model.num_classes} if isinstance(model, Classifier) else {}


def _inputs_of(data: L.LightningDataModule | None) -> dict[str, Any] | None:
    """What a data module's state says of the inputs it gives: its fitted preprocessing and facts."""
    return None if data is None else {key: value for key, value in data.state_dict().items() if key not in RUN_ONLY}
