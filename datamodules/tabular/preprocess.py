"""A table's preprocessing, fitted on the training split only and kept as plain data.

`TablePreprocessing.fit` learns, from the training rows alone: the parts of dates
to use (year, month, day of week, day of year, and the hour where times vary),
medians for missing numbers, optional `log1p`, how to scale each number (see
`Scaling`), and the categories to one-hot encode. `transform` turns any rows (validation, test, a
new CSV at predict time) into one float32 array. Its `state_dict` is made of
strings, numbers and lists, so it travels inside a checkpoint (and loads with
`torch.load(weights_only=True)`) and as JSON beside an exported model.

Only numpy and pandas: an exported table model predicts with this file alone beside it
(`nnmodules.export`), without torch.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd

try:
    from datamodules.errors import UserError
except ImportError:  # a copy beside an exported model, where the package is not installed
    UserError = ValueError

Scaling = Literal["quantile", "robust", "standard", "none"]
"""How numbers are scaled, from the training split: "quantile", to the normal score of their quantile (mean 0,
deviation 1 whatever their distribution: long tails and outliers do not crowd the rest; scikit-learn's
`QuantileTransformer(output_distribution="normal")`, as Gorishniy et al. feed their MLPs); "robust", less the
median, over the interquartile range, clipped smoothly to about ±3 (RealMLP's); "standard", less the mean, over
the deviation; "none", as they are."""
QUANTILES = 1000  # levels of the quantile scaling at most (fewer for fewer training rows: one a row)
MISSING = "<missing>"  # a missing category is a category of its own
OTHER = "<other>"  # rare categories, past `max_categories`


def to_numbers(column: pd.Series, fix: str = "name it in categorical=[...] or clean the data") -> pd.Series:
    """The column as floats; missing stays missing.

    A value that is not a finite number is an error naming it (and `fix`).
    """
    numbers = pd.to_numeric(column, errors="coerce")
    bad = column.notna() & numbers.isna()
    if bad.any():
        value, more = column[bad].iloc[0], bad.sum() - 1
        others = f" (and {more} more {'values that are not numbers' if more > 1 else 'value that is not a number'})"
        others = others if more else ""
        raise UserError(f"column {column.name!r} is treated as numeric but holds {value!r}{others}: {fix}")
    if np.isinf(numbers).any():  # e.g. "inf", or 1e400 in a CSV: no mean, no standard deviation
        value = column[np.isinf(numbers)].iloc[0]
        raise UserError(f"column {column.name!r} holds an infinite number ({value}): clean the data or drop it")
    return numbers.astype("float64")


def to_categories(column: pd.Series) -> pd.Series:
    """The column as strings, missing values as the category MISSING."""
    return column.astype(str).where(column.notna(), MISSING)


@dataclasses.dataclass
class TablePreprocessing:
    """What was learnt from the training split; see the module's docstring."""

    numeric: list[str]
    categorical: list[str]
    log1p: list[str]
    medians: dict[str, float]
    means: dict[str, float]  # what is taken off each number: its mean, or with "robust" scaling, its median
    stds: dict[str, float]  # what it is then divided by: its deviation, or its interquartile range
    indicators: list[str]  # numeric columns that get a was-missing column
    categories: dict[str, list[str]]  # each categorical column's one-hot values, in order
    dates: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # column: its format and parts
    lenient: list[str] = dataclasses.field(default_factory=list)  # numeric columns whose words are missing
    clip: bool = False  # scaled numbers pass through x / sqrt(1 + (x / 3)²): smoothly within about ±3
    quantiles: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)  # values and their levels

    @classmethod
    def fit(
        cls,
        train: pd.DataFrame,
        numeric: list[str],
        categorical: list[str],
        log1p: list[str],
        missing_indicators: bool = False,
        max_categories: int = 20,
        scaling: Scaling = "quantile",
        dates: dict[str, str] | None = None,
        lenient: list[str] | None = None,
    ) -> TablePreprocessing:
        """Learn the preprocessing from the training rows.

        Args:
            train: the training rows.
            numeric: the numeric columns.
            categorical: the categorical columns, one-hot encoded.
            log1p: numeric columns passed through log(1 + x) first.
            missing_indicators: add a 0/1 column per numeric column with missing training values.
            max_categories: one-hot columns per categorical column at most; rarer values go to `OTHER`.
            dates: columns of dates or times, and the format each follows: their parts become numeric features
                (`<column>.year`, ...).
            lenient: numeric columns whose values that are not numbers count as missing (others refuse them).
            scaling: see `Scaling`; "robust" divides by half the range where the interquartile range is 0.
        """
        dates = {name: {"format": fmt, "parts": _date_parts(train[name], fmt)} for name, fmt in (dates or {}).items()}
        train = with_date_parts(train, dates)
        numeric = [*numeric, *(f"{name}.{part}" for name, date in dates.items() for part in date["parts"])]
        lenient = list(lenient or [])
        medians = {}
        means = {}
        stds = {}
        quantiles = {}
        levels = np.linspace(0, 1, max(min(len(train), QUANTILES), 2))
        for name in numeric:
            numbers = _numbers(train[name], name in log1p, name in lenient)
            median = numbers.median()
            medians[name] = float(median) if pd.notna(median) else 0.0  # an all-missing column becomes constant
            filled = numbers.fillna(medians[name])
            center, spread = 0.0, 1.0
            if scaling == "quantile":
                quantiles[name] = _distinct_quantiles(np.quantile(filled.to_numpy(), levels), levels)
            elif scaling == "robust":
                low, high = filled.quantile([0.25, 0.75])
                center, spread = medians[name], float(high - low) or float(filled.max() - filled.min()) / 2
            elif scaling == "standard":
                center, spread = float(filled.mean()), float(filled.std(ddof=0))
            means[name], stds[name] = center, spread or 1.0
        indicators = [name for name in numeric if missing_indicators and train[name].isna().any()]
        categories = {}
        for name in categorical:
            counts = to_categories(train[name]).value_counts()
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))  # ties: alphabetical, repeatable
            if len(ranked) > max_categories:
                warnings.warn(
                    f"column {name!r} has {len(ranked)} distinct values in the training split: keeping the "
                    f"{max_categories} most frequent, the rest go to {OTHER!r} (raise max_categories to keep more)",
                    stacklevel=3,
                )
                categories[name] = sorted(value for value, _ in ranked[:max_categories]) + [OTHER]
            else:
                categories[name] = sorted(value for value, _ in ranked)
        clip = scaling == "robust"
        return cls(
            numeric, categorical, log1p, medians, means, stds, indicators, categories, dates, lenient, clip, quantiles
        )

    @property
    def feature_names(self) -> list[str]:
        names = [*self.numeric, *(f"{name}_missing" for name in self.indicators)]
        return names + [f"{name}={value}" for name in self.categorical for value in self.categories[name]]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The rows as one float32 array, one column per feature name.

        Written in place: no wider temporaries (a one-hot block is set entry by entry, not gathered from an identity
        matrix).
        """
        parts = {f"{name}.{part}" for name, date in self.dates.items() for part in date["parts"]}
        used = [*(name for name in self.numeric if name not in parts), *self.categorical, *self.dates]
        if missing := [name for name in used if name not in frame.columns]:
            raise UserError(f"columns {missing} were used in training but are not in the data")
        frame = with_date_parts(frame, self.dates)
        features = np.zeros((len(frame), len(self.feature_names)), dtype=np.float32)
        column = 0
        for name in self.numeric:
            numbers = _numbers(frame[name], name in self.log1p, name in self.lenient).fillna(self.medians[name])
            if name in self.quantiles:
                features[:, column] = normal_scores(numbers.to_numpy(), *map(np.asarray, self.quantiles[name]))
            else:
                scaled = (numbers - self.means[name]) / self.stds[name]
                features[:, column] = scaled / np.sqrt(1 + (scaled / 3) ** 2) if self.clip else scaled
            column += 1
        for name in self.indicators:
            features[:, column] = frame[name].isna()
            column += 1
        for name in self.categorical:
            known = self.categories[name]
            values = to_categories(frame[name])
            if known[-1] == OTHER:  # anything not kept, seen in training or not, is "other"
                values = values.where(values.isin(known), OTHER)
            codes = pd.Index(known).get_indexer(values)  # -1: never seen, encoded as all zeros
            seen = np.flatnonzero(codes >= 0)
            features[seen, column + codes[seen]] = 1.0
            column += len(known)
        return features

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TablePreprocessing:
        return cls(**state)


def _distinct_quantiles(quantiles: np.ndarray, levels: np.ndarray) -> list[list[float]]:
    """The quantiles and their levels without the inside of a run of equal values.

    A column of few values keeps a few numbers, not a thousand; the interpolation between those left is the same.
    """
    inside = np.zeros(len(quantiles), dtype=bool)
    inside[1:-1] = (quantiles[1:-1] == quantiles[:-2]) & (quantiles[1:-1] == quantiles[2:])
    return [quantiles[~inside].tolist(), levels[~inside].tolist()]


def normal_scores(values: np.ndarray, quantiles: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Each value's level among the training split's quantiles, as a standard normal score.

    The level is interpolated between `quantiles` at `levels` (from 0 to 1); the score stays within ±5.2, beyond the
    training range too. A value that fills several levels (a 0 in a column of many zeros) takes their middle, as
    scikit-learn's `QuantileTransformer` does.
    """
    upward = np.interp(values, quantiles, levels)
    downward = -np.interp(-values, -quantiles[::-1], -levels[::-1])
    return ndtri(np.clip((upward + downward) / 2, 1e-7, 1 - 1e-7))


