"""Export: ONNX and pt2 files that predict what `predict` gives, and a table predicted without torch."""

from __future__ import annotations

import functools
import importlib
import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CONFIGS, EXAMPLES, NO_LOGGER, VAL_SIZE
from test_images import image_tree
from torch import nn

from datamodules import ImageFolderDataModule, MNISTDataModule, TabularDataModule
from nnmodules import Classifier, MLPClassifier, MLPRegressor, ScratchDeepNet, SmallCNN
from nnmodules.cli import run as litmodules
from nnmodules.runs.export import TOLERANCE, agree, export

PEOPLE = EXAMPLES / "people.csv"


def people(tmp: Path, target: str, **options) -> TabularDataModule:
    """people.csv's rows with a `target`, and a three-class column of its own (`tier`, from income and plan)."""
    frame = pd.read_csv(PEOPLE).dropna(subset=[target] if target != "tier" else [])
    frame["tier"] = np.where(
        frame["income"].fillna(0) > 50_000, "high", np.where(frame["plan"] == "basic", "low", "mid")
    )
    frame.to_csv(tmp / "people.csv", index=False)
    return TabularDataModule(tmp / "people.csv", target, id_column="id", **options)


def mnist(folder: Path, **options) -> MNISTDataModule:
    return MNISTDataModule(folder, val_size=VAL_SIZE, download=False, **options)


SMALL_CNN = functools.partial(SmallCNN, channels=(4, 8), hidden_dim=16)  # the data gives its widths
CASES = {  # name: (model, data) from the fake MNIST's folder and a scratch folder
    "mlp": lambda m, t: (MLPClassifier(), mnist(m)),
    "cnn": lambda m, t: (Classifier(SMALL_CNN), mnist(m, flatten=False)),
    "scratch": lambda m, t: (ScratchDeepNet(hidden_dims=[16]), mnist(m)),
    "binary table": lambda m, t: (MLPClassifier(), people(t, "renewed", drop=["tier"])),
    "multiclass table": lambda m, t: (MLPClassifier(embed_numbers=True), people(t, "tier", drop=["renewed"])),
    "regression table": lambda m, t: (MLPRegressor(), people(t, "income", drop=["renewed", "tier"])),
    "image folder": lambda m, t: (
        Classifier(SMALL_CNN),
        ImageFolderDataModule(image_tree(t / "photos", layout="classes", mode="RGB"), workers=1),
    ),
}


@pytest.mark.parametrize("format", ["onnx", "pt2"])
@pytest.mark.parametrize("case", CASES)
def test_the_export_predicts_what_predict_gives_on_the_whole_test_split(case, format, mnist_dir, tmp_path):
    L.seed_everything(0)
    model, data = CASES[case](mnist_dir, tmp_path)
    expected = torch.cat(L.Trainer(**NO_LOGGER).predict(model, datamodule=data))  # built for its data there
    files = export(model, tmp_path / f"model.{format}", format, datamodule=data)
    inputs = data.table(data.predict_split).tensors[0]
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(files[0]), providers=["CPUExecutionProvider"])
        (outputs,) = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})
        (one,) = session.run(None, {session.get_inputs()[0].name: inputs[:1].numpy()})  # any batch size
        assert np.array_equal(one, outputs[:1])
    else:
        with torch.no_grad():
            outputs = torch.export.load(files[0]).module()(inputs).numpy()
    assert outputs.shape == tuple(expected.shape) and len(inputs) > 1
    difference, allowed = agree(torch.from_numpy(outputs), expected)
    assert difference <= allowed and (allowed == TOLERANCE or case == "regression table")  # there: relative


ROWS_AS = {  # new rows as people keep them; predict.py reads each as training read its table (failed: pd.read_csv)
    "csv": lambda rows, path: rows.to_csv(path.with_suffix(".csv"), index=False),
    "european csv": lambda rows, path: rows.to_csv(
        path.with_suffix(".csv"), index=False, sep=";", decimal=",", encoding="latin-1"
    ),
    "parquet": lambda rows, path: rows.to_parquet(path.with_suffix(".parquet"), index=False),
    "csv with ? for missing": lambda rows, path: rows.to_csv(path.with_suffix(".csv"), index=False, na_rep="?"),
}


