"""TabularDataModule: reading, splitting, preprocessing fitted on train only, errors, checkpoints."""

from __future__ import annotations

import re
import runpy
import tracemalloc
import warnings

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import EXAMPLES, NO_LOGGER, ROOT

from datamodules import DataFacts, TabularDataModule
from datamodules.tabular import TablePreprocessing, auto_batch_size, detect_task
from datamodules.tabular.preprocess import to_numbers
from nnmodules import MLP, MLPClassifier, ScratchDeepNet, TableMLP


def rule_table(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A known rule: y = 1 when x + 2 * (colour == "red") > 1; with noise columns and missing values."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(0, 1, rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "noise": rng.normal(0, 1, rows),
            "name": [f"person {i}" for i in range(rows)],
        }
    )
    frame["y"] = ((frame["x"] + 2 * (frame["colour"] == "red")) > 1).astype(int)
    frame.loc[rng.random(rows) < 0.05, "noise"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "colour"] = np.nan
    return frame


def set_up(data: TabularDataModule, stage: str = "fit") -> TabularDataModule:
    data.setup(stage)
    return data


def fit(model, data, epochs=15, **trainer_args):
    trainer = L.Trainer(max_epochs=epochs, enable_checkpointing=False, **NO_LOGGER, **trainer_args)
    trainer.fit(model, data)
    return trainer, trainer.test(model, datamodule=data, verbose=False)[0]


@pytest.mark.parametrize(
    "model_class, model_args",
    [
        (ScratchDeepNet, {"hidden_dims": [10, 10], "task": "binary", "loss": "bce", "lr": 0.5}),
        (MLPClassifier, {"hidden_dims": [16], "lr": 0.03}),
    ],
)
def test_models_learn_a_known_rule(model_class, model_args):
    L.seed_everything(0)
    data = set_up(TabularDataModule(rule_table(), target="y", drop=["name"], batch_size=32))
    assert (data.facts.task, data.facts.num_classes, data.facts.class_names) == ("binary", 2, ("0", "1"))
    model = model_class(**model_args)  # its widths come from the data
    _, metrics = fit(model, data)
    assert model.hparams.input_dim == data.facts.num_features == 6  # x, noise and 4 colours (one missing)
    assert metrics["test/acc"] >= 0.9


def test_features_types_and_names():
    data = set_up(TabularDataModule(rule_table(), target="y", drop=["name"], missing_indicators=True))
    assert data.feature_names == [
        "x", "noise", "noise_missing", "colour=<missing>", "colour=blue", "colour=green", "colour=red",
    ]  # fmt: skip
    features, targets = data.table("train").tensors
    assert features.shape == (len(data.frames["train"]), 7) and features.dtype == torch.float32
    assert targets.dtype == torch.int64


def test_preprocessing_by_hand():
    """Each step on numbers worked out by hand: median fill, log1p, standardising, indicators, one-hot, other."""
    e = np.e
    train = pd.DataFrame({"a": [1, 2, 3, np.nan], "b": [0, e - 1, e**2 - 1, e**3 - 1], "c": ["y", "x", "y", None]})
    with pytest.warns(UserWarning, match="column 'c' has 3 distinct values"):
        fitted = TablePreprocessing.fit(
            train, ["a", "b"], ["c"], ["b"], missing_indicators=True, max_categories=2, scaling="standard"
        )
    # a: median 2 fills the gap, then mean 2 and deviation sqrt(1/2); b: log1p gives 0..3, mean 1.5, deviation
    # sqrt(5/4); c: the most frequent y, then <missing> before x (alphabetical among ties) are kept, x goes to <other>
    assert fitted.feature_names == ["a", "b", "a_missing", "c=<missing>", "c=y", "c=<other>"]
    new = pd.DataFrame({"a": [4, np.nan], "b": [e - 1, 0], "c": ["x", None]})
    expected = [[2 / 0.5**0.5, -0.5 / 1.25**0.5, 0, 0, 0, 1], [0, -1.5 / 1.25**0.5, 1, 1, 0, 0]]
    assert torch.allclose(torch.from_numpy(fitted.transform(new)), torch.tensor(expected))
    raw = TablePreprocessing.fit(train, ["a", "b"], ["c"], [], scaling="none")  # plain numbers, all of c kept
    assert torch.allclose(torch.from_numpy(raw.transform(new)), torch.tensor([[4, e - 1, 0, 1, 0], [2, 0, 1, 0, 0]]))


