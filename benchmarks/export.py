"""export: exported models against the models themselves, on whole test splits, and predict throughput.

Agreement: the MNIST MLP, CNN and scratch net (their configs, 1 epoch) and three shared
tables (binary, multiclass, regression: the command line's defaults, 3 epochs) are each
exported to ONNX and pt2; the largest difference from what `Trainer.predict` gives, over
the whole test split: probabilities, or regression predictions in the target's units. A
table's ONNX export is run from its raw test rows through the `predict.py` written beside
it (its preprocessing from JSON, numpy and pandas).

Throughput: the MNIST MLP's predictions for the 10,000 test images (uint8 pixels in,
probabilities out) at batch 1 and 1024: Lightning's predict loop (what `litmodules
predict` runs), the same model eager in a plain loop over a tensor (inference mode), and
onnxruntime on the CPU in a plain loop over a numpy array; the median of 3 passes each.
"""

from __future__ import annotations

import importlib
import json
import statistics
import sys
import tempfile
import time
from contextlib import chdir
from pathlib import Path

import lightning as L
import numpy as np
import onnxruntime
import torch

from benchmarks.recipes import from_config, mnist_args
from datamodules import MNISTDataModule
from nnmodules.cli import LitCLI
from nnmodules.runs.export import Predictions, agree, export

TABLES = {"lending_club": "binary", "hpc_data": "multiclass", "loans": "regression"}


def table_cli(tables: Path, name: str) -> LitCLI:
    """The plain command line's recipe for a shared table, 3 epochs."""
    spec = json.loads((tables / "tables.json").read_text())[name]
    model = "MLPRegressor" if spec["task"] == "regression" else "MLPClassifier"
    args = ["--model", model, "--data", "TabularDataModule", f"--data.csv={tables / spec['file']}"]
    args += [f"--data.target={spec['target']}", "--trainer.max_epochs=3", "--trainer.enable_progress_bar=false"]
    return LitCLI([*args, "--trainer.enable_model_summary=false"])


def differences(cli: LitCLI, folder: Path) -> dict[str, float]:
    """Trains, exports to both formats, and returns each format's largest difference from `Trainer.predict`."""
    cli.trainer.fit(cli.model, cli.datamodule)
    model, data = cli.model.cpu().eval(), cli.datamodule
    expected = torch.cat(L.Trainer(logger=False, enable_progress_bar=False).predict(model, datamodule=data))
    inputs = data.table(data.predict_split).tensors[0].clone()
    results = {}
    for format in ("onnx", "pt2"):
        path = folder / f"model.{format}"
        export(model, path, format, datamodule=data)
        if format == "pt2":
            with torch.no_grad():
                outputs = torch.export.load(path).module()(inputs)
        elif hasattr(data, "deployment"):  # a table: its raw rows through the predict.py beside the export
            outputs = torch.tensor(predicted_from_rows(path, data.frames["test"]))
        else:
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            outputs = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0])
        results[format] = agree(outputs, expected)[0]
    return results


def predicted_from_rows(model: Path, rows) -> np.ndarray:
    """The outputs of `predict.py` beside an exported table model, for raw rows."""
    sys.path.insert(0, str(model.parent))
    try:
        for name in ("predict", "preprocess"):
            sys.modules.pop(name, None)  # the files of this export, not of an earlier one
        table = importlib.import_module("predict").predict(model, rows)
    finally:
        sys.path.remove(str(model.parent))
    probabilities = [column for column in table.columns if column.startswith("p_")]
    return table[probabilities].to_numpy() if probabilities else table["prediction"].to_numpy()


def throughput(data_dir: str, folder: Path) -> dict[str, dict[int, float]]:
    """Test images a second of each way to predict, at batch 1 and 1024."""
    cli = from_config("mnist_mlp", *mnist_args(data_dir, epochs=1))
    cli.trainer.fit(cli.model, cli.datamodule)
    model = cli.model.cpu().eval()
    export(model, folder / "mlp.onnx", datamodule=cli.datamodule)
    session = onnxruntime.InferenceSession(str(folder / "mlp.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    eager = Predictions(model, cli.datamodule.batch_transform)
    cli.datamodule.setup("test")
    images = cli.datamodule.table("test").tensors[0]

    def plain(batch_size: int, run, inputs) -> float:
        start = time.perf_counter()
        for first in range(0, len(inputs), batch_size):
            run(inputs[first : first + batch_size])
        return time.perf_counter() - start

    def through_lightning(batch_size: int) -> float:
        data = MNISTDataModule(data_dir, download=False, eval_batch_size=batch_size)
        data.setup("predict")
        trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
        start = time.perf_counter()
        trainer.predict(model, datamodule=data)
        return time.perf_counter() - start

    ways = {  # each fed as its users hold the images: torch a tensor, onnxruntime a numpy array
        "lightning_predict": through_lightning,
        "eager": lambda size: plain(size, eager, images),
        "onnxruntime": lambda size: plain(size, lambda batch: session.run(None, {name: batch}), images.numpy()),
    }
    rates: dict[str, dict[int, float]] = {way: {} for way in ways}
    with torch.inference_mode():
        for size in (1, 1024):
            for way, run in ways.items():
                seconds = statistics.median(run(size) for _ in range(3))
                rates[way][size] = round(len(images) / seconds)
    return rates


def run(data_dir: str, tables: str | None) -> dict:
    """The agreement table, then the throughput table."""
    results: dict = {"max_abs_difference": {}}
    with tempfile.TemporaryDirectory() as scratch, chdir(scratch):
        clis = {
            name: lambda name=name: from_config(name, *mnist_args(data_dir, epochs=1))
            for name in ("mnist_mlp", "mnist_cnn", "mnist_scratch")
        }
        if tables is not None:
            clis |= {
                f"{name} ({task})": lambda name=name: table_cli(Path(tables), name) for name, task in TABLES.items()
            }
        for label, build in clis.items():
            folder = Path(scratch, label.split()[0])
            folder.mkdir()
            results["max_abs_difference"][label] = differences(build(), folder)
        results["images_per_s"] = throughput(data_dir, Path(scratch))
    print("\nExported against Trainer.predict, whole test split: largest absolute difference")
    print(f"{'model':<28}{'onnx':>12}{'pt2':>12}")
    for label, row in results["max_abs_difference"].items():
        print(f"{label:<28}{row['onnx']:>12.2e}{row['pt2']:>12.2e}")
    rates = results["images_per_s"]
    print("\nMNIST MLP, 10,000 test images: images a second (median of 3 passes)")
    print(f"{'way':<20}{'batch 1':>10}{'batch 1024':>12}")
    for way, row in rates.items():
        print(f"{way:<20}{row[1]:>10}{row[1024]:>12}")
    ratio = rates["onnxruntime"][1] / rates["eager"][1]
    print(
        f"batch 1: onnxruntime {ratio:.1f}x eager, {rates['onnxruntime'][1] / rates['lightning_predict'][1]:.1f}x "
        "Lightning's predict loop (target: 3x)"
    )
    return results
