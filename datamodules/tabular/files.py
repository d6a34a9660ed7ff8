"""A user's table as it comes: CSV (delimiter, encoding and number format found out), Parquet, Excel, or a DataFrame.

`read_table` returns the rows as a DataFrame, or raises one `UserError` (a `MissingFileError` for a file
that is not there) that names the file, the line where it can, and the fix. It needs pandas alone: an
exported table model carries this file, to read new rows as training read them.
"""

from __future__ import annotations

import codecs
import csv
import re
import sys
from pathlib import Path

import pandas as pd

try:
    from lightning.pytorch.utilities.rank_zero import rank_zero_info

    from datamodules.errors import MissingFileError, UserError
except ImportError:  # a copy beside an exported model, where neither package is installed
    UserError = ValueError
    MissingFileError = FileNotFoundError

    def rank_zero_info(message: str) -> None:
        """Says `message` on stderr, as the package's logging would."""
        print(message, file=sys.stderr)


DELIMITERS = ",;\t|"  # the delimiters looked for, the first one when nothing tells them apart
FALLBACK_ENCODINGS = ("cp1252", "latin-1")  # tried in turn when a file is not UTF-8; latin-1 decodes any byte
SAMPLE_BYTES = 1 << 16  # read to find the delimiter
NUMBER_ROWS = 2000  # rows looked at to find how a CSV writes its numbers
# how numbers are written, a column at a time: with a decimal comma (1.234,56 or 14,23), or with commas between
# thousands (1,234.56); the first of each pair is any number of that style, the second one only that style has
# (groups that capture nothing: pandas warns of a pattern with match groups in `str.contains`)
COMMA_STYLE = re.compile(r"^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?$"), re.compile(r",\d+$")
GROUPED_STYLE = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$"), re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+")
DOTTED_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?$")  # 1.234 or 1.234,56
MOSTLY = 0.9  # the share of a column's values that must follow a number format for it to count
PARQUET = (".parquet", ".pq")
EXCEL = (".xlsx", ".xlsm", ".xls")


def read_table(
    source: str | Path | pd.DataFrame,
    what: str,
    sep: str | None = None,
    encoding: str | None = None,
    decimal: str | None = None,
    thousands: str | None = None,
    na_values: list[str] | None = None,
) -> pd.DataFrame:
    """A table's rows, with their name for messages in `attrs["name"]`.

    Args:
        source: a DataFrame, or the path of a CSV (or TSV, or any delimited text), Parquet or Excel file.
        what: what the file is, for messages (e.g. "data file", "predict_csv").
        sep: the CSV delimiter; None: found from the file (one of `DELIMITERS`).
        encoding: the CSV encoding; None: UTF-8 (with or without a byte order mark), else cp1252, else latin-1,
            saying which.
        decimal: a CSV's decimal mark; None: found from the file ("," where its numbers are written 14,23 and
            it is not comma-delimited, saying so), else ".".
        thousands: a CSV's thousands separator; None: found with `decimal` (1.234,56 or 1,234.56), else none.
        na_values: more texts that mean a missing value, besides pandas' ("", "NA", "n/a", "NaN", ...).
    """
    if isinstance(source, pd.DataFrame):
        frame, name = source.reset_index(drop=True), "the DataFrame"  # rows by position, as in a file
    else:
        path, name = Path(source), f"{what} {str(source)!r}"
        if not path.is_file():
            raise MissingFileError(f"{name} not found: pass the path of a CSV, Parquet or Excel file")
        suffix = path.suffix.lower()
        if suffix in PARQUET:
            frame = _parquet(path, name)
        elif suffix in EXCEL:
            frame = _excel(path, name)
        else:
            frame = _csv(path, name, sep, encoding, decimal, thousands, na_values)
    if frame.columns.duplicated().any():
        repeated = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise UserError(f"{name} repeats column names {repeated}: give every column its own name")
    if frame.empty:
        raise UserError(f"{name} has no data rows")
    frame.attrs["name"] = name
    return frame


