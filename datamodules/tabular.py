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
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from datamodules.batches import POSITION, TensorDataModule, TensorTable
from datamodules.columns import column_roles, describe
from datamodules.files import read_table
from datamodules.preprocess import Scaling, TablePreprocessing, to_numbers
from nnmodules.choices import check_choice

Task = Literal["binary", "multiclass", "regression"]
SPLITS = ("train", "val", "test")
EMBED_FROM_ROWS = 1_000  # tables with fewer training rows feed their numbers to models as they are
MAX_CLASSES = 20  # an integer target with more distinct values than this is taken as a number


def detect_task(target: pd.Series) -> Task:
    """Words or booleans: classes. Whole numbers with at most MAX_CLASSES values: classes. Otherwise: regression."""
    values = target.dropna()
    if is_numeric_dtype(values) and not is_bool_dtype(values):
        if not (values % 1 == 0).all() or values.nunique() > MAX_CLASSES:
            return "regression"
    return "binary" if values.nunique() == 2 else "multiclass"


NOT_A_NUMBER = "a regression target must be numbers: pass task='binary' or 'multiclass' for classes, or clean the data"


class TabularDataModule(TensorDataModule):
    """A table with a target column, as train/validation/test splits and one tensor per split.

    Features are every column but the target, `drop` and `split_column`: numbers
    (missing ones filled with the training median, optionally `log1p`'d, then
    scaled: see `scaling`) and categories (one-hot, missing as a category of its own, unseen
    ones as all zeros). Everything is learnt from the training split only, and
    travels in checkpoints as plain data (`state_dict`), so predicting on a new CSV
    with `TabularDataModule.load_from_checkpoint(path, predict_csv=...)` reuses it.

    Args:
        csv: the table: a CSV (or other delimited text), Parquet or Excel file's path, or a pandas
            DataFrame. May be None when the preprocessing comes from a checkpoint and only
            `predict_csv` is used.
        sep: the delimiter of CSV files (this, `test_csv`, `predict_csv`); None: found from each file.
        encoding: the encoding of CSV files; None: UTF-8, else cp1252 or latin-1, saying so.
        target: the column to predict. Rows where it is missing are dropped, with a warning.
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
        embed_numbers: whether models that can (`MLPClassifier`, `MLPRegressor`, `nets.TableMLP`) embed each
            number (linked by the CLI); None: for tables of 1,000 training rows or more, below which the
            embeddings' own weights overfit.
        standardize_target: the same for a regression target (models learn far better so); models get
            `target_mean` and `target_std` (linked by the CLI) and report the loss, the metrics and
            the predictions in the target's units.
        task: "binary", "multiclass" or "regression"; detected from the target when None.
        class_weights: "balanced" (inverse training-split frequency), one weight per class, or None.
        val_fraction: share of the rows for validation.
        test_fraction: share of the rows for testing (unused with `test_csv` or `split_column`).
        split_column: a column of "train"/"val"/"test" that says where each row goes.
        test_csv: a separate table to test on, instead of `test_fraction` of this one.
        predict_csv: a table without (or with) the target, for `predict`.
        batch_size: rows per training batch; None: by the training rows (`auto_batch_size`), 16 up to about
            6,000 rows, 1024 from about 185,000.
        seed: seeds the split (stratified by class for classification) and the shuffle.
        **loading: how batches are served, as for any data module: `num_workers`, `pin_memory`,
            `eval_batch_size`, `drop_last`, `device_resident` (see `TensorDataModule`).
    """

    plumbing = (*TensorDataModule.plumbing, "sep", "encoding", "id_column", "predict_csv")

    def __init__(
        self,
        csv: str | Path | pd.DataFrame | None,
        target: str,
        sep: str | None = None,
        encoding: str | None = None,
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
        test_csv: str | Path | None = None,
        predict_csv: str | Path | None = None,
        batch_size: int | None = None,
        seed: int = 42,
        **loading: Any,
    ) -> None:
        # saved hyperparameters stay plain data, so checkpoints load with weights_only=True
        csv, test_csv, predict_csv = (str(p) if isinstance(p, Path) else p for p in (csv, test_csv, predict_csv))
        super().__init__(batch_size, seed, **loading)
        # A DataFrame is data, not a hyperparameter (it would need pickle in the checkpoint): saved as None, so
        # that load_from_checkpoint(path, predict_csv=...) needs no csv. The task and class weights in effect
        # travel in state_dict, and the model logs them under the same names.
        self.save_hyperparameters(ignore=["task", "class_weights", *(["csv"] if isinstance(csv, pd.DataFrame) else [])])
        self.hparams.setdefault("csv", None)
        if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
            raise ValueError(
                f"val_fraction ({val_fraction}) must be above 0 and, with test_fraction ({test_fraction}), "
                "leave some rows for training: the two must sum below 1"
            )
        if max_categories < 1:
            raise ValueError(f"max_categories must be at least 1, got {max_categories}")
        if task not in (None, "binary", "multiclass", "regression"):
            raise ValueError(f"task must be 'binary', 'multiclass', 'regression' or None (detect), got {task!r}")
        check_choice("scaling", scaling, Scaling)
        self.csv = csv
        self.target = target
        self.task_override = task
        self.id_column = id_column
        self.sep, self.encoding = sep, encoding
        self.drop = list(drop)
        self.categorical = list(categorical)
        self.numeric = list(numeric)
        self.log1p = list(log1p)
        self.missing_indicators, self.max_categories = missing_indicators, max_categories
        self.scaling = scaling
        self.standardize_target = standardize_target
        self.embed_numbers = embed_numbers
        self.class_weights_option = class_weights
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_column = split_column
        self.test_csv, self.predict_csv = test_csv, predict_csv
        self.frames: dict[str, pd.DataFrame] = {}  # the raw rows of each split
        self.predict_frame: pd.DataFrame | None = None  # the raw rows of predict_csv, once read
        self.fitted: dict[str, Any] | None = None  # preprocessing, target encoding, class weights

    # -- what a model needs to be built (the CLI links these to the model's arguments) --

    @property
    def task(self) -> Task:
        return self._state()["task"]

    @property
    def batch_size(self) -> int:
        """Rows per training batch: as given, or chosen by the training rows (`auto_batch_size`)."""
        rows = self._state().get("training_rows")  # (checkpoints from before the choice: 64)
        return self._batch_size or (64 if rows is None else auto_batch_size(rows))

    @batch_size.setter
    def batch_size(self, value: int | None) -> None:
        self._batch_size = value

    @property
    def numeric_features(self) -> int:
        """How many of the first features are numbers (date parts included); one-hot columns and flags follow."""
        return len(self._state()["preprocessing"]["numeric"])

    @property
    def embeds_numbers(self) -> bool:
        """`embed_numbers`, or when None, whether the training split has 1,000 rows or more."""
        if self.embed_numbers is not None:
            return self.embed_numbers
        return self._state().get("training_rows", 0) >= EMBED_FROM_ROWS

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def feature_names(self) -> list[str]:
        return self.preprocessing.feature_names

    @property
    def class_names(self) -> list[str] | None:
        return self._state()["class_names"]

    @property
    def preprocessing(self) -> TablePreprocessing:
        """What turns raw rows into the model's features, as learnt from the training split."""
        return TablePreprocessing.from_state_dict(self._state()["preprocessing"])

    def example_inputs(self, rows: int) -> torch.Tensor:
        """Random features (the preprocessing's output), as many as the model takes."""
        return torch.randn(rows, self.num_features, generator=torch.Generator().manual_seed(0))

    def deployment(self) -> dict[str, Any]:
        """What predicting new rows needs besides the model, as plain data (an export writes it as JSON)."""
        state = self._state()
        names = ("task", "class_names", "preprocessing")
        return {"target": self.target, "id_column": self.id_column, **{name: state[name] for name in names}}

    @property
    def num_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    @property
    def class_weights(self) -> list[float] | None:
        return self._state()["class_weights"]

    @property
    def target_mean(self) -> float:
        return self._state()["target_scale"][0]

    @property
    def target_std(self) -> float:
        return self._state()["target_scale"][1]

    # -- reading, splitting and fitting, once, on first use --

    def _state(self) -> dict[str, Any]:
        if self.fitted is None:
            self.fitted = self._fit()
        return self.fitted

    def _fit(self) -> dict[str, Any]:
        frames = self._frames()
        train, task = frames["train"], frames["train"].attrs["task"]
        dropped = {name: "drop=[...]" for name in self.drop}
        dropped |= {
            name: why for name, why in ((self.split_column, "split_column"), (self.id_column, "id_column")) if name
        }
        columns = column_roles(train, self.target, dropped, self.categorical, self.numeric)
        numeric = [column.name for column in columns if column.role == "numeric"]
        if bad := [name for name in self.log1p if name not in numeric]:
            raise ValueError(f"log1p columns {bad} are not numeric features: name them in numeric=[...] too")
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
        class_names, target_scale = None, (0.0, 1.0)
        if task == "regression" and self.standardize_target:
            values = to_numbers(train[self.target], fix=NOT_A_NUMBER)
            target_scale = (float(values.mean()), float(values.std(ddof=0)) or 1.0)
        if task != "regression":
            class_names = [_name(value) for value in sorted(train[self.target].unique())]
            if len(class_names) < 2:
                raise ValueError(
                    f"target column {self.target!r} has a single class ({class_names[0]!r}) in the training rows: "
                    "classification needs two or more"
                )
        classes = None if class_names is None else len(class_names)
        name = train.attrs.get("name", "the table")
        rank_zero_info(describe(columns, len(train), name, task, classes))
        if not preprocessing.feature_names:
            raise ValueError(
                f"{name} has no feature left: every column but the target is dropped (see why above); keep one by "
                "naming it in categorical=[...] or numeric=[...]"
            )
        return {
            "task": task,
            "class_names": class_names,
            "class_weights": self._class_weights(train[self.target], class_names),
            "target_scale": target_scale,  # regression: models see (target - mean) / std
            "preprocessing": preprocessing.state_dict(),
            "training_rows": len(train),  # travels with the rest: the same batch size (and embeddings) on resume
        }

    def _frames(self) -> dict[str, pd.DataFrame]:
        """Each split's raw rows, read and split once."""
        if self.frames:
            return self.frames
        if self.csv is None:
            raise ValueError(
                "TabularDataModule needs csv=... to train, validate or test; predict_csv alone works "
                "with preprocessing loaded from a checkpoint"
            )
        frame = read_table(self.csv, "data file", self.sep, self.encoding)
        self._check_columns(frame)
        missing = frame[self.target].isna()
        if missing.all():
            raise ValueError(f"target column {self.target!r} in {frame.attrs['name']} has no values")
        if missing.any():
            warnings.warn(
                f"dropped {missing.sum()} rows of {frame.attrs['name']} whose target is missing", stacklevel=2
            )
            frame = frame[~missing]
        task = self.task_override or (self.fitted or {}).get("task") or detect_task(frame[self.target])
        target = frame[self.target]
        if self.task_override is None and self.fitted is None and task == "multiclass" and _is_number(target):
            warnings.warn(
                f"target {self.target!r} holds {target.nunique()} whole numbers ({_name(target.min())} to "
                f"{_name(target.max())}): taken as classes; pass task='regression' to predict it as a number",
                stacklevel=2,
            )
        frames = self._split(frame, task)
        if self.test_csv is not None:
            frames["test"] = read_table(self.test_csv, "test_csv", self.sep, self.encoding)
            self._check_columns(frames["test"])
        for rows in frames.values():
            rows.attrs["task"] = task
        self.frames = frames
        return frames

    def _check_columns(self, frame: pd.DataFrame) -> None:
        columns, name = list(frame.columns), frame.attrs["name"]
        if self.target not in columns:
            raise ValueError(f"target column {self.target!r} not in {name}; columns are: {columns}")
        options = {"drop": self.drop, "categorical": self.categorical, "numeric": self.numeric, "log1p": self.log1p}
        options["split_column"] = [self.split_column] if self.split_column else []
        options["id_column"] = [self.id_column] if self.id_column else []
        for option, names in options.items():
            if missing := [c for c in names if c not in columns]:
                raise ValueError(f"columns {missing} (in {option}) not in {name}; columns are: {columns}")
        if both := sorted(set(self.categorical) & set(self.numeric)):
            raise ValueError(f"columns {both} are in both categorical=[...] and numeric=[...]: choose one")

    def _split(self, frame: pd.DataFrame, task: Task) -> dict[str, pd.DataFrame]:
        if self.split_column:
            where = frame[self.split_column]
            if not where.isin(SPLITS).all():
                bad = sorted(map(str, where[~where.isin(SPLITS)].unique()))[:5]
                raise ValueError(
                    f"split column {self.split_column!r} must say 'train', 'val' or 'test' in every row; "
                    f"it also holds {bad}"
                )
            frames = {split: frame[where == split] for split in SPLITS}
        else:
            test_fraction = 0.0 if self.test_csv is not None else self.test_fraction
            groups = [np.arange(len(frame))]
            if task != "regression":  # stratified: every class in the same shares
                groups = list(frame.groupby(self.target, sort=True).indices.values())
            rng = np.random.default_rng(self.seed)
            parts: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
            for rows in groups:
                rows = rng.permutation(rows)
                n_test, n_val = round(len(rows) * test_fraction), round(len(rows) * self.val_fraction)
                parts["test"].append(rows[:n_test])
                parts["val"].append(rows[n_test : n_test + n_val])
                parts["train"].append(rows[n_test + n_val :])
            frames = {split: frame.iloc[np.sort(np.concatenate(rows))] for split, rows in parts.items()}
        wanted = ["train", "val"] + (
            ["test"] if self.test_csv is None and (self.split_column or self.test_fraction) else []
        )
        if empty := [split for split in wanted if frames[split].empty]:
            sizes = {split: len(rows) for split, rows in frames.items()}
            raise ValueError(
                f"{len(frame)} rows are too few for the splits asked (val_fraction={self.val_fraction}, "
                f"test_fraction={self.test_fraction}): {empty} would be empty {sizes}"
            )
        return {split: rows.copy() for split, rows in frames.items()}

    def _class_weights(self, targets: pd.Series, class_names: list[str] | None) -> list[float] | None:
        option = self.class_weights_option
        if option is None:
            return None
        if class_names is None:
            raise ValueError("class_weights is for classification; this target is a number (regression)")
        if option == "balanced":  # as scikit-learn: rows / (classes * rows of the class)
            counts = targets.map(_name).value_counts()
            return [len(targets) / (len(class_names) * int(counts[name])) for name in class_names]
        if isinstance(option, str) or len(option) != len(class_names):
            raise ValueError(f"class_weights must be 'balanced' or one number per class {class_names}, got {option!r}")
        return [float(weight) for weight in option]

    # -- tensors for the batch path, from the current preprocessing --

    def table(self, split: str) -> TensorTable:
        if split not in self.tables:
            state = self._state()
            preprocessing = TablePreprocessing.from_state_dict(state["preprocessing"])
            if split == "predict":
                self.predict_frame = read_table(self.predict_csv, "predict_csv", self.sep, self.encoding)
                self.tables[split] = TensorTable(torch.from_numpy(preprocessing.transform(self.predict_frame)))
            else:
                rows = self._frames()[split]
                features = torch.from_numpy(preprocessing.transform(rows))
                self.tables[split] = TensorTable(features, self._targets(rows[self.target], state))
        return self.tables[split]

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

    def _targets(self, target: pd.Series, state: dict[str, Any]) -> torch.Tensor:
        if state["task"] == "regression":
            mean, std = state["target_scale"]
            return torch.tensor(((to_numbers(target, fix=NOT_A_NUMBER) - mean) / std).to_numpy(dtype=np.float32))
        codes = {name: code for code, name in enumerate(state["class_names"])}
        names = target.map(_name)
        if unknown := sorted(set(names) - set(codes)):
            raise ValueError(f"target values {unknown[:5]} are not among the training classes {state['class_names']}")
        return torch.tensor(names.map(codes).to_numpy(dtype=np.int64))

    def setup(self, stage: str | None = None) -> None:
        """Read, split and fit now, so that bad input fails before training starts."""
        if stage != "predict":
            self._state()
        splits = {"fit": ["train", "val"], "validate": ["val"], "test": ["test"]}.get(stage or "", [])
        for split in splits:
            self.table(split)

    @property
    def predict_split(self) -> str:
        return "predict" if self.predict_csv is not None else "test"

    def state_dict(self) -> dict[str, Any]:
        return {**(self.fitted or {}), **super().state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.fitted = {key: value for key, value in state_dict.items() if key != POSITION}
        self.tables = {}  # rebuilt from the loaded preprocessing when next asked for


def auto_batch_size(rows: int) -> int:
    """A batch size for a table of `rows` training rows: about rows / 256, as a power of two from 16 to 1024.

    So an epoch is about 256 steps (more for tables of under 4,000 rows): small tables get the steps they
    need to learn in a few epochs, large ones the larger batches that keep a step's fixed cost small.
    """
    return 2 ** min(10, max(4, round(math.log2(max(rows, 1) / 256))))


def _is_number(column: pd.Series) -> bool:
    return is_numeric_dtype(column) and not is_bool_dtype(column)


def _name(value: Any) -> str:
    """A class label as text: 1.0 and 1 are both "1"."""
    if (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and float(value).is_integer()
    ):
        return str(int(value))
    return str(value)