@pytest.mark.parametrize(
    ("rows", "batch_size"),
    [(1, 16), (300, 16), (5_700, 16), (6_000, 32), (12_000, 64), (35_000, 128), (300_000, 1024), (10**7, 1024)],
)
def test_a_tables_batch_size_follows_its_training_rows(rows, batch_size):
    assert auto_batch_size(rows) == batch_size


def test_the_chosen_batch_size_trains_and_travels_in_the_checkpointed_state():
    data = TabularDataModule(rule_table(rows=5_000), target="y", drop=["name"], val_fraction=0.1, test_fraction=0.1)
    data.setup("fit")
    assert data.batch_size == 16 and len(data.train_dataloader()) == 4_000 // 16  # 4,000 training rows
    assert data.hparams.batch_size == 16  # the choice, kept with the arguments
    restored = TabularDataModule(None, target="y", drop=["name"])
    restored.load_state_dict(data.state_dict())
    assert restored.batch_size == 16
    assert set_up(TabularDataModule(rule_table(), target="y", drop=["name"], batch_size=100)).batch_size == 100


def test_numbers_are_embedded_from_a_thousand_training_rows_unless_the_model_says():
    def facts(rows: int) -> DataFacts:  # the data's numbers: x and noise
        return set_up(TabularDataModule(rule_table(rows), target="y", drop=["name"], test_fraction=0.0)).facts

    def network(rows: int, **options):
        model = MLPClassifier(hidden_dims=[4], **options)
        model.build(facts(rows))
        return type(model.net), model.hparams.embed_numbers, model.hparams.numeric_features

    assert network(1_250) == (TableMLP, True, 2) and network(1_240) == (MLP, False, 0)  # 1,000 and 992 rows
    assert network(1_240, embed_numbers=True) == (TableMLP, True, 2)
    assert network(1_250, embed_numbers=False) == (MLP, False, 0)


def test_robust_scaling_by_hand_median_interquartile_range_then_a_smooth_clip():
    # a: median 3, quartiles 2 and 4 (IQR 2); b: no spread between its quartiles, so half its range, 5
    train = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 100.0], "b": [0.0, 0.0, 0.0, 0.0, 10.0]})
    fitted = TablePreprocessing.fit(train, ["a", "b"], [], [], scaling="robust")
    assert (fitted.means, fitted.stds, fitted.clip) == ({"a": 3, "b": 0}, {"a": 2, "b": 5}, True)

    def clipped(x: float) -> float:
        return x / (1 + (x / 3) ** 2) ** 0.5

    features = torch.from_numpy(fitted.transform(train))
    expected = [[clipped((a - 3) / 2), clipped(b / 5)] for a, b in zip(train["a"], train["b"], strict=True)]
    assert torch.allclose(features, torch.tensor(expected, dtype=torch.float32))
    assert features[:, 0].max() < 3  # the outlier, 48.5 interquartile ranges out, stays within 3


def test_quantile_scaling_by_hand_the_normal_score_of_each_values_level_ties_in_their_middle():
    # a: 0..100 (101 rows, so 101 levels, a hundredth apart); b: 61 zeros, then 1..40
    train = pd.DataFrame({"a": np.arange(101.0), "b": np.r_[np.zeros(61), np.arange(1.0, 41)]})
    fitted = TablePreprocessing.fit(train, ["a", "b"], [], [])
    assert np.allclose(fitted.quantiles["a"], [np.arange(101.0), np.arange(101) / 100]) and not fitted.clip
    assert np.allclose(fitted.quantiles["b"][1][:3], [0, 0.6, 0.61])  # the zeros' levels: the first and last kept
    new = pd.DataFrame({"a": [50.0, 84.0, 12.5, -1e9, 1e9], "b": [0.0, 1.0, 20.5, 0.0, 0.0]})
    levels = torch.tensor([[0.5, 0.3], [0.84, 0.61], [0.125, 0.805], [1e-7, 0.3], [1 - 1e-7, 0.3]], dtype=torch.float64)
    # b's zeros fill levels 0 to 0.6: their middle, 0.3; 1 is at 0.61, 20.5 halfway from 20 (0.8) to 21 (0.81)
    assert torch.allclose(torch.from_numpy(fitted.transform(new)), torch.special.ndtri(levels).float(), atol=1e-5)
    assert np.abs(fitted.transform(new)[:, 0]).max() < 5.2  # far outside the training range: at the ends


