"""ToyRegressor, ToyRegressionDataModule, regression on a table, and the regression figures."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CONFIGS, QUIET, ROOT
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from datamodules import TabularDataModule, ToyRegressionDataModule
from nnmodules import MLPClassifier, MLPRegressor, ToyRegressor
from nnmodules.callbacks import RegressionFigures
from nnmodules.cli import make_trainer, run


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # lightning_logs/ goes there, not into the repo


def test_toy_data_is_the_line_split_in_order_and_unscaled():
    data = ToyRegressionDataModule(n_samples=100, seed=5)
    data.setup("fit")
    assert (data.facts.task, data.facts.input_shape, data.batch_size) == ("regression", (1,), 100)
    assert data.facts.true_line == (1.0, 2.0)  # for the fit's figure
    assert {split: len(data.table(split)) for split in ("train", "val", "test")} == {"train": 60, "val": 10, "test": 30}
    x, y = data.table("train").tensors
    generator = torch.Generator().manual_seed(5)
    expected_x = torch.randn(100, generator=generator)
    torch.testing.assert_close(x[:, 0], expected_x[:60])  # the first 60 points, as drawn: not standardised
    assert (y - (1 + 2 * x[:, 0])).abs().max() < 1.5  # the line plus noise of deviation 0.3


@pytest.mark.parametrize(
    ("seed", "recipe", "max_mse"),
    [
        *[(seed, {}, 0.11) for seed in range(5)],  # the defaults (the config's recipe): every seed within the bounds
        (3, {"optimizer": "adam"}, 0.15),  # the introduction's: PyTorch's initialisation, Adam at 0.1
    ],
)
def test_toy_fit_recovers_slope_and_intercept(seed, recipe, max_mse):
    L.seed_everything(seed)
    data = ToyRegressionDataModule(seed=seed)
    model = ToyRegressor(**recipe)
    trainer = make_trainer(max_epochs=100, log_every_n_steps=10, check_val_every_n_epoch=10, **QUIET)
    trainer.fit(model, data)
    metrics = trainer.test(model, datamodule=data, verbose=False)[0]
    assert {"test/mse", "test/mae", "test/r2", "test/loss"} <= set(metrics)
    assert metrics["test/mse"] <= max_mse
    with torch.no_grad():
        at_minus_one, at_zero, at_one = model.eval()(torch.tensor([[-1.0], [0.0], [1.0]])).tolist()
    assert at_zero == pytest.approx(1, abs=0.1)
    assert (at_one - at_minus_one) / 2 == pytest.approx(2, abs=0.1)


def test_active_init_starts_as_a_straight_line():
    model = ToyRegressor(input_dim=1, init="active").eval()
    x = torch.linspace(-3, 3, 61).unsqueeze(1)
    with torch.no_grad():
        y = model(x)
    differences = y[1:] - y[:-1]
    torch.testing.assert_close(differences, differences[:1].expand_as(differences))  # no kink within 3 deviations


def priced_table(rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": rng.normal(0, 1, rows), "b": rng.normal(0, 1, rows), "kind": rng.choice(["x", "y"], rows)}
    )
    frame["price"] = 500 + 30 * frame["a"] - 20 * frame["b"] + 40 * (frame["kind"] == "y") + rng.normal(0, 3, rows)
    return frame


def test_regression_on_a_csv_with_a_standardised_target(tmp_path):
    priced_table().to_csv(tmp_path / "prices.csv", index=False)
    data = TabularDataModule(tmp_path / "prices.csv", target="price", batch_size=32)  # standardised by default
    data.setup("fit")
    assert data.facts.task == "regression" and data.facts.num_classes is None
    assert data.facts.target_mean == pytest.approx(data.frames["train"]["price"].mean())
    _, scaled_targets = data.table("train").tensors
    assert abs(float(scaled_targets.mean())) < 1e-5  # the model sees (price - mean) / std

    L.seed_everything(0)
    model = MLPRegressor(hidden_dims=[16], dropout=0.0, lr=0.01, lr_schedule="constant")  # the scale: the data's
    trainer = make_trainer(max_epochs=30, **QUIET)
    trainer.callbacks.append(RegressionFigures())
    trainer.fit(model, data)
    logged = dict(trainer.callback_metrics)
    metrics = trainer.test(model, datamodule=data, verbose=False)[0]
    assert metrics["test/r2"] > 0.95 and 1 < metrics["test/mae"] < 10  # the noise's 3 dollars: not in deviations
    # the losses too: the mean squared error in dollars², as the checkpoint's name says
    assert metrics["test/loss"] == pytest.approx(metrics["test/mse"], rel=1e-5) and metrics["test/loss"] > 1
    assert float(logged["val/loss"]) == pytest.approx(float(logged["val/mse"]), rel=1e-5)
    assert float(logged["train/loss_epoch"]) > 1  # deviations² would be about 0.01
    best = trainer.checkpoint_callback
    epoch = Path(best.best_model_path).name.split("-")[0]
    assert Path(best.best_model_path).name == f"{epoch}-val_loss{float(best.best_model_score):.4f}.ckpt"
    predictions = torch.cat(trainer.predict(model, datamodule=data))
    assert abs(float(predictions.mean()) - data.facts.target_mean) < 10  # undone: prices around 500, not around 0
    images = EventAccumulator(trainer.log_dir, size_guidance={"images": 0}).Reload().Tags()["images"]
    assert set(images) == {"regression/fit", "regression/residuals"}


def test_a_model_told_other_target_units_than_the_data_feeds_is_refused_before_training(tmp_path):
    priced_table().to_csv(tmp_path / "prices.csv", index=False)
    data = TabularDataModule(tmp_path / "prices.csv", target="price", batch_size=32)
    data.setup("fit")
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, **QUIET)
    mean, std = data.facts.target_mean, data.facts.target_std
    message = (
        f"the data feeds the targets standardised (mean {mean:g}, deviation {std:g}) but the model has "
        "target_mean=0, target_std=1: leave them out, and the data fills them"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        trainer.fit(MLPRegressor(target_mean=0.0, target_std=1.0), data)
    assert trainer.global_step == 0
    with pytest.raises(ValueError, match=re.escape(f"but the model has target_std={2 * std:g}: leave them out")):
        trainer.fit(MLPRegressor(target_std=2 * std), data)  # the mean left to the data, the deviation not


def test_toy_figures_every_n_epochs_and_at_the_end():
    L.seed_everything(0)
    trainer = make_trainer(max_epochs=5, **QUIET)
    trainer.callbacks.append(RegressionFigures(every_n_epochs=2))
    trainer.fit(ToyRegressor(), ToyRegressionDataModule())
    events = EventAccumulator(trainer.log_dir, size_guidance={"images": 0}).Reload()
    assert [image.step for image in events.Images("regression/fit")] == [2, 4, 5]  # epochs 2 and 4, then the end
    assert [image.step for image in events.Images("regression/residuals")] == [2, 4, 5]


def test_predict_from_the_command_line_writes_predictions(tmp_path):
    config = ["--config", str(CONFIGS / "toy_regression.yaml")]
    fit = run(["fit", *config, "--trainer.max_epochs=20", "--test_after_fit=false"])
    checkpoint = fit.trainer.checkpoint_callback.last_model_path
    run(["predict", f"--ckpt_path={checkpoint}"])  # the run's own config, in the checkpoint
    written = pd.read_csv(Path(checkpoint).parents[1] / "predictions" / "test.csv")
    assert list(written.columns) == ["row", "prediction"]
    assert written["row"].tolist() == list(range(70, 100))  # the last 30 of the 100 points, by position
    data = ToyRegressionDataModule()
    data.setup("test")
    inputs, model = data.table("test")[torch.arange(30)][0], ToyRegressor.load_from_checkpoint(checkpoint)
    with torch.no_grad():
        expected = model.eval().in_target_units(model(inputs))
    assert torch.allclose(torch.tensor(written["prediction"].to_numpy(), dtype=torch.float32), expected, rtol=1e-5)


def test_figures_refuse_a_classifier_before_training(mnist):
    trainer = make_trainer(max_epochs=1, **QUIET)
    trainer.callbacks.append(RegressionFigures())
    with pytest.raises(ValueError, match="RegressionFigures draws for a Regressor; MLPClassifier is not one"):
        trainer.fit(MLPClassifier(), mnist)
    assert trainer.global_step == 0


def test_plain_toy_script_prints_what_it_learnt(monkeypatch, capsys):
    script = str(ROOT / "scripts" / "train_toy_regression.py")
    monkeypatch.setattr("sys.argv", [script, "--seed=2"])
    runpy.run_path(script, run_name="__main__")
    found = re.search(r"test MSE: ([0-9.]+)  intercept f\(0\): ([0-9.]+)  slope .*: ([0-9.]+)", capsys.readouterr().out)
    mse, intercept, slope = map(float, found.groups())
    assert mse <= 0.11 and abs(intercept - 1) <= 0.1 and abs(slope - 2) <= 0.1