def _parquet(path: Path, name: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except ImportError as error:
        raise UserError(f"{name} is a Parquet file: reading it needs pyarrow (pip install pyarrow)") from error
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError... for a damaged file
        raise UserError(f"{name} is not a readable Parquet file ({_first_line(error)})") from error


def _excel(path: Path, name: str) -> pd.DataFrame:
    try:
        return pd.read_excel(path)
    except ImportError as error:
        raise UserError(
            f"{name} is an Excel file: reading it needs openpyxl (pip install 'litmodules[excel]'), "
            f"or save the sheet as CSV"
        ) from error
    except Exception as error:
        raise UserError(f"{name} is not a readable Excel file ({_first_line(error)})") from error


def _csv(
    path: Path,
    name: str,
    sep: str | None,
    encoding: str | None,
    decimal: str | None,
    thousands: str | None,
    na_values: list[str] | None,
) -> pd.DataFrame:
    encoding = encoding or _encoding(path, name)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise UserError(
            f"encoding {encoding!r} (for {name}) is not one Python knows, e.g. 'utf-8' or 'cp1252'"
        ) from None
    try:
        sep = sep or _delimiter(path, encoding)
        if decimal is None:
            decimal, thousands = _number_format(path, name, sep, encoding, thousands)
        numbers = {"decimal": decimal, "thousands": thousands, "na_values": na_values}
        frame = pd.read_csv(path, sep=sep, encoding=encoding, **numbers)
        header = pd.read_csv(path, sep=sep, encoding=encoding, header=None, nrows=1, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"{name} is empty: it needs a header row and data rows") from None
    except UnicodeDecodeError as error:
        line = _undecodable_line(path, encoding)
        raise UserError(
            f"{name}, line {line}: bytes that are not {encoding} ({error.reason}): pass the file's encoding, "
            f"e.g. encoding='cp1252'"
        ) from None
    except pd.errors.ParserError as error:
        raise UserError(f"{name}: {_parser_problem(error, sep)}") from None
    header = header.iloc[0]
    if len(header) == len(frame.columns):  # pandas renames a repeated name (y, y: y, y.1): not here
        repeated = (header.duplicated() & (header != "")).to_numpy()
        frame.columns = frame.columns.where(~repeated, header)
    return frame


def _encoding(path: Path, name: str) -> str:
    """UTF-8 (a byte order mark is skipped) if the whole file decodes so, else the first fallback that does."""
    for encoding in ("utf-8-sig", *FALLBACK_ENCODINGS):
        if _decodes(path, encoding):
            if encoding != "utf-8-sig":
                line = _undecodable_line(path, "utf-8-sig")
                rank_zero_info(f"{name} is not UTF-8 (line {line}): read as {encoding}; pass encoding=... if not so")
            return encoding
    return FALLBACK_ENCODINGS[-1]


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _undecodable_line(path: Path, encoding: str) -> int:
    """The line (from 1) of the first byte that does not decode, or the last line."""
    decoder, line = codecs.getincrementaldecoder(encoding)(), 1
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                return line + chunk.count(b"\n", 0, error.start)
            line += chunk.count(b"\n")
    return line


def _delimiter(path: Path, encoding: str) -> str:
    """The delimiter csv.Sniffer finds in the first rows, or else the one the header line holds most of."""
    with path.open(encoding=encoding, newline="") as file:
        sample = file.read(SAMPLE_BYTES)
    if len(sample) == SAMPLE_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = sample.split("\n", 1)[0]
        return max(DELIMITERS, key=header.count)  # ties (none at all): the first, ","


def _number_format(path: Path, name: str, sep: str, encoding: str, thousands: str | None) -> tuple[str, str | None]:
    """The decimal mark and thousands separator a CSV's numbers are written with.

    "," (and "." between thousands) where a column is written 14,23 or 1.234,56 and the file is not
    comma-delimited; else "." (and "," between thousands where a column is written 1,234.56).
    """
    sample = pd.read_csv(path, sep=sep, encoding=encoding, dtype=str, nrows=NUMBER_ROWS, keep_default_na=True)
    columns = [sample[name].dropna().str.strip() for name in sample.columns]
    columns = [values for values in columns if len(values)]

    def written(style: tuple[re.Pattern, re.Pattern]) -> bool:  # a column of numbers so, one at least unlike others
        return any(
            values.str.match(style[0]).mean() >= MOSTLY and values.str.contains(style[1]).any() for values in columns
        )

    if sep != "," and written(COMMA_STYLE):
        dotted = any(values.str.match(DOTTED_THOUSANDS).any() for values in columns)
        thousands = thousands or ("." if dotted else None)
        grouped = " and . between thousands" if thousands == "." else ""
        rank_zero_info(f"{name}: numbers written with decimal commas{grouped}: read so (pass decimal=... if not)")
        return ",", thousands
    if thousands is None and sep != "," and written(GROUPED_STYLE):
        rank_zero_info(f"{name}: numbers written with , between thousands: read so (pass thousands=... if not)")
        return ".", ","
    return ".", thousands


def _parser_problem(error: pd.errors.ParserError, sep: str) -> str:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
    if found:
        expected, line, saw = found.groups()
        return (
            f"line {line} has {saw} fields where the header has {expected}: a value holding the delimiter "
            f"{sep!r} without quotes, or another delimiter (pass sep=...)"
        )
    return f"{_first_line(error)}; check its quoting, or pass sep=... and encoding=..."


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
