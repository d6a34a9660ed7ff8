"""Column roles a person can check: what each column became, and a warning wherever a guess decided it."""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from datamodules import TabularDataModule
from datamodules.tabular.columns import column_roles

ROWS = 40


def table(**columns) -> pd.DataFrame:
    """A table of ROWS rows with a binary target `y` and the given columns."""
    return pd.DataFrame({"y": np.arange(ROWS) % 2, **columns})


def fitted(frame: pd.DataFrame, **options) -> TabularDataModule:
    settings = {"val_fraction": 0.25, "test_fraction": 0.0, "batch_size": 8, **options}
    data = TabularDataModule(frame, target="y", **settings)
    data.setup("fit")
    return data


def test_a_column_of_numbers_with_a_few_words_is_numeric_the_words_missing():
    ages = np.arange(ROWS, dtype=float).astype(object)
    ages[[3, 7]] = ["unknown", "n/a"]
    message = "column 'age' holds numbers but for 2 value(s) like 'n/a': read as numbers, those as missing"
    with pytest.warns(UserWarning, match=re.escape(message)):
        data = fitted(table(age=ages, other=np.arange(ROWS) / 4), val_fraction=0.05)  # both words in training
    assert data.feature_names == ["age", "other"]  # one column, not a one-hot of 20 values
    ages_in = data.table("train").tensors[0][:, 0]
    assert torch.isfinite(ages_in).all()  # the words were filled as missing numbers are
    named = fitted(table(age=ages), categorical=["age"], val_fraction=0.05, max_categories=100)  # kept as categories
    assert "age=unknown" in named.feature_names and len(named.feature_names) == 38