@pytest.mark.parametrize("kept_as", list(ROWS_AS))
def test_a_table_is_predicted_from_raw_rows_without_torch(kept_as, tmp_path):
    data = people(tmp_path, "renewed", drop=["tier"], na_values=["?"])  # a setting detection would not find
    L.seed_everything(0)
    model = MLPClassifier()
    L.Trainer(**NO_LOGGER).predict(model, datamodule=data)  # built for its data
    export(model, tmp_path / "out" / "model.onnx", datamodule=data)
    export(model, tmp_path / "out" / "model.pt2", "pt2", datamodule=data)  # beside it: preprocess.py is the same
    new = pd.read_csv(PEOPLE).drop(columns=["renewed"]).head(40)
    new.loc[0, "region"] = "a region never seen"
    new.loc[1, ["age", "income"]] = np.nan
    new["extra column"] = "ignored"
    new["region"] = new["region"].str.replace("north", "nørth")  # not ASCII: latin-1 and UTF-8 differ
    ROWS_AS[kept_as](new, tmp_path / "new")
    (rows,) = tmp_path.glob("new.*")
    script = (
        "import sys; sys.modules['torch'] = None\n"  # any import of torch now fails
        f"sys.path.insert(0, {str(tmp_path / 'out')!r})\n"
        "from predict import predict\n"
        f"predictions = predict({str(tmp_path / 'out' / 'model.onnx')!r}, {str(rows)!r})\n"
        "predictions.to_csv(sys.stdout, index=False)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    got = pd.read_csv(pd.io.common.StringIO(done.stdout))
    data = people(tmp_path, "renewed", drop=["tier"], na_values=["?"], predict_csv=rows)
    expected = torch.cat(L.Trainer(**NO_LOGGER).predict(model, datamodule=data)).numpy()
    assert list(got.columns) == ["row", "id", "prediction", "p_0", "p_1"]
    assert got["row"].tolist() == list(range(40)) and got["id"].tolist() == new["id"].tolist()
    assert np.abs(got[["p_0", "p_1"]].to_numpy() - expected).max() <= TOLERANCE
    assert got["prediction"].tolist() == expected.argmax(axis=1).tolist()


class Branching(nn.Module):
    """A network whose path depends on its inputs' values: no single graph describes it."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(784, 10)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.sum() > 0:
            return self.linear(inputs)
        return -self.linear(inputs)


def test_what_cannot_be_exported_is_refused_naming_the_line_and_leaves_no_file(mnist_dir, tmp_path):
    with pytest.raises(
        ValueError, match=r"^Classifier cannot be exported: at test_export.py:\d+ \(if inputs.sum\(\) > 0:\): "
    ):
        export(Classifier(Branching(), 10), tmp_path / "model.onnx", datamodule=mnist(mnist_dir))
    assert list(tmp_path.iterdir()) == []


def test_an_existing_export_is_kept_unless_overwrite(tmp_path):
    model = MLPClassifier(input_dim=4, hidden_dims=[3], num_classes=2)
    export(model, tmp_path / "model.pt2", "pt2")
    before = (tmp_path / "model.pt2").read_bytes()
    with pytest.raises(ValueError, match=r"model.pt2, .*model.pt2.json already exist: pass --overwrite true"):
        export(MLPClassifier(input_dim=4, hidden_dims=[3], num_classes=2), tmp_path / "model.pt2", "pt2")
    assert (tmp_path / "model.pt2").read_bytes() == before
    export(MLPClassifier(input_dim=4, hidden_dims=[3], num_classes=2), tmp_path / "model.pt2", "pt2", overwrite=True)
    assert (tmp_path / "model.pt2").read_bytes() != before


def test_litmodules_export_writes_a_runs_checkpoint_into_the_run(mnist_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    data = [f"--data.data_dir={mnist_dir}", f"--data.val_size={VAL_SIZE}", "--data.download=false"]
    config = ["--config", str(CONFIGS / "mnist_mlp.yaml"), *data, "--trainer.enable_progress_bar=false"]
    litmodules(["fit", *config, "--trainer.max_epochs=1", "--test_after_fit=false"])
    run = tmp_path / "lightning_logs" / "mnist_mlp" / "version_0"
    litmodules(["export", "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    info = json.loads((run / "export" / "last.onnx.json").read_text())
    assert info["inputs"] == {"shape": ["batch", 784], "dtype": "uint8"} and info["outputs"] == "probabilities"
    assert info["class_names"] == [str(digit) for digit in range(10)] and (run / "export" / "last.onnx").is_file()
    folder = run / "export"
    assert f"exported last.ckpt to {folder / 'last.onnx'}, {folder / 'last.onnx.json'}" in caplog.messages
    assert sorted(path.name for path in (tmp_path / "lightning_logs" / "mnist_mlp").iterdir()) == ["version_0"]


def test_an_export_whose_outputs_differ_from_the_models_keeps_nothing(mnist_dir, tmp_path, monkeypatch):
    model, data = MLPClassifier(), mnist(mnist_dir)
    L.Trainer(**NO_LOGGER).predict(model, datamodule=data)
    module = importlib.import_module("nnmodules.runs.export")  # the module: nnmodules.runs.export is the function
    monkeypatch.setattr(module, "agree", lambda outputs, expected: (0.5, TOLERANCE))
    with pytest.raises(RuntimeError, match=r"differ from the model's by up to 0.5 .*: nothing was kept"):
        export(model, tmp_path / "model.onnx", datamodule=data)
    assert list(tmp_path.iterdir()) == []