def ndtri(p: np.ndarray) -> np.ndarray:
    """The standard normal quantile function, to a relative error below 1.2e-9 (Acklam's rational approximation).

    numpy has none of its own, and this module needs no more than numpy and pandas.
    """
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02)
    a += (-3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01)
    b += (-1.328068155288572e01, 1.0)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00)
    c += (4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00, 1.0)
    p = np.asarray(p, dtype=np.float64)
    tail = np.minimum(p, 1 - p)
    central = tail >= 0.02425
    q = p - 0.5
    r = q * q
    middle = q * np.polyval(a, r) / np.polyval(b, r)
    t = np.sqrt(-2 * np.log(np.where(central, 0.5, tail)))
    ends = np.polyval(c, t) / np.polyval(d, t)
    return np.where(central, middle, np.where(p < 0.5, ends, -ends))


def _numbers(column: pd.Series, log1p: bool, lenient: bool) -> pd.Series:
    """A numeric column as floats (words as missing if `lenient`, else refused), optionally through log1p."""
    numbers = to_numbers(pd.to_numeric(column, errors="coerce") if lenient else column)
    if log1p:
        if (numbers <= -1).any():  # log(1 + x) is -inf at -1, and not a number below
            raise UserError(
                f"log1p column {column.name!r} has values of -1 or less (min {numbers.min()}): log(1 + x) needs "
                "x above -1; leave it out of log1p=[...] or shift it"
            )
        numbers = np.log1p(numbers)
    return numbers


DATE_PARTS = ("year", "month", "day_of_week", "day_of_year")  # and "hour", where the times of day vary


def _date_parts(column: pd.Series, date_format: str) -> list[str]:
    stamps = pd.to_datetime(column, format=date_format, errors="coerce")
    return [*DATE_PARTS, *(["hour"] if stamps.dt.hour.nunique() > 1 else [])]


def with_date_parts(frame: pd.DataFrame, dates: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The frame with a numeric column per date part (`<column>.<part>`, missing where the date is)."""
    if not dates:
        return frame
    parts = {}
    for name, date in dates.items():
        stamps = pd.to_datetime(frame[name], format=date["format"], errors="coerce")
        parts |= {f"{name}.{part}": getattr(stamps.dt, part).astype("float64") for part in date["parts"]}
    return frame.assign(**parts)