def test_a_text_column_with_a_different_value_in_every_row_is_an_id_and_dropped():
    customers = [f"C{i:04d}" for i in range(ROWS)]
    message = "column 'customer' has a different value in every row (like 'C0000'), as an id has: dropped"
    with pytest.warns(UserWarning, match=re.escape(message)):
        assert fitted(table(customer=customers, x=np.arange(ROWS) / 4)).feature_names == ["x"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # named: kept, and nothing said
        kept = fitted(table(customer=customers), categorical=["customer"], max_categories=100)
    assert len(kept.feature_names) == 30  # the training rows' ids


@pytest.mark.parametrize(
    ("values", "said"),
    [(np.full(ROWS, 7.0), "has one value only"), (np.full(ROWS, np.nan), "has no values")],
    ids=["constant", "empty"],
)
def test_a_column_with_one_value_or_none_is_dropped(values, said):
    with pytest.warns(UserWarning, match=re.escape(f"column 'c' {said}: dropped, as it tells the rows nothing apart")):
        assert fitted(table(c=values, x=np.arange(ROWS) / 4)).feature_names == ["x"]


def test_dates_become_their_year_month_day_of_week_and_day_of_year_and_times_their_hour_too(tmp_path):
    days = pd.date_range("2021-12-30", periods=ROWS, freq="D")  # Thursday 30 December 2021 on
    stamps = pd.date_range("2022-03-01 06:00", periods=ROWS, freq="7h")
    frame = table(day=days.strftime("%d/%m/%Y"), stamp=stamps.strftime("%Y-%m-%d %H:%M"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = fitted(frame, scaling="none")
    assert not [w for w in caught if "dayfirst" in str(w.message)]  # pandas' note: both orders are tried here
    parts = ["year", "month", "day_of_week", "day_of_year"]
    assert data.feature_names == [*(f"day.{p}" for p in parts), *(f"stamp.{p}" for p in [*parts, "hour"])]
    train = data.frames["train"]
    first = data.table("train").tensors[0][0].tolist()
    day, stamp = pd.Timestamp(days[train.index[0]]), pd.Timestamp(stamps[train.index[0]])
    assert first[:4] == [day.year, day.month, day.day_of_week, day.day_of_year]  # 30/12/2021: the 30th, not a month 30
    assert first[4:] == [stamp.year, stamp.month, stamp.day_of_week, stamp.day_of_year, stamp.hour]
    new = frame.drop(columns="y").iloc[:2].copy()  # a new file with a date that is not one: missing, then median
    new.loc[new.index[1], "day"] = "sometime"
    data.predict_frame, data.predict_csv = None, "new"
    data.tables.pop("predict", None)
    new.to_csv(tmp_path / "new.csv", index=False)
    data.predict_csv = str(tmp_path / "new.csv")
    assert torch.isfinite(data.table("predict").tensors[0]).all()


def test_a_numeric_target_of_few_values_is_taken_as_classes_saying_how_to_predict_a_number():
    frame = pd.DataFrame({"rating": np.arange(ROWS) % 5 + 1, "x": np.arange(ROWS) / 4})
    message = "target 'rating' holds 5 whole numbers (1 to 5): taken as classes; pass task='regression'"
    with pytest.warns(UserWarning, match=re.escape(message)):
        data = TabularDataModule(frame, target="rating", val_fraction=0.25, test_fraction=0.0)
        data.setup("fit")
        assert data.facts.task == "multiclass"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = TabularDataModule(frame, target="rating", task="regression", test_fraction=0.0)
        data.setup("fit")
        assert data.facts.task == "regression"


def test_setup_prints_each_columns_role_and_the_task(caplog):
    ages = np.arange(ROWS, dtype=float).astype(object)
    ages[3] = "unknown"
    frame = table(age=ages, city=np.where(np.arange(ROWS) % 3, "Oslo", None), note=np.full(ROWS, "same"))
    with caplog.at_level(logging.INFO), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = fitted(frame, drop=["note"])
    train = data.frames["train"]
    lines = caplog.text.splitlines()
    start = next(i for i, line in enumerate(lines) if "the DataFrame: 30 training rows; task binary" in line)
    assert lines[start].endswith("task binary (the target is 2 classes)")
    table_lines = [re.sub(r"\s+", " ", line.strip()) for line in lines[start + 1 : start + 6]]
    assert table_lines == [
        "column role missing distinct note",
        "y target 0% 2",
        f"age numeric 0% {train['age'].nunique()} text as missing: ['unknown']",
        f"city categorical {train['city'].isna().mean():.0%} 1",  # as in the training rows
        "note dropped 0% 1 drop=[...]",
    ]


def test_a_column_of_whole_numbers_different_in_every_row_is_an_id_and_dropped():
    shuffled = np.random.default_rng(0).permutation(ROWS) + 1000  # customer numbers, in no order
    message = "column 'customer_id' has a different whole number in every row (like "
    with pytest.warns(UserWarning, match=re.escape(message)):  # failed: silently a numeric feature
        assert fitted(table(customer_id=shuffled, x=np.arange(ROWS) % 7)).feature_names == ["x"]
    with pytest.warns(UserWarning, match="'row' has a different whole number in every row"):
        assert fitted(table(row=np.arange(ROWS), x=np.arange(ROWS) % 7)).feature_names == ["x"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # named: kept, and nothing said
        assert fitted(table(customer_id=shuffled), numeric=["customer_id"]).feature_names == ["customer_id"]
    assert fitted(table(visits=np.arange(ROWS) % 9)).feature_names == ["visits"]  # repeated values: a feature


def test_numbers_written_with_decimal_commas_that_were_not_read_so_are_named_with_the_fix(tmp_path, caplog):
    path = tmp_path / "quoted.csv"  # comma-delimited, the numbers quoted: nothing tells the reader
    path.write_text("y,rate\n" + "".join(f'{i % 2},"{i},{i % 10}5"\n' for i in range(ROWS)))
    with pytest.warns(UserWarning, match=re.escape("column 'rate' holds numbers written with decimal commas")):
        data = fitted(path)
    assert "numbers with decimal commas? pass decimal=','" in caplog.text and data.feature_names[0] != "rate"
    numbers = fitted(path, decimal=",")
    assert numbers.feature_names == ["rate"]


def test_a_small_tables_distinct_texts_are_categories_not_ids():
    names = [f"n{i}" for i in range(12)]  # fewer rows than MIN_ID_ROWS: too few to tell an id
    frame = pd.DataFrame({"y": np.arange(12) % 2, "name": names})
    roles = {column.name: column.role for column in column_roles(frame, "y", {})}
    assert roles == {"y": "target", "name": "categorical"}


def test_a_column_of_codes_mostly_numbers_stays_categorical():
    codes = [str(i) for i in range(28)] + ["A1", "B2", "C3", "D4"] * 3  # 70% numbers: codes, not numbers
    frame = pd.DataFrame({"y": np.arange(40) % 2, "code": codes})
    (code,) = [column for column in column_roles(frame, "y", {}) if column.name == "code"]
    assert code.role == "categorical" and not code.words
