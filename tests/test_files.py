"""A user's table as it comes: delimiters, encodings, Parquet, Excel, and one clear error for a bad file."""

from __future__ import annotations

import logging
import re
import warnings

import pandas as pd
import pytest

from datamodules import TabularDataModule
from datamodules.tabular.files import read_table

ROWS = [("José", 31, "Málaga", 1), ("René", 45, "Zürich", 0), ("Ana", 22, "Köln", 1), ("Bo", 50, "Oslo", 0)]
EXPECTED = pd.DataFrame(ROWS, columns=["name", "age", "city", "y"])


def text(sep: str) -> str:
    return "\n".join(sep.join(map(str, row)) for row in [tuple(EXPECTED.columns), *ROWS]) + "\n"


@pytest.mark.parametrize(
    ("sep", "encoding", "suffix"),
    [(",", "utf-8", ".csv"), (";", "utf-8", ".csv"), ("\t", "utf-8", ".tsv"), ("|", "utf-8", ".txt")]
    + [(";", "latin-1", ".csv"), (",", "cp1252", ".csv"), (",", "utf-8-sig", ".csv")],
)
def test_a_csv_is_read_whatever_its_delimiter_and_encoding(sep, encoding, suffix, tmp_path):
    path = tmp_path / f"people{suffix}"
    path.write_bytes(text(sep).encode(encoding))
    pd.testing.assert_frame_equal(read_table(path, "data file"), EXPECTED)


def test_a_file_that_is_not_utf8_says_which_encoding_it_was_read_as(tmp_path, caplog):
    path = tmp_path / "people.csv"
    path.write_bytes(text(";").encode("latin-1"))
    with caplog.at_level(logging.INFO):
        read_table(path, "data file")
    assert f"data file '{path}' is not UTF-8 (line 2): read as cp1252; pass encoding=... if not so" in caplog.text


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        (b"a,b,y\n1,2,0\n3,4,1\n5,6,7,1\n", {}, "line 4 has 4 fields where the header has 3: a value holding the "
         "delimiter ',' without quotes, or another delimiter (pass sep=...)"),
        (text(";").encode("latin-1"), {"encoding": "utf-8"}, "line 2: bytes that are not utf-8 (invalid continuation "
         "byte): pass the file's encoding, e.g. encoding='cp1252'"),
        (b"a,y\n1,0\n", {"encoding": "utf9"}, "encoding 'utf9' (for data file '{path}') is not one Python knows"),
        (b"", {}, "is empty: it needs a header row and data rows"),
        (b"a,y\n", {}, "has no data rows"),
        (b"a,a,y\n1,2,0\n", {}, "repeats column names ['a']: give every column its own name"),
    ],
    ids=["ragged", "undecodable", "unknown-encoding", "empty", "header-only", "repeated-name"],
)  # fmt: skip
def test_a_bad_csv_is_one_error_naming_the_file_and_line(content, options, message, tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(message.format(path=path))) as error:
        read_table(path, "data file", **options)
    assert f"data file '{path}'" in str(error.value)


