"""`litmodules cv`: a table's recipe on K folds, each an ordinary run; their mean, out-of-fold predictions, continue."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import CONFIGS
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from datamodules import TabularDataModule
from nnmodules import ensemble_of, load_run
from nnmodules.cli import stages
from nnmodules.cli.cv import cross_validate

FOLDS = 3
ARGS = ["--config", "tabular_mlp", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]
ARGS += ["--trainer.callbacks=[]", "--trainer.enable_model_summary=false"]


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> tuple[Path, dict]:
    """A 3-fold cross-validation of the tabular_mlp recipe, one epoch a fold: its folder and summary."""
    folder = tmp_path_factory.mktemp("cv")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        summary = cross_validate(FOLDS, ARGS)
    return folder / "lightning_logs" / "tabular_mlp" / f"cv_{FOLDS}", summary


def test_each_fold_is_a_run_and_the_summary_is_their_mean_and_spread(done):
    folder, summary = done
    folds = [json.loads((folder / f"fold_{k}" / "fold.json").read_text()) for k in range(FOLDS)]
    assert summary == json.loads((folder / "cv.json").read_text())
    events = EventAccumulator(str(folder / "summary")).Reload()  # the folds' logger: TensorBoard
    assert events.Scalars("val/acc_mean")[0].value == pytest.approx(summary["metrics"]["val/acc"]["mean"])
    for name in ("val/loss", "val/acc", "test/loss", "test/acc"):
        split = name.split("/")[0]
        values = [fold[split][name] for fold in folds]
        mean = sum(values) / FOLDS
        spread = math.sqrt(sum((value - mean) ** 2 for value in values) / (FOLDS - 1))  # the sample deviation
        assert summary["metrics"][name] == {"mean": pytest.approx(mean), "std": pytest.approx(spread), "folds": values}
    for k, fold in enumerate(folds):
        config = (folder / f"fold_{k}" / "config.yaml").read_text()
        assert f"folds: {FOLDS}" in config and f"fold: {k}" in config and fold["checkpoint"].endswith(".ckpt")


def test_a_folds_figures_are_what_validating_its_best_checkpoint_gives(done, tmp_path, monkeypatch):
    folder, summary = done
    monkeypatch.chdir(tmp_path)
    cli = stages.validate(["--ckpt_path", summary["checkpoints"][1], "--trainer.enable_progress_bar=false"])
    assert float(cli.trainer.callback_metrics["val/acc"]) == pytest.approx(summary["metrics"]["val/acc"]["folds"][1])


def test_every_row_not_tested_is_predicted_once_by_the_fold_that_did_not_train_on_it(done):
    folder, _ = done
    predictions = pd.read_csv(folder / "out_of_fold.csv")
    plain = TabularDataModule(CONFIGS / "examples" / "people.csv", target="renewed", drop=["id"])._frames()
    assert predictions["row"].tolist() == sorted(set(plain["train"].index) | set(plain["val"].index))
    assert (
        predictions["target"].tolist()
        == plain["train"].combine_first(plain["val"]).loc[predictions["row"]]["renewed"].tolist()
    )
    probabilities = predictions[["p_0", "p_1"]].to_numpy()
    assert abs(probabilities.sum(axis=1) - 1).max() < 1e-5
    assert (predictions["prediction"] == probabilities.argmax(axis=1)).all()
    checkpoints = [json.loads((folder / f"fold_{k}" / "fold.json").read_text())["checkpoint"] for k in (0, 1)]
    (model, data), (other, _) = (load_run(path) for path in checkpoints)
    data.setup("validate")  # fold 0's rows, by its own data state: predicted by fold 0's model, not another's
    rows = predictions.set_index("row").loc[data.frames["val"].index, ["p_0", "p_1"]].to_numpy()
    with torch.no_grad():
        model.eval()  # no dropout, as Trainer.predict runs them
        other.eval()
        expected = model.predict_step(data.table("val").tensors[0], 0).numpy()
        others = other.predict_step(data.table("val").tensors[0], 0).numpy()
    assert abs(rows - expected).max() < 1e-5 and abs(rows - others).max() > 1e-3


def predictions_of_each_fold(checkpoints: list[str]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each fold's model's predictions of the test rows, each from its own run's data; and the test targets."""
    predictions = []
    for path in checkpoints:
        model, data = load_run(path)
        data.setup("test")
        inputs, targets = data.table("test").tensors
        with torch.no_grad():
            predictions.append(model.eval().predict_step(inputs, 0))
    return predictions, targets


def test_the_folds_as_one_model_answer_with_the_mean_of_the_folds_probabilities(done, tmp_path, console):
    folder, summary = done
    assert summary["ensemble"]["members"] == summary["checkpoints"]
    folds, targets = predictions_of_each_fold(summary["checkpoints"])
    expected = sum(folds) / FOLDS
    ensemble, data = load_run(summary["ensemble"]["checkpoint"])
    data.setup("test")
    plain = TabularDataModule(CONFIGS / "examples" / "people.csv", target="renewed", drop=["id"])._frames()
    assert data.frames["test"].index.equals(plain["test"].index)  # the test rows, not a fold's
    with torch.no_grad():
        torch.testing.assert_close(ensemble.eval().predict_step(data.table("test").tensors[0], 0), expected)
    accuracy = float((expected.argmax(dim=1) == targets).float().mean())
    assert summary["ensemble"]["test"]["test/acc"] == pytest.approx(accuracy)
    assert console("predict", "--ckpt_path", summary["ensemble"]["checkpoint"])[0] == 0
    written = pd.read_csv(folder / "ensemble" / "predictions" / "test.csv")[["p_0", "p_1"]].to_numpy()
    assert abs(written - expected.numpy()).max() < 1e-5
    assert console("export", "--ckpt_path", summary["ensemble"]["checkpoint"])[0] == 0  # checked against it there


