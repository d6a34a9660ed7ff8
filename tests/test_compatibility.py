"""Runs of 0.1.0 go on working: its checkpoints and configs, made by 0.1.0 itself, in tests/runs_0_1_0/.

Each folder there is a run of 0.1.0 (commit 86e019f): `config.yaml`, `checkpoints/last.ckpt`, and the
predictions 0.1.0 wrote from that checkpoint (`predictions_0.1.0.csv`), on the fake digits of conftest.py and
the example table. The class paths they name (`nnmodules.figures.ClassificationFigures`, `nnmodules.nets.MLP`,
...) must still resolve, and the predictions come out the same.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import EXAMPLES, ROOT
from test_boundaries import QUIET_CLI

from datamodules import MNISTDataModule
from nnmodules import Classifier

OLD = ROOT / "tests" / "runs_0_1_0"
DATA = {  # where each run's data is now: the fake digits' folder, or the example table
    "mnist_mlp": "data_dir",
    "mnist_cnn": "data_dir",
    "tabular_mlp": "csv",
    "tabular_scratch": "csv",
    "toy_regression": None,
}


def same_predictions(written: Path, expected: Path) -> None:
    new, old = pd.read_csv(written), pd.read_csv(expected)
    assert list(new.columns) == list(old.columns)
    assert new.select_dtypes("object").equals(old.select_dtypes("object"))
    numbers = old.select_dtypes("number").columns
    np.testing.assert_allclose(new[numbers].to_numpy(), old[numbers].to_numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("run", list(DATA))
def test_a_runs_checkpoint_of_0_1_0_predicts_from_the_command_line_as_0_1_0_did(
    run, mnist_dir, tmp_path, monkeypatch, console
):
    shutil.copytree(OLD / run, tmp_path / run)
    monkeypatch.chdir(tmp_path)
    where = {"data_dir": str(mnist_dir), "csv": str(EXAMPLES / "people.csv"), None: None}[DATA[run]]
    data = [f"--data.init_args.{DATA[run]}={where}"] if where else []
    code, output = console("predict", "--ckpt_path", f"{run}/checkpoints/last.ckpt", *data, *QUIET_CLI)
    assert code == 0, output
    same_predictions(tmp_path / run / "predictions" / "test.csv", tmp_path / run / "predictions_0.1.0.csv")


def test_a_model_of_0_1_0_trained_from_python_loads_and_predicts_as_it_did(mnist_dir):
    model = Classifier.load_from_checkpoint(OLD / "python_mlp" / "checkpoints" / "last.ckpt").eval()
    data = MNISTDataModule(mnist_dir, val_size=64, download=False)
    data.setup("test")
    inputs, _ = data.table("test")[torch.arange(80)]
    with torch.no_grad():
        probabilities = model.predict_step(inputs, 0)
    expected = pd.read_csv(OLD / "python_mlp" / "predictions_0.1.0.csv").to_numpy()
    np.testing.assert_allclose(probabilities.numpy(), expected, rtol=1e-5, atol=1e-6)


RECIPES = sorted(path.name for path in (OLD / "recipes").glob("*.yaml"))  # as 0.1.0 shipped them


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_recipe_of_0_1_0_with_its_class_paths_parses(recipe, tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    code, output = console("fit", "--config", OLD / "recipes" / recipe, "--print_config")
    assert code == 0, output


def test_a_recipe_of_0_1_0_trains(mnist_dir, tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    recipe = OLD / "recipes" / "mnist_mlp.yaml"  # callbacks: nnmodules.figures.ClassificationFigures
    assert "nnmodules.figures.ClassificationFigures" in recipe.read_text()
    data = [f"--data.init_args.data_dir={mnist_dir}", "--data.val_size=64"]
    quick = ["--trainer.max_epochs=1", "--trainer.logger.init_args.log_graph=false", *QUIET_CLI]
    code, output = console("fit", "--config", recipe, *data, *quick)
    assert code == 0, output
    assert list(tmp_path.rglob("last.ckpt"))