def test_categories_are_kept_up_to_max_categories_then_go_to_other():
    twenty = pd.DataFrame({"c": [f"v{i:02}" for i in range(20)]})
    assert TablePreprocessing.fit(twenty, [], ["c"], []).categories["c"] == sorted(twenty["c"])  # default 20: all
    three = pd.DataFrame({"c": ["a", "b", "c"]})
    assert TablePreprocessing.fit(three, [], ["c"], [], max_categories=3).categories["c"] == ["a", "b", "c"]
    with pytest.warns(UserWarning, match="column 'c' has 21 distinct values in the training split: keeping the 20"):
        kept = TablePreprocessing.fit(pd.DataFrame({"c": [f"v{i:02}" for i in range(21)]}), [], ["c"], [])
    assert kept.categories["c"] == [f"v{i:02}" for i in range(20)] + ["<other>"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["1", "x", "y"], "holds 'x' (and 1 more value that is not a number)"),
        (["x", "y", "z"], "holds 'x' (and 2 more values that are not numbers)"),
    ],
)
def test_a_column_of_words_treated_as_numbers_names_the_first_and_counts_the_rest(values, message):
    with pytest.raises(ValueError, match=re.escape(f"column 'a' is treated as numeric but {message}: name it in")):
        to_numbers(pd.Series(values, name="a"))


def test_preprocessing_of_columns_without_spread():
    """A column missing in every training row, or constant, passes through finite (standard scaling: filled with
    0, divided by 1)."""
    train = pd.DataFrame({"empty": [np.nan] * 4, "same": [7.0] * 4})
    new = pd.DataFrame({"empty": [5, np.nan], "same": [9, 7]})
    quantiles = TablePreprocessing.fit(train, ["empty", "same"], [], []).transform(new)
    assert np.isfinite(quantiles).all() and quantiles[1].tolist() == [0, 0]  # the one value seen: the middle level
    fitted = TablePreprocessing.fit(train, ["empty", "same"], [], [], scaling="standard")
    assert (fitted.medians, fitted.means, fitted.stds) == (
        {"empty": 0, "same": 7},
        {"empty": 0, "same": 7},
        {"empty": 1, "same": 1},
    )
    assert fitted.transform(new).tolist() == [[5, 2], [0, 0]]


def test_statistics_come_from_the_training_split_only():
    # training rows hold 0..9 and the colours red/blue; val and test rows hold 1000 and a colour of their own
    frame = pd.DataFrame(
        {
            "x": [*range(10), 1000, 1000, 1000, 1000],
            "colour": ["red", "blue"] * 5 + ["gold"] * 4,
            "y": [0, 1] * 7,
            "split": ["train"] * 10 + ["val", "val", "test", "test"],
        }
    )
    frame.loc[0, "x"] = np.nan  # the training median of 1..9 fills it: 5
    data = TabularDataModule(frame, target="y", split_column="split")
    data.setup("fit")
    state = data.state_dict()["preprocessing"]
    assert state["medians"] == {"x": 5.0}
    assert state["quantiles"]["x"][0] == pytest.approx(np.quantile([5, *range(1, 10)], np.linspace(0, 1, 10)))
    assert state["categories"] == {"colour": ["blue", "red"]}
    test_features, _ = data.table("test").tensors
    assert test_features[:, 1:].sum() == 0  # "gold" was never seen in training: all zeros, not an error


def test_new_rows_with_unseen_categories_and_new_missing_values(tmp_path):
    new = pd.DataFrame({"x": [np.nan, 0.5], "colour": ["purple", "red"], "name": ["a", "b"]})
    new.to_csv(tmp_path / "new.csv", index=False)  # no target column, a missing x that training never had
    data = TabularDataModule(rule_table(), target="y", drop=["name", "noise"], predict_csv=tmp_path / "new.csv")
    (features,) = set_up(data, "predict").table("predict").tensors
    assert torch.isfinite(features).all()
    assert features[0, 1:].sum() == 0 and features[1, 1:].sum() == 1  # purple: no colour column set