def test_a_regressions_folds_as_one_model_average_in_the_targets_units(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    summary = cross_validate(2, ["--config", "tabular_regression", *ARGS[2:]])
    folds, _ = predictions_of_each_fold(summary["checkpoints"])
    ensemble, data = load_run(summary["ensemble"]["checkpoint"])
    data.setup("test")
    with torch.no_grad():
        predicted = ensemble.eval().predict_step(data.table("test").tensors[0], 0)
    torch.testing.assert_close(predicted, (folds[0] + folds[1]) / 2)
    assert abs(predicted.mean() - data.facts.target_mean) < data.facts.target_std  # prices, not standardised values


def test_without_test_rows_the_folds_are_still_one_model_that_predicts(tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    summary = cross_validate(2, [*ARGS, "--data.test_fraction=0"])
    assert "test" not in summary["metrics"] and set(summary["ensemble"]) == {"checkpoint", "members", "written"}
    assert not list((tmp_path / "lightning_logs" / "tabular_mlp" / "cv_2" / "ensemble").glob("events.*"))  # no figure
    table = CONFIGS / "examples" / "people.csv"
    assert console("predict", "--ckpt_path", summary["ensemble"]["checkpoint"], f"--data.predict_csv={table}")[0] == 0
    (written,) = (tmp_path / "lightning_logs" / "tabular_mlp" / "cv_2" / "ensemble" / "predictions").glob("*.csv")
    assert len(pd.read_csv(written)) == len(pd.read_csv(table))


def test_runs_that_take_other_inputs_or_learn_another_task_are_not_one_model(done, tmp_path, monkeypatch):
    _, summary = done
    monkeypatch.chdir(tmp_path)
    plain = stages.fit([*ARGS, "--test_after_fit=false"]).trainer.checkpoint_callback.last_model_path
    with pytest.raises(ValueError, match=r"last.ckpt takes other inputs than .* \(its data preprocessed otherwise\)"):
        ensemble_of([summary["checkpoints"][0], plain])
    regression = stages.fit(["--config", "tabular_regression", *ARGS[2:], "--test_after_fit=false"])
    with pytest.raises(ValueError, match=r"models of one task .* got \['MLPClassifier', 'MLPRegressor'\]"):
        ensemble_of([plain, regression.trainer.checkpoint_callback.last_model_path])


def test_the_same_command_continues_keeping_finished_folds(done, monkeypatch):
    folder, summary = done
    monkeypatch.chdir(folder.parents[2])
    kept = {path: path.read_bytes() for path in (folder / "fold_0").rglob("*") if path.is_file()}
    last = folder / "fold_1" / "checkpoints" / "last.ckpt"
    trained = last.read_bytes()
    (folder / "fold_1" / "fold.json").unlink()  # stopped after training, before its evaluation
    (folder / "fold_2" / "fold.json").unlink()
    for path in (folder / "fold_2" / "checkpoints").iterdir():  # stopped before its first checkpoint
        path.unlink()
    shown = [arg.replace("progress_bar=false", "progress_bar=true") for arg in ARGS]  # display flags: the same
    again = cross_validate(FOLDS, shown)
    assert {path: path.read_bytes() for path in kept} == kept and last.read_bytes() == trained  # not trained again
    assert again["metrics"]["val/acc"]["folds"][:2] == summary["metrics"]["val/acc"]["folds"][:2]
    assert (folder / "fold_2" / "fold.json").is_file() and (folder / "fold_2.1" / "config.yaml").is_file()  # kept
    assert again["ensemble"]["members"] == again["checkpoints"]
    assert again["ensemble"]["written"] != summary["ensemble"]["written"]  # of fold 2 as it is now, trained again
    assert (folder / "ensemble.1" / "ensemble.json").is_file()  # the one of the folds as they were: kept


@pytest.mark.parametrize(
    ("folds", "args", "message"),
    [
        (1, ARGS, "--folds 1: cross-validation needs at least 2 folds"),
        (3, [*ARGS, "--data.init_args.folds=3"], "cv takes no --ckpt_path, --data.fold or --data.folds"),
        (3, [*ARGS, "--trainer.max_epochs=2"], r"holds a cross-validation of other settings \(--trainer.max_epochs 1"),
        (2, ["--config", "mnist_mlp"], "MNISTDataModule takes no folds: cross-validation is for TabularDataModule"),
    ],
    ids=["one-fold", "a-fold-given", "other-settings", "not-a-table"],
)
def test_what_cannot_be_cross_validated_is_refused_naming_why(folds, args, message, done, monkeypatch):
    folder, _ = done
    monkeypatch.chdir(folder.parents[2])
    with pytest.raises(ValueError, match=message):
        cross_validate(folds, args)
