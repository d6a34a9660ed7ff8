"""The benchmarks' clocks, and the MLP comparison run end to end on a small MNIST (its figures are not checked)."""

from __future__ import annotations

from contextlib import chdir

import pandas as pd
import pytest
from conftest import fake_digits, write_idx

from benchmarks import growth, mlp, tables, tune
from benchmarks.timing import side_by_side, summary


def test_the_headline_is_the_median_whole_epoch_and_the_diagnostics_sit_beside_it():
    runs = [(10, [1.0, 2.0, 0.5]), (10, [3.0, 1.0, 0.5]), (10, [1.0, 1.0, 4.0])]  # two steps, then the end
    row = summary(runs)
    assert row["median_epoch_s"] == 4.5 and row["epochs_s"] == [3.5, 4.5, 6.0] and row["samples_per_s"] == 2
    assert row["median_step_us"] == 1_000_000  # of the six steps 1, 2, 3, 1, 1, 1 (ends left out)
    assert row["per_step_minimum_epoch_s"] == 2.5  # 1 + 1 + 0.5


def test_slow_paths_run_at_most_twice_and_the_others_interleaved():
    order: list[str] = []

    def path(name: str):
        return lambda: order.append(name) or (1, [0.1, 0.0])

    side_by_side({"slow": path("slow"), "fast": path("fast")}, repeats=3, at_most_twice=["slow"])
    assert order == ["slow", "fast", "slow", "fast", "fast"]


@pytest.fixture(scope="module")
def mnist_of_5100(tmp_path_factory):
    """5,100 training images: the configs' 5,000 for validation, 100 to train on."""
    root = tmp_path_factory.mktemp("mnist5100")
    write_idx(root / "MNIST" / "raw", "train", *fake_digits(5_100, seed=0))
    write_idx(root / "MNIST" / "raw", "t10k", *fake_digits(20, seed=1))
    return root


def test_every_path_of_the_mlp_part_trains_one_epoch_of_the_config(mnist_of_5100, tmp_path):
    with chdir(tmp_path):
        rows = side_by_side(mlp.paths(str(mnist_of_5100), batch_size=64), repeats=1)
    samples = {name: row["samples"] for name, row in rows.items()}
    assert samples == {"tutorial": 5100, "tensor_loop": 100, "lightning_floor": 100, "plain_trainer": 100, "ours": 100}
    assert all(row["median_epoch_s"] > 0 for row in rows.values())


def test_the_tune_part_runs_both_searches_of_the_mnist_search_file(mnist_of_5100, tmp_path, capsys):
    with chdir(tmp_path):
        result = tune.run(str(mnist_of_5100), trials=2, epochs=1)
    assert {name: row["complete"] + row["pruned"] for name, row in result["searches"].items()} == {
        "pruned": 2,
        "unpruned": 2,
    }
    assert 0 <= result["default_val_acc"] <= 1 and "pruned search: " in capsys.readouterr().out


def test_the_tables_summary_compares_ours_with_each_anchor_by_table_means(capsys):
    rows = []
    for seed, (ours, lightgbm, catboost) in enumerate([(0.80, 0.78, 0.84), (0.84, 0.80, 0.82)]):  # table a
        rows.append({"table": "a", "seed": seed, "ours": ours, "lightgbm": lightgbm, "catboost": catboost})
    rows.append({"table": "b", "seed": 0, "ours": 0.5, "lightgbm": 0.6, "catboost": 0.7})
    for row, seconds in zip(rows, [(4, 1, 2), (6, 1, 2), (30, 2, 10)], strict=True):
        row |= {"linear": 0.0, "ours_s": seconds[0], "lightgbm_s": seconds[1], "catboost_s": seconds[2], "linear_s": 0}
    against = tables.summary(pd.DataFrame(rows))
    # a: ours 0.82, LightGBM 0.79, CatBoost 0.83; b: 0.5, 0.6, 0.7. Time ratios a 5/1, 5/2; b 30/2, 30/10
    assert against["lightgbm"] == pytest.approx(
        {"ahead": 1, "tables": 2, "mean_gap": (-0.03 + 0.1) / 2, "worst_gap": 0.1, "median_time_ratio": 10.0}
    )
    assert against["catboost"] == pytest.approx(
        {"ahead": 0, "tables": 2, "mean_gap": (0.01 + 0.2) / 2, "worst_gap": 0.2, "median_time_ratio": 2.75}
    )
    assert "ours ahead of CatBoost on 0 of 2 tables" in capsys.readouterr().out


def test_a_grown_table_draws_its_rows_from_the_table_and_blurs_only_its_measurements(tmp_path):
    frame = pd.DataFrame({"x": [float(i) for i in range(40)], "code": [i % 3 for i in range(40)], "c": ["a", "b"] * 20})
    frame.to_csv(tmp_path / "t.csv", index=False)
    grown = growth.resampled(tmp_path / "t.csv", 1000)
    assert len(grown) == 1000 and set(grown["c"]) == {"a", "b"} and set(grown["code"]) <= {0, 1, 2}  # as they were
    blur = grown["x"] - grown["x"].round()
    assert 0 < blur.abs().max() < 0.01 * frame["x"].std() * 5 and grown["x"].round().isin(frame["x"]).all()
