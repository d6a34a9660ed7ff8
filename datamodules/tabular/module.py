"""Any table (a CSV file or a pandas DataFrame) split into train/validation/test, preprocessed on train only."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from datamodules.batches import POSITION, TensorDataModule, TensorTable
from datamodules.choices import check_choice
from datamodules.contract import TASKS, DataFacts, Task
from datamodules.errors import UserError
from datamodules.tabular.columns import column_roles, describe
from datamodules.tabular.files import read_table
from datamodules.tabular.preprocess import Scaling, TablePreprocessing, to_numbers
from datamodules.tabular.rows import (
    NOT_A_NUMBER,
    check_columns,
    class_name,
    class_weights,
    detect_task,
    split_rows,
    target_scale_of,
    training_classes,
    with_targets,
)


class TabularDataModule(TensorDataModule):
    """A table with a target column, as train/validation/test splits and one tensor per split.

    Features are every column but the target, `drop` and `split_column`: numbers (missing ones filled with
    the training median, optionally `log1p`'d, then scaled: see `scaling`), first, then the others:
    categories (one-hot, missing as a category of its own, unseen ones as all zeros) and missing-value flags;
    `facts.parts` names the two. The table is read, split and its preprocessing learnt from the training
    split in `setup`, once, and the roles of its columns are printed then; the fitted state travels in
    checkpoints as plain data (`state_dict`), so a checkpoint predicts new rows (`predict_csv`) and is
    exported without the training table, and tests with it wherever it now is.

    Args:
        csv: the table: a CSV (or other delimited text), Parquet or Excel file's path, or a pandas
            DataFrame. May be None when the preprocessing comes from a checkpoint and only
            `predict_csv` is used.
        target: the column to predict. Rows where it is missing are dropped, with a warning.
        sep: the delimiter of CSV files (this, `test_csv`, `predict_csv`); None: found from each file.
        encoding: the encoding of CSV files; None: UTF-8, else cp1252 or latin-1, saying so.
        decimal, thousands: how CSV files write numbers; None: found from each file (decimal commas, 14,23
            or 1.234,56, in a file not delimited by commas; thousands written 1,234.56), saying so.
        na_values: more texts that mean "missing" in CSV files (e.g. ["-", "?"]), besides pandas' own.
        drop: columns that are not features (names, ids).
        id_column: a column that names each row (e.g. "PassengerId"): not a feature, and copied into every
            prediction file beside the row's position, so predictions join back to the data.
        categorical: columns to one-hot encode whatever their type.
        numeric: columns to treat as numbers whatever their type.
        log1p: numeric columns to pass through log(1 + x), for long tails.
        missing_indicators: add a 0/1 column per numeric column with missing training values.
        max_categories: one-hot columns per categorical column at most; rarer values go to "<other>".
        scaling: how numbers are scaled, from the training split: "quantile" (to the normal score of each
            value's quantile: long tails and outliers stay near the rest), "robust" (median and interquartile
            range, then a smooth clip to about ±3, RealMLP's), "standard" (mean and deviation) or "none".
        embed_numbers: 0.1.0's place for a model's choice: ignored, with a warning; the models that embed
            numbers take `embed_numbers` themselves (`MLPClassifier`, `MLPRegressor`).
        standardize_target: feed a regression target as (target - mean) / deviation (models learn far better
            so); the facts give both, and models report the loss, the metrics and the predictions in the
            target's units.
        task: "binary", "multiclass" or "regression"; detected from the target when None.
        class_weights: "balanced" (inverse training-split frequency), one weight per class, or None.
        val_fraction: share of the rows for validation.
        test_fraction: share of the rows for testing (unused with `test_csv` or `split_column`).
        split_column: a column of "train"/"val"/"test" that says where each row goes.
        folds: cross-validation: the rows not tested dealt into this many seeded folds (stratified by class);
            fold `fold` validates, the others train, and `val_fraction` is unused. The test rows stay those of
            the same seed without folds. The preprocessing is fitted on every row not tested, the same for every
            fold, so that the folds' models take the same inputs and average into one model; of the targets,
            it learns only their scale and classes. `litmodules cv` runs every fold.
        fold: the fold that validates, from 0 to `folds` - 1.
        test_csv: a separate table to test on, instead of `test_fraction` of this one.
        predict_csv: a table without (or with) the target, for `predict`.
        batch_size: rows per training batch; None: by the training rows (`auto_batch_size`), 16 up to about
            6,000 rows, 1024 from about 185,000; an int once set up.
        seed: seeds the split (stratified by class for classification) and the shuffle.
        **loading: how batches are served, as for any data module: `num_workers`, `pin_memory`,
            `eval_batch_size`, `drop_last`, `device_resident` (see `TensorDataModule`).
    """

    paths = ("csv", "test_csv", "predict_csv")
    plumbing = (*TensorDataModule.plumbing, "sep", "encoding", "decimal", "thousands", "id_column", "predict_csv")

    def __init__(
        self,
        csv: str | Path | pd.DataFrame | None,
        target: str,
        sep: str | None = None,
        encoding: str | None = None,
        decimal: str | None = None,
        thousands: str | None = None,
        na_values: list[str] | None = None,
        drop: Sequence[str] = (),
        id_column: str | None = None,
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        log1p: Sequence[str] = (),
        missing_indicators: bool = False,
        max_categories: int = 20,
        scaling: Scaling = "quantile",
        embed_numbers: bool | None = None,
        standardize_target: bool = True,
        task: Task | None = None,
        class_weights: Literal["balanced"] | list[float] | None = None,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_column: str | None = None,
        folds: int | None = None,
        fold: int = 0,
        test_csv: str | Path | None = None,
        predict_csv: str | Path | None = None,
        batch_size: int | None = None,
        seed: int = 42,
        **loading: Any,
    ) -> None:
        super().__init__(batch_size, seed, **loading)
        if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
            raise UserError(
                f"val_fraction ({val_fraction}) must be above 0 and, with test_fraction ({test_fraction}), "
                "leave some rows for training: the two must sum below 1"
            )
        check_folds(folds, fold, split_column)
        if max_categories < 1:
            raise UserError(f"max_categories must be at least 1, got {max_categories}")
        if task is not None:
            check_choice("task", task, Task)
        check_choice("scaling", scaling, Scaling)
        if embed_numbers is not None:
            warnings.warn(
                "TabularDataModule(embed_numbers=...) is ignored: the model decides, e.g. "
                "--model.init_args.embed_numbers true (MLPClassifier, MLPRegressor)",
                stacklevel=2,
            )
        saved = self.hparams  # the paths as saved: absolute, so that a run's config works from any folder
        self.csv = csv if isinstance(csv, pd.DataFrame) else saved.get("csv", csv)
        self.test_csv, self.predict_csv = saved.get("test_csv", test_csv), saved.get("predict_csv", predict_csv)
        self.target, self.task_option, self.id_column = target, task, id_column
        self.reading = {"sep": sep, "encoding": encoding, "decimal": decimal, "thousands": thousands}
        self.reading["na_values"] = None if na_values is None else list(na_values)
        self.drop, self.categorical, self.numeric, self.log1p = (
            list(drop),
            list(categorical),
            list(numeric),
            list(log1p),
        )
        self.missing_indicators, self.max_categories = missing_indicators, max_categories
        self.scaling, self.standardize_target = scaling, standardize_target
        self.class_weights_option = class_weights
        self.val_fraction, self.test_fraction, self.split_column = val_fraction, test_fraction, split_column
        self.folds, self.fold = folds, fold
        self.frames: dict[str, pd.DataFrame] = {}  # the raw rows of each split, once read
        self.predict_frame: pd.DataFrame | None = None  # the raw rows of predict_csv, once read
        self.fitted: dict[str, Any] | None = None  # preprocessing, task, classes, target scale, class weights
        self.chose_batch_size = False  # by the training rows (batch_size=None): see setup

    # -- setup: the table read, split and fitted once; the facts; the tables a stage needs --

    def setup(self, stage: str | None = None) -> None:
        """Reads, splits and fits the table (unless a checkpoint's state gave the fit), then the splits of `stage`."""
        if self.fitted is None:
            self.fitted = self._fit(self._fitting_rows())
        self._fitted_state_in_use()
        splits = {"fit": ["train", "val"], "validate": ["val"], "test": ["test"], "predict": [self.predict_split]}
        for split in splits.get(stage or "fit", []):
            self.table(split)
        if stage in ("fit", None) and self.chose_batch_size and self.trainer is not None:
            steps = len(self.train_dataloader())
            if self.trainer.log_every_n_steps > steps:  # the batch size chosen here makes epochs of fewer steps
                self.trainer.log_every_n_steps = max(steps, 1)  # the loss logged every epoch, as Lightning advises

    def _fitted_state_in_use(self) -> None:
        """The facts of the fitted state, and the batch size it implies when none was given."""
        state = self.fitted
        mean, std = state["target_scale"]
        names, weights = state["class_names"], state["class_weights"]
        self.facts = DataFacts(
            task=state["task"],
            input_shape=(len(self.preprocessing.feature_names),),
            class_names=None if names is None else tuple(names),
            class_weights=None if weights is None else tuple(weights),
            target_mean=mean,
            target_std=std,
            numeric_features=len(state["preprocessing"]["numeric"]),
            training_rows=state.get("training_rows"),
        )
        if self.batch_size is None:  # chosen by the training rows (a checkpoint of before the choice: 64), and saved
            rows = state.get("training_rows")
            self.batch_size = self.hparams["batch_size"] = 64 if rows is None else auto_batch_size(rows)
            self.chose_batch_size = True

    @property
    def preprocessing(self) -> TablePreprocessing:
        """What turns raw rows into the model's features, as learnt from the training split."""
        if self.fitted is None:
            self.known_facts()  # says to set it up first
        return TablePreprocessing.from_state_dict(self.fitted["preprocessing"])

    @property
    def feature_names(self) -> list[str]:
        return self.preprocessing.feature_names

    def _fitting_rows(self) -> pd.DataFrame:
        """The rows the preprocessing learns from: the training split's; with folds, every fold's, in table order."""
        frames = self._frames()
        if self.folds is None:
            return frames["train"]
        rows = pd.concat([frames["train"], frames["val"]]).sort_index()
        rows.attrs = dict(frames["train"].attrs)
        return rows

    def _fit(self, train: pd.DataFrame) -> dict[str, Any]:
        """What is learnt from the training rows, as plain data; the columns' roles said once (rank 0)."""
        task = train.attrs["task"]
        dropped = {name: "drop=[...]" for name in self.drop}
        dropped |= {name: why for name, why in ((self.split_column, "split_column"), (self.id_column, "id_column"))}
        dropped.pop(None, None)
        columns = column_roles(train, self.target, dropped, self.categorical, self.numeric)
        numeric = [column.name for column in columns if column.role == "numeric"]
        if bad := [name for name in self.log1p if name not in numeric]:
            raise UserError(f"log1p columns {bad} are not numeric features: name them in numeric=[...] too")
        preprocessing = TablePreprocessing.fit(
            train,
            numeric,
            [column.name for column in columns if column.role == "categorical"],
            self.log1p,
            self.missing_indicators,
            self.max_categories,
            self.scaling,
            dates={column.name: column.date_format for column in columns if column.role == "date"},
            lenient=[column.name for column in columns if column.why.startswith("text as missing")],
        )
        class_names = None if task == "regression" else training_classes(train[self.target], task)
        target_scale = (
            target_scale_of(train[self.target]) if task == "regression" and self.standardize_target else (0.0, 1.0)
        )
        name = train.attrs.get("name", "the table")
        rank_zero_info(describe(columns, len(train), name, task, None if class_names is None else len(class_names)))
        if not preprocessing.feature_names:
            raise UserError(
                f"{name} has no feature left: every column but the target is dropped (see why above); keep one by "
                "naming it in categorical=[...] or numeric=[...]"
            )
        return {
            "task": task,
            "class_names": class_names,
            "class_weights": class_weights(self.class_weights_option, train[self.target], class_names),
            "target_scale": target_scale,  # regression: models see (target - mean) / std
            "preprocessing": preprocessing.state_dict(),
            "training_rows": len(self._frames()["train"]),  # travels with the rest: the same batch size on resume
        }

    def _frames(self) -> dict[str, pd.DataFrame]:
        """Each split's raw rows, read and split once."""
        if self.frames:
            return self.frames
        if self.csv is None:
            raise UserError(
                "TabularDataModule needs csv=... to train, validate or test; predict_csv alone works "
                "with preprocessing loaded from a checkpoint"
            )
        frame = read_table(self.csv, "data file", **self.reading)
        check_columns(frame, self.target, self._columns_named())
        frame = with_targets(frame, self.target)
        task = self.task_option or (self.fitted or {}).get("task") or detect_task(frame[self.target], warn=True)
        test_fraction = 0.0 if self.test_csv is not None else self.test_fraction
        frames = split_rows(
            frame,
            self.target,
            task,
            self.val_fraction,
            test_fraction,
            self.seed,
            self.split_column,
            self.folds,
            self.fold,
        )
        if self.test_csv is not None:
            frames["test"] = read_table(self.test_csv, "test_csv", **self.reading)
            check_columns(frames["test"], self.target, self._columns_named())
        for rows in frames.values():
            rows.attrs["task"] = task
        self.frames = frames
        return frames

    def _columns_named(self) -> dict[str, list[str]]:
        """The columns each option names, to check against a table's."""
        named = {"drop": self.drop, "categorical": self.categorical, "numeric": self.numeric, "log1p": self.log1p}
        return named | {
            "split_column": [self.split_column] if self.split_column else [],
            "id_column": [self.id_column] if self.id_column else [],
        }

    # -- tensors for the batch path, from the fitted preprocessing --

    def table(self, split: str) -> TensorTable:
        if split not in self.tables:
            if split == "predict":
                self.predict_frame = read_table(self.predict_csv, "predict_csv", **self.reading)
                self.tables[split] = TensorTable(torch.from_numpy(self.preprocessing.transform(self.predict_frame)))
            else:
                rows = self._frames()[split]
                features = torch.from_numpy(self.preprocessing.transform(rows))
                self.tables[split] = TensorTable(features, self._targets(rows[self.target]))
        return self.tables[split]

    def _targets(self, target: pd.Series) -> torch.Tensor:
        state = self.fitted
        if state["task"] == "regression":
            mean, std = state["target_scale"]
            return torch.tensor(((to_numbers(target, fix=NOT_A_NUMBER) - mean) / std).to_numpy(dtype=np.float32))
        codes = {name: code for code, name in enumerate(state["class_names"])}
        names = target.map(class_name)
        if unknown := sorted(set(names) - set(codes)):
            raise UserError(f"target values {unknown[:5]} are not among the training classes {state['class_names']}")
        return torch.tensor(names.map(codes).to_numpy(dtype=np.int64))

    def example_inputs(self, rows: int) -> torch.Tensor:
        """Random features (the preprocessing's output), as many as the model takes."""
        return torch.randn(rows, self.num_features, generator=torch.Generator().manual_seed(0))

    def deployment(self) -> dict[str, Any]:
        """What predicting new rows needs besides the model, as plain data (an export writes it as JSON)."""
        state = self.fitted
        names = ("task", "class_names", "preprocessing")
        known = {name: state[name] for name in names}
        return {"target": self.target, "id_column": self.id_column, "reading": self.reading, **known}

    @property
    def predict_split(self) -> str:
        return "predict" if self.predict_csv is not None else "test"

    @property
    def predict_name(self) -> str:
        return Path(self.predict_csv).stem if self.predict_csv is not None else "test"

    def prediction_rows(self) -> pd.DataFrame:
        """`row`, each predicted row's position in its file (data rows counted from 0), and the `id_column`."""
        self.table(self.predict_split)
        frame = self.predict_frame if self.predict_split == "predict" else self.frames["test"]
        rows = pd.DataFrame({"row": frame.index})
        if self.id_column is not None and self.id_column in frame.columns:
            rows[self.id_column] = frame[self.id_column].to_numpy()
        return rows

    # -- checkpoints: the fitted state as plain data --

    def state_dict(self) -> dict[str, Any]:
        return {**(self.fitted or {}), **super().state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """The fitted state of a checkpoint (its facts with it); the tables of another state are made again."""
        super().load_state_dict(state_dict)
        fitted = {key: value for key, value in state_dict.items() if key != POSITION}
        if fitted.get("task") not in TASKS:
            raise UserError(f"{type(self).__name__}: the checkpoint's data state is not a table's (no task in it)")
        if fitted != self.fitted:
            self.fitted, self.tables = fitted, {}
        self._fitted_state_in_use()


def check_folds(folds: int | None, fold: int, split_column: str | None) -> None:
    """Refuses folds that cannot be: fewer than two, a fold outside them, or folds beside a split column."""
    if folds is None:
        if fold != 0:
            raise UserError(f"fold={fold} needs folds: pass folds=K (e.g. 5) as well, or run `litmodules cv`")
        return
    if not isinstance(folds, int) or folds < 2:
        raise UserError(f"folds must be a whole number of at least 2, got {folds!r}")
    if not 0 <= fold < folds:
        raise UserError(f"fold must be from 0 to {folds - 1} (folds={folds}), got {fold}")
    if split_column is not None:
        raise UserError(f"folds and split_column={split_column!r} both say which rows validate: choose one")


def auto_batch_size(rows: int) -> int:
    """A batch size for a table of `rows` training rows: about rows / 256, as a power of two from 16 to 1024.

    So an epoch is about 256 steps (more for tables of under 4,000 rows): small tables get the steps they
    need to learn in a few epochs, large ones the larger batches that keep a step's fixed cost small.
    """
    return 2 ** min(10, max(4, round(math.log2(max(rows, 1) / 256))))
