"""What each column of a table is, found from its training rows, with a warning wherever the guess matters.

`column_roles` gives every column a role: `numeric`, `categorical`, `date` (parsed into
numeric parts), `target`, or `dropped`, and says why where it is not what pandas read:

- a column of numbers but for a few words ("unknown", "n/a") is numeric, the words missing;
- a column of text, or of whole numbers, with a different value in every row is an id, dropped;
- a column of text holding numbers written with decimal commas is said to be one (pass `decimal=","`);
- a column with one value in every row, or none in any, is dropped;
- a column of dates or times becomes their year, month, day of week, day of year (and hour).

Columns named in `categorical=[...]` or `numeric=[...]` are what they are named.
`describe` prints the roles as a compact table.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import pandas as pd
from pandas.api.types import is_bool_dtype, is_integer_dtype, is_numeric_dtype
from pandas.tseries.api import guess_datetime_format

from datamodules.tabular.files import COMMA_STYLE

MOSTLY = 0.9  # the share of a column's values that must be numbers (or dates) for it to be read as such
MIN_ID_ROWS = 20  # a text column is taken for an id only with at least this many values, all different


@dataclasses.dataclass
class Column:
    """One column's role and what decided it."""

    name: str
    role: str  # "numeric", "categorical", "date", "target" or "dropped"
    missing: float  # share of the rows where it is missing
    distinct: int  # distinct values, missing left out
    why: str = ""  # where the role is not what pandas read, or the column is dropped: the reason
    date_format: str | None = None  # for a date: the format its values follow
    words: list[str] = dataclasses.field(default_factory=list)  # for a numeric column: the text read as missing


def column_roles(
    frame: pd.DataFrame,
    target: str,
    dropped: dict[str, str],
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
) -> list[Column]:
    """Each column's role, from `frame` (the training rows); warns where a guess decides.

    Args:
        frame: the training rows.
        target: the target column.
        dropped: columns left out whatever they hold, and why (e.g. {"id": "drop=[...]"}).
        categorical: columns named to be categorical, whatever they hold.
        numeric: columns named to be numeric, whatever they hold.
    """
    columns = []
    for name in frame.columns:
        values = frame[name]
        present = values.dropna()
        column = Column(name, "categorical", float(values.isna().mean()), int(present.nunique()))
        if name == target:
            column.role = "target"
        elif name in dropped:
            column.role, column.why = "dropped", dropped[name]
        elif name in categorical:
            column.why = "categorical=[...]"
        elif is_integer_dtype(values) and column.distinct == len(values) >= MIN_ID_ROWS and name not in numeric:
            column.role, column.why = "dropped", "a different whole number in every row: an id"
            _warn(
                f"column {name!r} has a different whole number in every row (like {values.iloc[0]}), as an id or a "
                "row counter has: dropped (name it in numeric=[...] to keep it)"
            )
        elif name in numeric or (is_numeric_dtype(values) and not is_bool_dtype(values)):
            column.role, column.why = "numeric", ("numeric=[...]" if name in numeric else "")
        else:
            _guess(column, present)
        constant = column.distinct == 0 or (column.distinct == 1 and not column.missing)  # missing or not: a signal
        if column.role in ("numeric", "categorical", "date") and constant and not column.why:
            column.role, column.why = "dropped", "all missing" if present.empty else "one value"
            _warn(f"column {name!r} has {_values(column)}: dropped, as it tells the rows nothing apart")
        columns.append(column)
    return columns


def _guess(column: Column, present: pd.Series) -> None:
    """A column pandas read as text: numbers with a few words, dates, an id, or categories."""
    text = present.astype(str)
    numbers = pd.to_numeric(text, errors="coerce")
    if len(text) and numbers.notna().mean() >= MOSTLY:
        column.role, column.words = "numeric", sorted(text[numbers.isna()].unique())
        column.why = "text as missing" + (f": {column.words[:3]}" if column.words else "")
        if column.words:
            _warn(
                f"column {column.name!r} holds numbers but for {int(numbers.isna().sum())} value(s) like "
                f"{column.words[0]!r}: read as numbers, those as missing (name it in categorical=[...] to keep "
                "it as categories)"
            )
        return
    for dayfirst in (False, True):  # 03/04/2021: March the 4th first, then the 3rd of April
        date_format = _date_format(text.iloc[0], dayfirst) if len(text) else None
        if date_format and pd.to_datetime(text, format=date_format, errors="coerce").notna().mean() >= MOSTLY:
            column.role = "date"
            column.date_format = date_format
            column.why = f"dates as {date_format}"
            return
    stripped = text.str.strip()
    if stripped.str.match(COMMA_STYLE[0]).mean() >= MOSTLY and stripped.str.contains(COMMA_STYLE[1]).any():
        column.why = "numbers with decimal commas? pass decimal=','"
        _warn(
            f"column {column.name!r} holds numbers written with decimal commas (like {text.iloc[0]!r}), read as "
            "categories: pass decimal=',' (and thousands='.' if they have them) to read them as numbers"
        )
        return
    if column.distinct == len(text) >= MIN_ID_ROWS:
        column.role, column.why = "dropped", "a different value in every row: an id"
        _warn(
            f"column {column.name!r} has a different value in every row (like {text.iloc[0]!r}), as an id has: "
            "dropped (name it in categorical=[...] to keep it)"
        )


def _values(column: Column) -> str:
    return "no values" if column.why == "all missing" else "one value only"


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=4)


def describe(columns: list[Column], rows: int, name: str, task: str, classes: int | None) -> str:
    """The roles as a compact table, headed by the table's size and the task chosen."""
    kind = f"{classes} classes" if classes else "a number"
    lines = [f"{name}: {rows} training rows; task {task} (the target is {kind})"]
    width = max([len("column"), *(len(str(column.name)) for column in columns)])
    lines.append(f"  {'column':<{width}}  {'role':<11}  {'missing':>7}  {'distinct':>8}  note")
    for column in columns:
        lines.append(
            f"  {str(column.name):<{width}}  {column.role:<11}  {column.missing:>7.0%}  {column.distinct:>8}  "
            f"{column.why}".rstrip()
        )
    return "\n".join(lines)


def _date_format(text: str, dayfirst: bool) -> str | None:
    """The format `text` follows as a date, if any; both orders of day and month are tried by the caller."""
    with warnings.catch_warnings():  # pandas warns when the day comes first and dayfirst is off: we try both
        warnings.filterwarnings("ignore", message="Parsing dates in .* format when dayfirst=", category=UserWarning)
        return guess_datetime_format(text, dayfirst=dayfirst)