def test_parquet_is_read_and_a_damaged_one_named(tmp_path):
    EXPECTED.to_parquet(tmp_path / "people.parquet")
    pd.testing.assert_frame_equal(read_table(tmp_path / "people.parquet", "data file"), EXPECTED)
    (tmp_path / "damaged.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match=r"data file '.*damaged.parquet' is not a readable Parquet file \(.*magic"):
        read_table(tmp_path / "damaged.parquet", "data file")


def test_excel_without_its_optional_reader_says_how_to_get_it_or_convert(tmp_path, monkeypatch):
    def missing_reader(path):
        raise ImportError("Missing optional dependency 'openpyxl'.")

    monkeypatch.setattr(pd, "read_excel", missing_reader)
    (tmp_path / "people.xlsx").write_bytes(b"PK")
    message = "is an Excel file: reading it needs openpyxl (pip install 'litmodules[excel]'), or save the sheet as CSV"
    with pytest.raises(ValueError, match=re.escape(message)):
        read_table(tmp_path / "people.xlsx", "data file")


def test_sep_and_encoding_given_to_the_data_module_read_every_file_of_it(tmp_path):
    commas = text(";").replace("Málaga", "Málaga, ES").replace("Köln", "Köln, DE")  # "," in some values
    for name in ("train.csv", "test.csv", "new.csv"):
        (tmp_path / name).write_bytes(commas.encode("cp1252"))
    data = TabularDataModule(
        tmp_path / "train.csv",
        target="y",
        sep=";",
        encoding="cp1252",
        test_csv=tmp_path / "test.csv",
        predict_csv=tmp_path / "new.csv",
        val_fraction=0.5,
        test_fraction=0.0,
        batch_size=2,
    )
    data.setup("fit")
    data.setup("test")
    assert data.frames["test"]["city"].tolist() == ["Málaga, ES", "Zürich", "Köln, DE", "Oslo"]
    assert len(data.table("predict")) == 4 and data.predict_frame["name"].tolist() == ["José", "René", "Ana", "Bo"]


def test_every_file_of_a_data_module_is_read_with_the_texts_it_names_missing(tmp_path):
    """What reading finds out (delimiter, encoding, decimal mark) it finds in each file; `na_values` it cannot."""
    gaps = text(",").replace(",45,", ",?,")  # René's age: "?"
    for name in ("train.csv", "test.csv", "new.csv"):
        (tmp_path / name).write_text(gaps)
    data = TabularDataModule(
        tmp_path / "train.csv",
        target="y",
        na_values=["?"],
        test_csv=tmp_path / "test.csv",
        predict_csv=tmp_path / "new.csv",
        val_fraction=0.5,
        test_fraction=0.0,
        batch_size=2,
    )
    data.setup("test")  # failed where test_csv was read without na_values: "column 'age' ... holds '?'"
    assert data.frames["test"]["age"].isna().tolist() == [False, True, False, False]
    assert len(data.table("predict")) == 4 and data.predict_frame["age"].isna().sum() == 1


def test_a_comma_delimited_file_keeps_decimal_points_whatever_its_quoted_texts_hold(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text("x,note,y\n" + "".join(f'{i}.5,"{i},5",{i % 2}\n' for i in range(10)))
    frame = read_table(path, "data file")
    assert frame["x"].tolist() == [i + 0.5 for i in range(10)] and frame["note"].tolist()[1] == "1,5"


def test_one_value_with_a_comma_in_a_column_of_words_leaves_decimal_points_alone(tmp_path):
    path = tmp_path / "notes.csv"
    notes = ["ok", "late", "3,5", "ok", "late", "ok"]
    path.write_text("x;note;y\n" + "".join(f"{i}.25;{note};{i % 2}\n" for i, note in enumerate(notes)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # failed: pandas' warning of a pattern with match groups, to the user
        frame = read_table(path, "data file")
    assert frame["x"].tolist() == [i + 0.25 for i in range(6)] and frame["note"].tolist() == notes


def test_a_thousands_separator_given_is_used_whatever_else_the_file_holds(tmp_path):
    path = tmp_path / "swiss.csv"
    path.write_text("amount;code;y\n1'234.5;1,234,567;0\n2'000.25;2,345,678;1\n512.0;3,456,789;0\n")
    frame = read_table(path, "data file", thousands="'")  # codes that look like grouped thousands stay codes
    assert frame["amount"].tolist() == [1234.5, 2000.25, 512.0] and frame["code"].tolist()[0] == "1,234,567"


def test_a_filtered_dataframe_is_read_by_position(tmp_path):
    frame = pd.DataFrame({"x": range(10), "y": [0, 1] * 5})
    chosen = frame[frame["x"] >= 4]  # index 4..9
    read = read_table(chosen, "data file")
    assert read.index.tolist() == list(range(6)) and chosen.index.tolist()[0] == 4  # the user's frame unchanged


NUMBERS = pd.DataFrame(
    {
        "city": ["Málaga", "Zürich", "Köln", "Oslo", "Lyon", "Porto"],
        "income": [31250.5, 1234567.25, 980.0, 45000.75, 12.5, 2500.0],
        "rate": [0.25, 1.5, 14.23, 3.0, 0.125, 7.75],
        "y": [1, 0, 1, 0, 1, 0],
    }
)


def european(value: float) -> str:
    """A number as a German or Spanish spreadsheet writes it: 1.234.567,25."""
    whole, _, fraction = f"{value:,.3f}".rstrip("0").rstrip(".").partition(".")
    return whole.replace(",", ".") + ("," + fraction if fraction else "")


def test_a_european_csv_with_decimal_commas_and_dotted_thousands_is_read_as_numbers(tmp_path, caplog):
    lines = ["city;income;rate;y"]
    lines += [f"{r.city};{european(r.income)};{european(r.rate)};{r.y}" for r in NUMBERS.itertuples()]
    path = tmp_path / "export.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    assert european(1234567.25) == "1.234.567,25" and european(14.23) == "14,23"  # the writer, checked by hand
    with caplog.at_level(logging.INFO):
        frame = read_table(path, "data file")
    pd.testing.assert_frame_equal(frame, NUMBERS)  # failed: income and rate were text, then one-hot categories
    assert "numbers written with decimal commas and . between thousands: read so (pass decimal=... if not)" in (
        caplog.text
    )


def test_thousands_written_with_commas_in_a_semicolon_file_and_options_given_are_used(tmp_path):
    lines = ["city;income;rate;y"] + [f"{r.city};{r.income:,.2f};{r.rate};{r.y}" for r in NUMBERS.itertuples()]
    path = tmp_path / "export.csv"
    path.write_text("\n".join(lines) + "\n")
    pd.testing.assert_frame_equal(read_table(path, "data file"), NUMBERS)
    as_text = read_table(path, "data file", decimal=".", thousands=None)  # given: nothing is found out
    assert as_text["income"].tolist()[1] == "1,234,567.25"


def test_more_texts_meaning_missing_are_missing(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("x,y\n1,0\n-,1\n3,0\n?,1\n")
    frame = read_table(path, "data file", na_values=["-", "?"])
    assert frame["x"].isna().tolist() == [False, True, False, True] and frame["x"].dtype == "float64"
