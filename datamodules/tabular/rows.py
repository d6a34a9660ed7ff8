"""A table's rows before they are features: the task a target holds, its classes, the splits, the columns named.

Plain functions of a DataFrame, used by `TabularDataModule` when it reads its table.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from datamodules.contract import Task
from datamodules.errors import UserError
from datamodules.tabular.preprocess import to_numbers

SPLITS = ("train", "val", "test")
MAX_CLASSES = 20  # an integer target with more distinct values than this is taken as a number
LISTS = ("drop", "categorical", "numeric", "log1p")  # the options that name several columns
NOT_A_NUMBER = "a regression target must be numbers: pass task='binary' or 'multiclass' for classes, or clean the data"


def detect_task(target: pd.Series, warn: bool = False) -> Task:
    """Words or booleans: classes. Whole numbers with at most MAX_CLASSES values: classes. Otherwise: regression.

    With `warn`, numbers taken as several classes say so, and how to predict them as a number instead.
    """
    values = target.dropna()
    if is_number(values):
        if not (values % 1 == 0).all() or values.nunique() > MAX_CLASSES:
            return "regression"
    task: Task = "binary" if values.nunique() == 2 else "multiclass"
    if warn and task == "multiclass" and is_number(values):
        warnings.warn(
            f"target {target.name!r} holds {values.nunique()} whole numbers ({class_name(values.min())} to "
            f"{class_name(values.max())}): taken as classes; pass task='regression' to predict it as a number",
            stacklevel=3,
        )
    return task


def with_targets(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """The rows that have a target (those without are dropped, with a warning); none at all is refused."""
    missing = frame[target].isna()
    if missing.all():
        raise UserError(f"target column {target!r} in {frame.attrs['name']} has no values")
    if missing.any():
        warnings.warn(f"dropped {missing.sum()} rows of {frame.attrs['name']} whose target is missing", stacklevel=3)
        frame = frame[~missing]
    return frame


def training_classes(target: pd.Series, task: Task) -> list[str]:
    """The training rows' classes in label order; fewer than two, or more than two for a binary task, refused."""
    names = [class_name(value) for value in sorted(target.unique())]
    if len(names) < 2:
        raise UserError(
            f"target column {target.name!r} has a single class ({names[0]!r}) in the training rows: "
            "classification needs two or more"
        )
    if task == "binary" and len(names) > 2:
        raise UserError(
            f"task='binary' but target column {target.name!r} holds {len(names)} classes in the training rows "
            f"({', '.join(names[:5])}): leave task out, or pass task='multiclass'"
        )
    return names


def target_scale_of(target: pd.Series) -> tuple[float, float]:
    """The training rows' numeric target's mean and standard deviation (1 where it is constant)."""
    values = to_numbers(target, fix=NOT_A_NUMBER)
    return float(values.mean()), float(values.std(ddof=0)) or 1.0


def is_number(column: pd.Series) -> bool:
    """Whether a column holds numbers (booleans are not)."""
    return is_numeric_dtype(column) and not is_bool_dtype(column)


def class_name(value: Any) -> str:
    """A class label as text: 1.0 and 1 are both "1"."""
    whole = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    return str(int(value)) if whole and float(value).is_integer() else str(value)


def check_columns(frame: pd.DataFrame, target: str, named: dict[str, Sequence[str]]) -> None:
    """Refuses a table without the target column, or without a column an option names (`named`: option -> columns)."""
    columns, name = list(frame.columns), frame.attrs["name"]
    if target not in columns:
        raise UserError(f"target column {target!r} not in {name}; columns are: {columns}")
    for option, names in named.items():
        if missing := [column for column in names if column not in columns]:
            kept = [column for column in names if column in columns]
            fix = f"--data.{option} '{json.dumps(kept)}'" if option in LISTS else f"another --data.{option}, or none"
            raise UserError(
                f"columns {missing} (in {option}) not in {name}; columns are: {columns}. Leave them out ({fix}): "
                f"a recipe's {option} is for its example table"
            )
    if both := sorted(set(named.get("categorical", ())) & set(named.get("numeric", ()))):
        raise UserError(f"columns {both} are in both categorical=[...] and numeric=[...]: choose one")


def split_rows(
    frame: pd.DataFrame,
    target: str,
    task: Task,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    split_column: str | None = None,
    folds: int | None = None,
    fold: int = 0,
) -> dict[str, pd.DataFrame]:
    """The rows of each split: by `split_column`, or seeded shares (stratified by class for classification).

    With `folds`, the rows not tested are dealt into that many folds (class by class, so each fold holds every
    class in about its share), and fold `fold` validates: `val_fraction` is unused. The test rows are those of
    the same seed without folds, whichever the fold.
    """
    if split_column:
        where = frame[split_column]
        if not where.isin(SPLITS).all():
            bad = sorted(map(str, where[~where.isin(SPLITS)].unique()))[:5]
            raise UserError(
                f"split column {split_column!r} must say 'train', 'val' or 'test' in every row; it also holds {bad}"
            )
        frames = {split: frame[where == split] for split in SPLITS}
    else:
        groups = [np.arange(len(frame))]
        if task != "regression":  # stratified: every class in the same shares
            groups = list(frame.groupby(target, sort=True).indices.values())
        rng = np.random.default_rng(seed)
        parts: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
        dealt = 0  # rows dealt into folds so far: each class's first row goes to the next fold, not fold 0
        for rows in groups:
            rows = rng.permutation(rows)
            n_test, n_val = round(len(rows) * test_fraction), round(len(rows) * val_fraction)
            parts["test"].append(rows[:n_test])
            if folds:
                rest = rows[n_test:]
                validates = (np.arange(len(rest)) + dealt) % folds == fold
                parts["val"].append(rest[validates])
                parts["train"].append(rest[~validates])
                dealt += len(rest)
                continue
            parts["val"].append(rows[n_test : n_test + n_val])
            parts["train"].append(rows[n_test + n_val :])
        frames = {split: frame.iloc[np.sort(np.concatenate(rows))] for split, rows in parts.items()}
    wanted = ["train", "val"] + (["test"] if split_column or test_fraction else [])
    if empty := [split for split in wanted if frames[split].empty]:
        sizes = {split: len(rows) for split, rows in frames.items()}
        raise UserError(
            f"{len(frame)} rows are too few for the splits asked ("
            f"{f'folds={folds}' if folds else f'val_fraction={val_fraction}'}, test_fraction={test_fraction}): "
            f"{empty} would be empty {sizes}"
        )
    return {split: rows.copy() for split, rows in frames.items()}


def class_weights(option: Any, targets: pd.Series, class_names: list[str] | None) -> list[float] | None:
    """A loss weight per class: "balanced" (inverse training frequency, as scikit-learn's), as given, or None."""
    if option is None:
        return None
    if class_names is None:
        raise UserError("class_weights is for classification; this target is a number (regression)")
    if option == "balanced":  # rows / (classes * rows of the class)
        counts = targets.map(class_name).value_counts()
        return [len(targets) / (len(class_names) * int(counts[name])) for name in class_names]
    if isinstance(option, str) or len(option) != len(class_names):
        raise UserError(f"class_weights must be 'balanced' or one number per class {class_names}, got {option!r}")
    return [float(weight) for weight in option]