def test_prediction_rows_name_each_row_by_its_place_in_its_file_and_its_id(tmp_path):
    frame = rule_table(50).assign(id=[f"p{i}" for i in range(50)])
    data = set_up(TabularDataModule(frame, target="y", drop=["name"], id_column="id"), "predict")
    rows = data.prediction_rows()  # no predict_csv: the test split, by its rows' places in the table
    assert rows.columns.tolist() == ["row", "id"] and rows["row"].tolist() == data.frames["test"].index.tolist()
    assert rows["id"].tolist() == [f"p{row}" for row in rows["row"]]
    frame.iloc[[4, 2]].drop(columns="id").to_csv(tmp_path / "new.csv", index=False)
    data.predict_csv = str(tmp_path / "new.csv")  # a new file without the id column: rows by place alone
    assert data.prediction_rows().to_dict("list") == {"row": [0, 1]}


def test_predicting_needs_only_the_preprocessing_of_a_checkpoint(tmp_path):
    trained = TabularDataModule(rule_table(), target="y", drop=["name"])
    trained.setup("fit")
    rule_table(5, seed=1).drop(columns="y").to_csv(tmp_path / "new.csv", index=False)
    data = TabularDataModule(None, target="y", drop=["name"], predict_csv=tmp_path / "new.csv")
    data.load_state_dict(trained.state_dict())  # before setup, as the command line and load_run give it
    data.setup("predict")  # reads the new rows alone
    assert data.facts == trained.facts
    preprocessing = TablePreprocessing.from_state_dict(trained.state_dict()["preprocessing"])
    assert np.array_equal(
        data.table("predict").tensors[0].numpy(), preprocessing.transform(pd.read_csv(tmp_path / "new.csv"))
    )
    with pytest.raises(ValueError, match=re.escape("TabularDataModule needs csv=... to train, validate or test")):
        TabularDataModule(None, target="y").setup("fit")


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([True, False, True], "binary"),
        ([0.0, 1.0, 1.0], "binary"),
        (["a", "b", "c"], "multiclass"),
        (list(range(20)), "multiclass"),  # whole numbers, at most MAX_CLASSES of them: classes
        (list(range(21)), "regression"),
        ([0.5, 1.0, 2.0], "regression"),
    ],
)
def test_the_task_is_read_from_the_target(values, task):
    assert detect_task(pd.Series(values)) == task


def test_class_names_targets_and_weights_as_given():
    frame = pd.DataFrame({"x": range(20), "y": [0.0, 1.0] * 10})  # float labels are named as whole numbers
    data = TabularDataModule(frame, target="y", class_weights=[1, 3])
    assert data.hparams["csv"] is None  # a DataFrame is data: checkpoints would need pickle for it
    data.setup("test")  # each stage builds its tables at setup, so that bad input fails before any step
    assert set(data.tables) == {"test"}
    assert data.facts.class_names == ("0", "1") and data.facts.class_weights == (1.0, 3.0)
    booleans = set_up(TabularDataModule(frame.assign(y=frame["y"] > 0), target="y"))
    assert booleans.facts.class_names == ("False", "True")
    assert data.table("train").tensors[1].tolist() == data.frames["train"]["y"].astype(int).tolist()


def test_a_task_given_by_hand_travels_in_the_state_not_the_settings():
    frame = pd.DataFrame({"x": range(20), "y": [0, 1] * 10})
    forced = TabularDataModule(frame, target="y", task="multiclass")
    forced.setup("fit")
    restored = TabularDataModule(frame, target="y")  # as load_from_checkpoint builds it: task is not a setting
    restored.load_state_dict(forced.state_dict())
    assert restored.facts.task == "multiclass" and restored._frames()["train"].attrs["task"] == "multiclass"


