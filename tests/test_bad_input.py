"""Bad input, everywhere: one row per mistake, and the exact message a person gets, before any training.

`{tmp}` in a message is the test's own folder. The numeric case (a loss that turns
NaN) and damaged checkpoints live in test_runs.py, beside the checkpoints they
protect; the fuzz test at the end throws random tables at TabularDataModule.
"""

from __future__ import annotations

import re
import struct
import sys
from datetime import date, datetime
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CONFIGS, NO_LOGGER, TRAIN_IMAGES, UNDER_MUTMUT, fake_digits, write_idx
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from datamodules import MNISTDataModule, TabularDataModule
from nnmodules import MLPClassifier, ScratchDeepNet
from nnmodules.cli import main
from nnmodules.cli import run as litmodules

CONFIG = str(CONFIGS / "mnist_mlp.yaml")


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def table(folder: Path, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "t.csv"
    path.write_text(text)
    return path


def predict_table(folder: Path, text: str) -> None:
    """Predict on a table of `text` with the preprocessing of a small training table with columns a, b, y."""
    (folder / "new.csv").write_text(text)
    data = TabularDataModule(
        table(folder, "a,b,y\n" + "1,2,0\n3,4,1\n" * 10), target="y", predict_csv=folder / "new.csv"
    )
    data.setup("predict")


def mnist_files(folder: Path, images: bytes | None = None, labels: bytes | None = None) -> Path:
    """A data_dir with MNIST's four files, the training pair replaced by the bytes given."""
    raw = folder / "MNIST" / "raw"
    write_idx(raw, "train", *fake_digits(TRAIN_IMAGES, seed=0))
    write_idx(raw, "t10k", *fake_digits(20, seed=1))
    if images is not None:
        (raw / "train-images-idx3-ubyte").write_bytes(images)
    if labels is not None:
        (raw / "train-labels-idx1-ubyte").write_bytes(labels)
    return folder


def mnist_setup(folder: Path, **kwargs) -> None:
    MNISTDataModule(folder, download=False, **kwargs).setup("fit")


IMAGES = struct.pack(">IIII", 2051, TRAIN_IMAGES, 28, 28) + bytes(TRAIN_IMAGES * 28 * 28)
RAW = "{tmp}/MNIST/raw"
IDX = "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"
DATA_ROWS = [
    # tables (the tabular data module's list)
    pytest.param(lambda t: TabularDataModule(t / "absent.csv", target="y").setup("fit"), FileNotFoundError,
     "data file '{tmp}/absent.csv' not found: pass the path of a CSV, Parquet or Excel file", id="csv missing"),
    pytest.param(lambda t: TabularDataModule(table(t, ""), target="y").setup("fit"), ValueError,
     "data file '{tmp}/t.csv' is empty: it needs a header row and data rows", id="csv empty"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n"), target="y").setup("fit"), ValueError,
     "data file '{tmp}/t.csv' has no data rows", id="csv header only"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,b\n1,2\n"), target="y").setup("fit"), ValueError,
     "target column 'y' not in data file '{tmp}/t.csv'; columns are: ['a', 'b']", id="target missing"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n1,\n2,\n"), target="y").setup("fit"),
     ValueError, "target column 'y' in data file '{tmp}/t.csv' has no values", id="target all missing"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n" + "1,1\n" * 20), target="y").setup("fit"),
     ValueError, "target column 'y' has a single class ('1') in the training rows: classification needs two or more",
     id="single class",
     marks=pytest.mark.filterwarnings("ignore:target 'y' holds 1 whole", "ignore:column 'a' has one value")),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n1,0\n2,1\n3,0\n"), target="y").setup("fit"),
     ValueError, "3 rows are too few for the splits asked (val_fraction=0.2, test_fraction=0.2): ['val', 'test'] "
     "would be empty {'train': 3, 'val': 0, 'test': 0}", id="too few rows"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\nx,0\n" + "1,1\n2,0\n" * 5), target="y",
     numeric=["a"]).setup("fit"), ValueError,
     "column 'a' is treated as numeric but holds 'x': name it in categorical=[...] or clean the data",
     id="forced numeric"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\nx,0\nz,1\n" + "1,1\n2,0\n" * 5), target="y",
     numeric=["a"]).setup("fit"), ValueError, "column 'a' is treated as numeric but holds 'x' (and 1 more value "
     "that is not a number): name it in categorical=[...] or clean the data", id="two bad numbers"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n-1,0\n" + "1,1\n2,0\n" * 5), target="y",
     log1p=["a"]).setup("fit"), ValueError, "log1p column 'a' has values of -1 or less (min -1.0): log(1 + x) needs "
     "x above -1; leave it out of log1p=[...] or shift it", id="log1p at -1"),
    pytest.param(lambda t: TabularDataModule(table(t, "y,a,y\n1,2,3\n"), target="y").setup("fit"),
     ValueError, "data file '{tmp}/t.csv' repeats column names ['y']: give every column its own name",
     id="repeated names"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n1e400,0\n" + "1,1\n2,0\n" * 5), target="y")
     .setup("fit"), ValueError, "column 'a' holds an infinite number (inf): clean the data or drop it",
     id="infinite number"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n" + "1,low\n2,high\n" * 5), target="y",
     task="regression").setup("fit"), ValueError, "column 'y' is treated as numeric but holds 'high' (and 5 more "
     "values that are not numbers): a regression target must be numbers: pass task='binary' or 'multiclass' for "
     "classes, or clean the data", id="regression on words"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n" + "1,low\n2,high\n" * 5),
     target="y", task="regression", standardize_target=True).setup("fit"), ValueError, "column 'y' is treated as "
     "numeric but holds 'high' (and 5 more values that are not numbers): a regression target must be numbers: pass "
     "task='binary' or 'multiclass' for classes, or clean the data", id="standardised regression on words"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,s,y\n1,train,0\n2,tset,1\n3,val,0\n"), target="y",
     split_column="s").setup("fit"), ValueError,
     "split column 's' must say 'train', 'val' or 'test' in every row; it also holds ['tset']", id="split column typo"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n" + "1,0\n2,1\n" * 10), target="y",
     test_csv=table(t / "more", "a,y\n" + "".join(f"{c},{c}\n" for c in range(1, 8)))).setup("test"), ValueError,
     "target values ['2', '3', '4', '5', '6'] are not among the training classes ['0', '1']", id="unseen test classes"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n" + "1,0\n1,1\n" * 5), target="y").setup("fit"),
     ValueError, "data file '{tmp}/t.csv' has no feature left: every column but the target is dropped (see why "
     "above); keep one by naming it in categorical=[...] or numeric=[...]",
     id="no feature left",
     marks=pytest.mark.filterwarnings("ignore:column 'a' has one value")),
    pytest.param(lambda t: TabularDataModule(table(t, "NA,y,NA\n1,2,3\n"), target="y").setup("fit"),
     ValueError, "data file '{tmp}/t.csv' repeats column names ['NA']: give every column its own name",
     id="repeated NA names"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n" + "1,0\n2,1\n" * 5), target="y",
     test_csv=t / "absent.csv").setup("fit"), FileNotFoundError,
     "test_csv '{tmp}/absent.csv' not found: pass the path of a CSV, Parquet or Excel file", id="test csv missing"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n1,0\n"), target="y", numeric=["b"]).setup("fit"),
     ValueError, "columns ['b'] (in numeric) not in data file '{tmp}/t.csv'; columns are: ['a', 'y']. Leave them "
     "out (--data.numeric '[]'): a recipe's numeric is for its example table", id="numeric unknown"),
    pytest.param(lambda t: TabularDataModule(table(t, "a,y\n1,0\n"), target="y", drop=["b"]).setup("fit"),
     ValueError, "columns ['b'] (in drop) not in data file '{tmp}/t.csv'; columns are: ['a', 'y']. Leave them out "
     "(--data.drop '[]'): a recipe's drop is for its example table", id="drop unknown"),
    pytest.param(lambda t: TabularDataModule(t / "x.csv", target="y", val_fraction=0.5, test_fraction=0.5),
     ValueError, "val_fraction (0.5) must be above 0 and, with test_fraction (0.5), leave some rows for training: "
     "the two must sum below 1", id="fractions sum to 1"),
    pytest.param(lambda t: predict_table(t, "a\n1\n"), ValueError,
     "columns ['b'] were used in training but are not in the data", id="predict csv lacks a column"),
    pytest.param(lambda t: TabularDataModule(t / "x.csv", target="y", scaling="quantiles"), ValueError,
     "scaling must be 'quantile', 'robust', 'standard' or 'none', got 'quantiles'", id="scaling typo"),
    pytest.param(lambda t: TabularDataModule(t / "x.csv", target="y", batch_size=0), ValueError,
     "batch_size must be at least 1, got 0", id="table batch size 0"),
    # MNIST
    pytest.param(lambda t: mnist_setup(t), FileNotFoundError,
     f"MNIST not found under {RAW}: put {IDX} there, pass --data.data_dir, or allow download=True",
     id="mnist missing"),
    pytest.param(lambda t: mnist_setup(t, dataset="EMNIST", emnist_split="letters"), FileNotFoundError,
     "EMNIST not found under {tmp}/EMNIST/raw: put emnist-letters-train-images-idx3-ubyte, "
     "emnist-letters-train-labels-idx1-ubyte, emnist-letters-test-images-idx3-ubyte, "
     "emnist-letters-test-labels-idx1-ubyte there, pass --data.data_dir, or allow download=True", id="emnist missing"),
    pytest.param(lambda t: MNISTDataModule(t, dataset="Fashion"), ValueError,
     "dataset must be 'MNIST', 'FashionMNIST', 'KMNIST' or 'EMNIST', got 'Fashion'", id="dataset typo"),
    pytest.param(lambda t: mnist_setup(mnist_files(t, images=IMAGES[:5000])), ValueError,
     f"MNIST files {RAW}/train-* cannot be read (shape '[{TRAIN_IMAGES}, 28, 28]' is invalid for input of size 4984): "
     "cut short or not MNIST; delete them and download them again", id="mnist truncated"),
    pytest.param(lambda t: mnist_setup(mnist_files(t, images=b"<html>Not found</html>")), ValueError,
     f"MNIST files {RAW}/train-* cannot be read (not in the IDX format): cut short or not MNIST; "
     "delete them and download them again", id="mnist not idx"),
    pytest.param(lambda t: mnist_setup(mnist_files(t, labels=struct.pack(">II", 2049, 10)
     + bytes(10))), ValueError, f"MNIST files {RAW}/train-* do not match: {TRAIN_IMAGES} images of 28x28 pixels "
     "and 10 labels; delete them and download them again", id="mnist labels of another set"),
    pytest.param(lambda t: MNISTDataModule(table(t, "x")), ValueError,
     "data_dir '{tmp}/t.csv' is a file: pass the folder that holds MNIST/raw", id="data_dir is a file"),
    pytest.param(lambda t: MNISTDataModule(t, batch_size=0), ValueError, "batch_size must be at least 1, got 0",
     id="batch size 0"),
    pytest.param(lambda t: MNISTDataModule(t, batch_size=-5), ValueError,
     "batch_size must be at least 1, got -5", id="batch size negative"),
    pytest.param(lambda t: MNISTDataModule(t, eval_batch_size=0), ValueError,
     "eval_batch_size must be at least 1 (or None: 4 x batch_size), got 0", id="eval batch size 0"),
    pytest.param(lambda t: MNISTDataModule(t, num_workers=-1), ValueError,
     "num_workers must be 0 or more, got -1", id="workers negative"),
    pytest.param(lambda t: MNISTDataModule(t, val_size=0), ValueError, "val_size must be at least 1 image, got 0",
     id="val_size 0"),
    pytest.param(lambda t: mnist_setup(mnist_files(t), val_size=TRAIN_IMAGES), ValueError,
     f"val_size {TRAIN_IMAGES} leaves no training images: there are {TRAIN_IMAGES}", id="val_size all"),
    # models
    pytest.param(lambda t: MLPClassifier(hidden_dims=(128, 0)), ValueError,
     "layer widths must be positive whole numbers: hidden_dims=[128, 0], embedding_dim=16", id="hidden width 0"),
    pytest.param(lambda t: MLPClassifier(num_classes=1), ValueError,
     "num_classes must be at least 2, got 1 (a classifier needs classes)", id="one class"),
    pytest.param(lambda t: MLPClassifier(dropout=1.0), ValueError, "dropout must be in [0, 1), got 1.0",
     id="dropout 1"),
    pytest.param(lambda t: MLPClassifier(lr=0), ValueError, "lr must be positive, got 0", id="lr 0"),
    pytest.param(lambda t: ScratchDeepNet(hidden_dims=[-3]), ValueError,
     "layer widths must be positive whole numbers: hidden_dims=[-3]", id="hidden width negative"),
    pytest.param(lambda t: L.Trainer(max_steps=1, **NO_LOGGER).fit(MLPClassifier(input_dim=784), TabularDataModule(
     table(t, "a,b,y\n" + "1,2,0\n3,4,1\n" * 10), target="y")), ValueError,
     "the model's input_dim=784 but the data gives 2: leave input_dim out, and the data fills it, or give input_dim=2",
     id="input width"),
]  # fmt: skip