def test_a_regression_target_is_fed_standardised_by_default_or_as_it_is():
    frame = pd.DataFrame({"x": range(10), "y": [float(v) for v in range(0, 20, 2)]})
    plain = set_up(TabularDataModule(frame, target="y", task="regression", standardize_target=False))
    assert (plain.facts.target_mean, plain.facts.target_std) == (0.0, 1.0)
    scaled = set_up(TabularDataModule(frame, target="y", task="regression"))
    train = scaled._frames()["train"]["y"]  # read and split once, then kept
    assert (scaled.facts.target_mean, scaled.facts.target_std) == pytest.approx((train.mean(), train.std(ddof=0)))
    targets = scaled.table("train").tensors[1]
    assert torch.allclose(targets, torch.tensor(((train - train.mean()) / train.std(ddof=0)).to_numpy()).float())


def test_stratified_seeded_split():
    frame = rule_table(500)
    data = TabularDataModule(frame, target="y", drop=["name"], val_fraction=0.2, test_fraction=0.2, seed=3)
    shares = {split: rows["y"].mean() for split, rows in data._frames().items()}
    assert max(shares.values()) - min(shares.values()) < 0.02
    assert {split: len(rows) for split, rows in data.frames.items()} == {"train": 300, "val": 100, "test": 100}
    again = TabularDataModule(frame, target="y", drop=["name"], seed=3)._frames()
    other = TabularDataModule(frame, target="y", drop=["name"], seed=4)._frames()
    assert again["test"].index.equals(data.frames["test"].index)
    assert not other["test"].index.equals(data.frames["test"].index)
    assert set(data.frames["train"].index).isdisjoint(data.frames["test"].index)


def test_multiclass_labels_regression_targets_and_separate_test_file(tmp_path):
    frame = rule_table()
    frame["grade"] = np.where(frame["x"] > 0.5, "high", np.where(frame["x"] < -0.5, "low", "mid"))
    frame.iloc[300:].to_csv(tmp_path / "test.csv", index=False)
    data = TabularDataModule(frame.iloc[:300], target="grade", drop=["name", "y", "x"], test_csv=tmp_path / "test.csv")
    set_up(data, "test")
    assert data.facts.task == "multiclass" and data.facts.class_names == ("high", "low", "mid")
    assert len(data.table("test")) == 100
    L.seed_everything(0)
    with_x = TabularDataModule(frame.iloc[:300], target="grade", drop=["name", "y"], test_csv=tmp_path / "test.csv")
    _, metrics = fit(MLPClassifier(hidden_dims=[16], lr=0.03), with_x)
    assert metrics["test/acc"] >= 0.85  # the grade is a function of x
    frame["price"] = frame["x"] * 3.7
    regression = set_up(TabularDataModule(frame, target="price", drop=["name", "grade"]))
    assert regression.facts.task == "regression" and regression.facts.num_classes is None
    assert regression.table("train").tensors[1].dtype == torch.float32


def test_too_many_categories_go_to_other():
    frame = rule_table()
    frame["city"] = [f"city {i % 30}" for i in range(len(frame))]
    with pytest.warns(UserWarning, match="column 'city' has 30 distinct values .* keeping the 5 most frequent"):
        data = set_up(TabularDataModule(frame, target="y", drop=["name"], max_categories=5))
        names = data.feature_names
    assert [name for name in names if name.startswith("city=")][-1] == "city=<other>"
    assert len([name for name in names if name.startswith("city=")]) == 6


def test_balanced_class_weights_reach_the_loss():
    frame = rule_table()
    data = set_up(TabularDataModule(frame, target="y", drop=["name"], class_weights="balanced"))
    weights, train = data.facts.class_weights, data.frames["train"]["y"]
    assert weights == pytest.approx([len(train) / (2 * (train == c).sum()) for c in (0, 1)])
    weighted, plain = MLPClassifier(), MLPClassifier(class_weights=[1.0, 1.0])
    weighted.build(data.facts)  # the data's weights, as the Trainer's setup gives them
    plain.build(data.facts)
    plain.load_state_dict(weighted.state_dict())
    features, targets = data.table("train").tensors
    with torch.no_grad():
        scores = weighted.eval()(features)  # evaluation mode: no dropout, so only the weights differ
        assert torch.equal(scores, plain.eval()(features))
    by_hand = torch.nn.functional.cross_entropy(scores, targets, weight=torch.tensor(weights, dtype=torch.float32))
    assert weighted.compute_loss(scores, targets) == pytest.approx(by_hand.item())
    assert not torch.isclose(weighted.compute_loss(scores, targets), plain.compute_loss(scores, targets))


def test_rows_without_target_are_dropped_with_a_warning():
    frame = rule_table()
    frame.loc[:9, "y"] = np.nan
    with pytest.warns(UserWarning, match="dropped 10 rows of the DataFrame whose target is missing"):
        data = TabularDataModule(frame, target="y", drop=["name"])
        assert sum(len(rows) for rows in data._frames().values()) == len(frame) - 10


@pytest.mark.parametrize("source", ["csv", "DataFrame"])
def test_checkpoint_restores_model_and_preprocessing_for_new_rows(source, tmp_path):
    L.seed_everything(1)
    csv = tmp_path / "people.csv"
    rule_table().to_csv(csv, index=False)
    table = csv if source == "csv" else rule_table()  # from a DataFrame, it failed: "missing ... 'csv'"
    data = TabularDataModule(table, target="y", drop=["name"], log1p=[], batch_size=32)
    model = ScratchDeepNet(hidden_dims=[8], task="binary", init="tutorial")
    trainer = L.Trainer(max_epochs=2, default_root_dir=tmp_path, **{**NO_LOGGER, "logger": True})
    trainer.fit(model, data)
    checkpoint = trainer.checkpoint_callback.best_model_path  # with no monitor: the latest epoch's
    assert torch.load(checkpoint, weights_only=True)["TabularDataModule"]["preprocessing"]["numeric"] == ["x", "noise"]

    new_rows = tmp_path / "new.csv"
    rule_table(20, seed=9).drop(columns=["y"]).to_csv(new_rows, index=False)
    csv.unlink()  # the training table is gone: the checkpoint alone must do
    restored_data = TabularDataModule.load_from_checkpoint(checkpoint, predict_csv=new_rows)
    restored = ScratchDeepNet.load_from_checkpoint(checkpoint)
    predictions = torch.cat(L.Trainer(**NO_LOGGER).predict(restored, datamodule=restored_data))
    data.predict_csv = new_rows
    data.tables.pop("predict", None)
    model.eval()
    with torch.no_grad():
        expected = model.predict_step(data.table("predict").tensors, 0)
    assert torch.equal(predictions, expected)


def test_example_tables_are_what_their_script_makes():
    tables = runpy.run_path(str(ROOT / "scripts" / "make_examples.py"))["TABLES"]
    for name, (make, rows) in tables.items():
        assert make(rows).to_csv(index=False) == (EXAMPLES / name).read_text(), name