@pytest.mark.parametrize(("action", "error", "message"), DATA_ROWS)
def test_data_and_model_mistakes(action, error, message, tmp_path):
    with pytest.raises(error, match=exactly(message.replace("{tmp}", str(tmp_path)))):
        action(tmp_path)


def test_input_width_is_checked_before_the_first_step(tmp_path):
    steps = []
    model = MLPClassifier(input_dim=784)
    model.training_step = lambda *args: steps.append(args)  # noqa: ARG005
    data = TabularDataModule(table(tmp_path, "a,b,y\n" + "1,2,0\n3,4,1\n" * 10), target="y")
    message = "the model's input_dim=784 but the data gives 2: leave input_dim out, and the data fills it"
    with pytest.raises(ValueError, match=message):
        L.Trainer(max_steps=1, **NO_LOGGER).fit(model, data)
    assert steps == []


PRESETS = {"Classifier", "MLPClassifier", "MLPRegressor", "Regressor", "ScratchDeepNet", "ToyRegressor"}
DATA = {"MNISTDataModule", "TabularDataModule", "ToyRegressionDataModule"}
CLASS_ROWS = [
    pytest.param(["--model", "MLPClasifier"], "--model MLPClasifier: no such class. Did you mean MLPClassifier?",
     PRESETS, id="model typo"),
    pytest.param(["--model", "nnmodules.Nope"], "--model nnmodules.Nope: no such class.", PRESETS, id="unknown model"),
    pytest.param(["--data", "TabularDatamodule"],
     "--data TabularDatamodule: no such class. Did you mean TabularDataModule?", DATA, id="data typo"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message", "known"), CLASS_ROWS)
def test_a_class_not_found_is_named_with_the_closest_and_the_known_ones(args, message, known, capsys):
    """The known classes are the project's and any others imported (other test modules define some)."""
    with pytest.raises(SystemExit) as stop:
        litmodules(["fit", "--config", CONFIG, *args])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and error.startswith(f"error: {message} Known: ")
    listed = error.split(" Known: ")[1].split(". (Or give its import path: my_module.MyClass.)\n")[0]
    assert known <= set(listed.split(", ")) and "TaskModule" not in listed and "TensorDataModule" not in listed
    assert error.endswith("(Or give its import path: my_module.MyClass.)\n(litmodules fit --help lists the options)\n")


CLI_ROWS = [
    pytest.param(["--model", "my_module.Net"],
     "--model my_module.Net: no module 'my_module' here: run from the folder that holds it, or install it",
     id="model of no module"),
    pytest.param(["--model.init_args.hiden_dims", "[3]"],
     "--model.hiden_dims: MLPClassifier takes no argument 'hiden_dims'. Did you mean hidden_dims?", id="argument typo"),
    pytest.param(["--model.init_args.lr", "fast"], "--model.lr fast: expected float", id="argument of a wrong type"),
    pytest.param(["--trainer.epochs", "3"],
     "no option --trainer.epochs. Did you mean --trainer.min_epochs or --trainer.max_epochs?", id="unknown option"),
    pytest.param(["--trainer.max_epochs", "ten"], "--trainer.max_epochs ten: expected int", id="wrong type"),
    pytest.param(["--model=Classifier", "--model.net=Tabmm"],
     "--model.net Tabmm: no such class. Did you mean TabM? (Or give its import path: my_module.MyClass.)",
     id="network typo"),  # failed: named as --model
    pytest.param(["--model=Classifier", "--model.net=TabM"], "--model.net: Multiple subclasses with name TabM. Give "
     "the full class path to avoid ambiguity: nnmodules.TabM, tabm.TabM.", id="network of two packages"),
    pytest.param(["--config", "{tmp}/broken.yaml"],
     'Problems parsing config: while parsing a flow sequence in "<unicode string>", line 1, column 10 did not '
     """find expected ',' or ']' in "<unicode string>", line 3, column 1""", id="config not yaml"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), CLI_ROWS)
def test_command_line_mistakes(args, message, tmp_path, capsys):
    """A usage error is one line and a pointer to --help, with exit status 2."""
    (tmp_path / "broken.yaml").write_text("trainer: [max_epochs: 3\n  bad")
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    with pytest.raises(SystemExit) as stop:
        litmodules(["fit", "--config", CONFIG, *args])
    assert stop.value.code == 2
    expected = re.escape(
        f"error: {message}\n(litmodules fit --help lists the options)\n".replace("{tmp}", str(tmp_path))
    )
    expected = expected.replace(re.escape("{...}"), r"(\w+, )*").replace(re.escape("{,...}"), r"(, \w+)*")
    assert re.fullmatch(expected, capsys.readouterr().err)


def test_fit_help_lists_the_classes_one_can_name_and_every_subcommand_says_what_it_does(capsys):
    with pytest.raises(SystemExit):
        litmodules(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    lists = {
        found.split(", ")[0]: set(found.split(", ")[1:]) for found in re.findall(r"known subclasses: ([^)]*)\)", text)
    }
    models = {"Classifier", "MLPClassifier", "ScratchDeepNet", "Regressor", "MLPRegressor", "ToyRegressor"}
    data = {"ImageFolderDataModule", "MNISTDataModule", "TabularDataModule", "ToyRegressionDataModule"}
    assert {f"nnmodules.{name}" for name in models} <= lists["lightning.LightningModule"]  # (and the tests' own)
    assert {f"datamodules.{name}" for name in data} <= lists["lightning.LightningDataModule"]
    bases = ("TaskModule", "Resumable", "TensorDataModule", "BuiltForData")  # no base, nothing abstract
    assert not [name for listed in lists.values() for name in listed if name.endswith(bases)]
    main(["--help"])
    listed = " ".join(capsys.readouterr().out.split())
    assert "fit train a model on data" in listed and "tune a hyperparameter search" in listed
    assert all(f" {name} " in listed for name in ("fit", "validate", "test", "predict", "export", "tune", "recipes"))


def whole_command_rows(tmp: Path) -> list[tuple[list[str], str]]:
    """Mistakes found after the command line is read: the arguments, and the message."""
    table_args = ["--model", "MLPClassifier", "--data", "TabularDataModule", "--data.target", "y", "--data.csv"]
    one_class = table(tmp, "a,y\n" + "".join(f"{row},yes\n" for row in range(20)))
    return [
        ([*table_args, f"{tmp}/absent.csv"], f"data file '{tmp}/absent.csv' not found: pass the path of a CSV, "
         "Parquet or Excel file"),
        ([*table_args, str(one_class)], "target column 'y' has a single class ('yes') in the training rows: "
         "classification needs two or more"),
        ([*table_args, str(one_class), "--data.val_fraction", "0.5", "--data.test_fraction", "0.5"],
         "val_fraction (0.5) must be above 0 and, with test_fraction (0.5), leave some rows for training: the two "
         "must sum below 1"),
        (["--config", CONFIG, "--data.data_dir", str(tmp), "--data.download", "false"],
         f"MNIST not found under {tmp}/MNIST/raw: put {IDX} there, pass --data.data_dir, or allow download=True"),
        (["--config", CONFIG, "--model.init_args.hidden_dims", "[0]"],
         "layer widths must be positive whole numbers: hidden_dims=[0], embedding_dim=16"),
        (["--config", CONFIG, "--ckpt_path", f"{tmp}/nope.ckpt"],
         f"checkpoint {tmp}/nope.ckpt does not exist: pass the path of a .ckpt file"),
    ]  # fmt: skip


def test_a_mistake_found_later_is_its_message_alone_and_leaves_no_run_folder(tmp_path, monkeypatch, capfd):
    """Exit status 1, the message and how to see the traceback (at most 3 lines in all), nothing written."""
    monkeypatch.chdir(tmp_path)
    for args, message in whole_command_rows(tmp_path):
        monkeypatch.setattr(sys, "argv", ["litmodules", "fit", *args])
        before = sorted(tmp_path.rglob("*"))
        with pytest.raises(SystemExit) as stop:
            main()
        out, err = capfd.readouterr()
        assert stop.value.code == 1, args
        assert err.endswith(f"error: {message}\n(LITMODULES_DEBUG=1 shows where it was raised)\n"), args
        assert len((out + err).splitlines()) <= 3, out + err
        assert sorted(tmp_path.rglob("*")) == before, args


def test_litmodules_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("LITMODULES_DEBUG", "1")
    args = ["fit", "--model", "MLPClassifier", "--data", "TabularDataModule", "--data.target", "y"]
    monkeypatch.setattr(sys, "argv", ["litmodules", *args, "--data.csv", str(tmp_path / "absent.csv")])
    with pytest.raises(FileNotFoundError, match="absent.csv' not found"):
        main()


NAMES = st.sampled_from(["y", "a", "b", "Größe", "名前", " ", "", "y.1", "1", "nan"])
CELLS = {  # one kind per column
    "numbers": st.one_of(st.none(), st.integers(-3, 3), st.floats(-1e6, 1e6)),
    "odd numbers": st.one_of(st.floats(width=32), st.sampled_from(["1e400", "-inf", "NaN", "1,5", ""])),
    "categories": st.one_of(st.none(), st.sampled_from(["x", "yes", "no", "€", "名前", " ", "True"])),
    "anything": st.one_of(st.none(), st.integers(-3, 3), st.floats(width=32), st.text(max_size=3), st.booleans()),
    "missing": st.none(),
    "dates": st.one_of(st.none(), st.dates(date(1990, 1, 1), date(2030, 12, 31)).map(str)),
    "times": st.datetimes(datetime(2020, 1, 1), datetime(2020, 12, 31)).map(lambda t: t.strftime("%Y-%m-%d %H:%M")),
}
IDS = st.integers(0, 10**6).map(lambda n: f"C{n:07d}")  # a text column with a new value in every row
SEPARATORS = [",", ";", "\t", "|"]
ENCODINGS = ["utf-8", "cp1252", "latin-1"]


@st.composite
def tables(draw) -> tuple[bytes, str]:
    """A small delimited file: odd cell types, dates and times, ids, empty and all-missing columns, unicode and
    duplicated names, one of four delimiters and three encodings, now and then a row with a field too many;
    and a target."""
    names = draw(st.lists(NAMES, min_size=1, max_size=5, unique=draw(st.integers(0, 4)) > 0))  # 1 in 5: repeats
    rows = draw(st.integers(0, 40))
    columns = {}
    for i in range(len(names)):
        kind = draw(st.sampled_from([*sorted(CELLS), "ids"]))
        cells = (
            st.lists(IDS, min_size=rows, max_size=rows, unique=True)
            if kind == "ids"
            else st.lists(CELLS[kind], min_size=rows, max_size=rows)
        )
        columns[f"c{i}"] = draw(cells)
    sep = draw(st.sampled_from(SEPARATORS))
    text = pd.DataFrame(columns).to_csv(index=False, header=False, sep=sep)
    if rows and not draw(st.integers(0, 9)):  # 1 in 10: a ragged row
        text += sep.join(["1"] * (len(names) + 1)) + "\n"
    text = sep.join(f'"{name}"' for name in names) + "\n" + text
    encoding = draw(st.sampled_from(ENCODINGS))
    try:
        encoded = text.encode(encoding)
    except UnicodeEncodeError:  # e.g. 名前 in cp1252
        encoded = text.encode("utf-8")
    target = draw(st.sampled_from(names) if draw(st.integers(0, 9)) else st.just("absent"))
    return encoded, target


TABLE_MESSAGES = [  # every refusal a random table may meet, each naming the thing at fault and the fix
    r"data file '.*' is empty: it needs a header row and data rows",
    r"data file '.*' repeats column names \[.*\]: give every column its own name",
    r"data file '.*' has no data rows",
    r"data file .* has no feature left: every column but the target is dropped \(see why above\); keep one by naming "
    r"it in categorical=\[\.\.\.\] or numeric=\[\.\.\.\]",
    r"target column .* not in data file '.*'; columns are: \[.*\]",
    r"target column .* in data file '.*' has no values",
    r"target column .* has a single class \(.*\) in the training rows: classification needs two or more",
    r"task='binary' but target column .* holds \d+ classes in the training rows \(.*\): leave task out, or pass "
    r"task='multiclass'",
    r"\d+ rows are too few for the splits asked \(val_fraction=0.25, test_fraction=0.0\): \[.*\] would be empty .*",
    r"column .* is treated as numeric but holds .*: name it in categorical=\[...\] or clean the data",
    r"column .* is treated as numeric but holds .*: a regression target must be numbers: pass task='binary' or "
    r"'multiclass' for classes, or clean the data",
    r"column .* holds an infinite number \(.*\): clean the data or drop it",
    r"data file '.*': line \d+ has \d+ fields where the header has \d+: a value holding the delimiter .* without "
    r"quotes, or another delimiter \(pass sep=...\)",
]


# under mutmut (`make mutation`), a failing example kills the mutant as it is: shrinking it would take minutes
PHASES = [phase for phase in Phase if phase is not Phase.shrink or not UNDER_MUTMUT]


@pytest.mark.filterwarnings("ignore::UserWarning:datamodules")  # the table's own warnings: tested one by one elsewhere
@settings(
    max_examples=1000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], phases=PHASES
)
@given(csv_and_target=tables(), task=st.sampled_from([None, "binary", "multiclass", "regression"]))
def test_random_tables_train_or_say_what_is_wrong(csv_and_target, task, tmp_path_factory):
    encoded, target = csv_and_target
    path = tmp_path_factory.mktemp("fuzz") / "t.csv"
    path.write_bytes(encoded)
    data = TabularDataModule(path, target=target, task=task, batch_size=4, val_fraction=0.25, test_fraction=0.0)
    try:
        data.setup("fit")
    except (ValueError, FileNotFoundError) as error:
        assert any(re.fullmatch(message, str(error), re.DOTALL) for message in TABLE_MESSAGES), str(error)
        event("refused: " + re.sub(r"'.*?'|\[.*?\]|\{.*?\}|\d+", "_", str(error))[:70])
        return
    event(f"trains: {data.facts.task}")
    features, targets = next(iter(data.train_dataloader()))  # it trains: one step of a linear model
    assert features.shape[1] == data.num_features and torch.isfinite(features).all()
    outputs = 1 if data.facts.task == "regression" else data.num_classes
    model = torch.nn.Linear(data.num_features, outputs)
    scores = model(features)
    if data.facts.task == "regression":
        loss = torch.nn.functional.mse_loss(scores.squeeze(1), targets)
    else:
        loss = torch.nn.functional.cross_entropy(scores, targets)
    loss.backward()
    assert torch.isfinite(loss) and np.isfinite(model.weight.grad.numpy()).all()