def test_one_hot_encoding_a_wide_column_peaks_near_the_array_it_makes():
    """100,000 rows of a 3,000-value column: the peak is at most 1.5 x the float32 array, beyond the rows read."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"shop": rng.integers(0, 3000, 100_000).astype(str), "sales": rng.normal(size=100_000)})
    preprocessing = TablePreprocessing.fit(frame, ["sales"], ["shop"], [], max_categories=3000)
    tracemalloc.start()
    try:
        features = preprocessing.transform(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert features.shape == (100_000, 3001) and features.dtype == np.float32
    assert peak <= 1.5 * features.nbytes, f"peak {peak / 2**20:.0f} MiB for a {features.nbytes / 2**20:.0f} MiB array"


def interval_warnings(data: TabularDataModule, tmp_path) -> tuple[L.Trainer, list[str]]:
    """A one-epoch fit, and Lightning's warnings that the epoch is shorter than the logging interval."""
    trainer = L.Trainer(max_epochs=1, enable_checkpointing=False, default_root_dir=tmp_path, enable_progress_bar=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # over pyproject's filter of this very warning in tests
        trainer.fit(MLPClassifier(hidden_dims=[4]), data)
    return trainer, [str(w.message) for w in seen if "smaller than the logging interval" in str(w.message)]


def test_a_batch_size_chosen_by_the_table_never_makes_lightning_warn_of_its_logging_interval(tmp_path):
    frame = pd.DataFrame({"a": np.arange(300) % 17, "y": np.arange(300) % 2})  # 180 training rows: batches of 16
    data = TabularDataModule(frame, target="y")
    trainer, warned = interval_warnings(data, tmp_path)
    assert data.batch_size == 16 and trainer.log_every_n_steps == 12  # ceil(180 / 16): the loss logged every epoch
    assert warned == []  # failed: Lightning warned of the batch size we chose
    trainer, warned = interval_warnings(TabularDataModule(frame, target="y", batch_size=16), tmp_path)
    assert trainer.log_every_n_steps == 50 and len(warned) == 1  # a batch size given: Lightning's word stands


@pytest.mark.parametrize("option", ["id_column", "split_column"])
def test_an_id_or_split_column_not_in_the_table_is_refused_naming_it(option):
    data = TabularDataModule(rule_table(40), target="y", **{option: "nope"})
    with pytest.raises(ValueError, match=re.escape(f"columns ['nope'] (in {option}) not in the DataFrame")):
        data.setup("fit")


def test_a_log1p_column_holding_minus_one_is_refused():
    train = pd.DataFrame({"a": [0.0, 3.0, -1.0]})
    with pytest.raises(ValueError, match=r"log1p column 'a' has values of -1 or less \(min -1.0\)"):
        TablePreprocessing.fit(train, ["a"], [], ["a"])


def test_a_single_training_row_scales_to_the_middle():
    fitted = TablePreprocessing.fit(pd.DataFrame({"a": [5.0]}), ["a"], [], [])
    assert fitted.transform(pd.DataFrame({"a": [5.0]})).tolist() == [[0.0]]


@pytest.mark.parametrize("target", ["y", "x"], ids=["classes", "numbers"])
def test_folds_validate_every_row_not_tested_once_and_keep_the_test_rows(target):
    frame = rule_table(503)
    plain = TabularDataModule(frame, target=target, drop=["name"], seed=3)._frames()
    splits = [
        TabularDataModule(frame, target=target, drop=["name"], folds=5, fold=k, seed=3)._frames() for k in range(5)
    ]
    validated = [set(split["val"].index) for split in splits]
    not_tested = set(frame.index) - set(plain["test"].index)
    assert set().union(*validated) == not_tested and sum(map(len, validated)) == len(not_tested)  # each row once
    assert sorted(map(len, validated)) in ([80] * 5, [80, 80, 80, 80, 81], [80, 80, 80, 81, 81])  # 402 rows / 5
    for split, val in zip(splits, validated, strict=True):
        assert split["test"].index.equals(plain["test"].index)  # the test rows of the same seed without folds
        assert set(split["train"].index) == not_tested - val
    if target == "y":  # every fold holds each class in its share, to a row
        share = frame.loc[sorted(not_tested), "y"].sum() / 5
        assert all(abs(split["val"]["y"].sum() - share) <= 1 for split in splits)


def test_the_folds_share_one_preprocessing_learnt_from_every_row_not_tested():
    frame = rule_table(300)
    folds = [TabularDataModule(frame, target="x", drop=["name"], folds=3, fold=k, seed=3) for k in range(3)]
    for data in folds:
        data.setup("fit")
    not_tested = frame.drop(index=folds[0].frames["test"].index)
    by_hand = TablePreprocessing.fit(not_tested, ["noise", "y"], ["colour"], [])  # y: a number beside target x
    assert all(data.fitted["preprocessing"] == by_hand.state_dict() for data in folds)  # failed: each its own rows
    assert all(data.facts.target_mean == pytest.approx(not_tested["x"].mean()) for data in folds)
    assert [data.facts.training_rows for data in folds] == [len(data.frames["train"]) for data in folds]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"folds": 1}, "folds must be a whole number of at least 2, got 1"),
        ({"folds": 5, "fold": 5}, "fold must be from 0 to 4 (folds=5), got 5"),
        ({"fold": 2}, "fold=2 needs folds: pass folds=K (e.g. 5) as well, or run `litmodules cv`"),
        ({"folds": 3, "split_column": "s"}, "folds and split_column='s' both say which rows validate: choose one"),
    ],
)
def test_folds_that_cannot_be_are_refused(options, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        TabularDataModule(rule_table(40), target="y", **options)
