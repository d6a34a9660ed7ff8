"""Tables against gradient boosting: ours, LightGBM, CatBoost and a linear model on every table, same splits.

    python -m benchmarks.tables --tables ../shared/data/tables [--seeds 3] [--only NAME ...]
        [--args '--trainer.max_epochs 30' ...] [--net nnmodules.TabM] [--cv K] [--json FILE]

Needs the benchmark extra: `pip install -e '.[bench]'` (LightGBM, CatBoost, scikit-learn), imported where
used: the summary needs none of it.
The folder holds a `tables.json` naming each table's file, target and task. For each
table and seed (0, 1, ...), `TabularDataModule(csv, target, seed=seed)` splits the rows
(60% train, 20% validation, 20% test), and four models learn from the same rows:

- ours: the plain command line, `litmodules fit --model MLPClassifier` (`MLPRegressor` for a
  numeric target) `--data TabularDataModule --data.csv X --data.target Y`, with the
  project's defaults and any `--args` given; the best checkpoint by validation loss is tested
  (`--net N`: `Classifier`/`Regressor` over network N instead; `--cv K`: `litmodules cv --folds K`
  with the same options, its folds as one model tested on the same test rows, timed whole);
- LightGBM: its defaults, with the table's own columns (categories as pandas categories,
  dates as their parts), early stopping on the validation rows (50 rounds);
- CatBoost: its defaults, with the same columns (categories as its categorical features, missing ones as a
  category of their own), early stopping on the validation rows (50 rounds), its best iteration kept;
- linear: scikit-learn's logistic regression or ridge regression on our preprocessed features.

Each is scored on the test rows (binary: ROC AUC, multiclass: accuracy, regression: R²) and
timed (its fit, wall clock). The summary, against each of LightGBM and CatBoost: the tables where
ours is ahead (mean over seeds), the mean and worst gap (the anchor's score minus ours: below 0 is
ours ahead), and the median ratio of fit times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch

from datamodules import TabularDataModule
from datamodules.tabular.preprocess import MISSING, TablePreprocessing, with_date_parts
from nnmodules.cli import LitCLI
from nnmodules.cli.cv import cross_validate
from nnmodules.runs import load_run

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--test_after_fit=false"]


def score(task: str, targets: np.ndarray, outputs: np.ndarray) -> float:
    """Binary: ROC AUC of the positive class's probability; multiclass: accuracy; regression: R²."""
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score  # the bench extra, imported where used

    if task == "binary":
        return float(roc_auc_score(targets, outputs[:, 1]))
    if task == "multiclass":
        return float(accuracy_score(targets, outputs.argmax(axis=1)))
    return float(r2_score(targets, outputs))


def ours(
    path: Path, target: str, seed: int, extra: list[str], net: str | None = None, folds: int | None = None
) -> tuple[float, float, str]:
    """The plain command line's fit, then the best checkpoint's predictions on the test rows.

    `net`: the task (`Classifier`, `Regressor`) over this network instead of the MLP presets. `folds`:
    `litmodules cv --folds K` instead of a fit, and the predictions of its folds as one model (the same test rows).
    """
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        probe = TabularDataModule(path, target=target, seed=seed)
        probe.setup("fit")  # the task is the table's: known once read
        regression = probe.facts.task == "regression"
        model = ["--model", "MLPRegressor" if regression else "MLPClassifier"]
        if net:
            model = ["--model", "Regressor" if regression else "Classifier", "--model.net", net]
        args = [*model, "--data", "TabularDataModule", f"--data.csv={path}", f"--data.target={target}"]
        args = [*args, f"--data.seed={seed}", f"--seed_everything={seed}", *QUIET, *extra]
        start = time.perf_counter()
        if folds:
            summary = cross_validate(folds, args)
            seconds = time.perf_counter() - start
            model, data = load_run(summary["ensemble"]["checkpoint"])
            trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
            predictions = torch.cat(trainer.predict(model, datamodule=data))
        else:
            cli = LitCLI(args)
            cli.trainer.fit(cli.model, cli.datamodule)
            seconds = time.perf_counter() - start
            data = cli.datamodule
            predictions = torch.cat(cli.trainer.predict(cli.model, datamodule=data, ckpt_path="best"))
        targets = data.table("test").tensors[1]
        if data.facts.task == "regression":
            targets = targets * data.facts.target_std + data.facts.target_mean
        return score(data.facts.task, targets.numpy(), predictions.numpy()), seconds, data.facts.task


def frames(path: Path, target: str, seed: int) -> tuple[TabularDataModule, dict[str, pd.DataFrame]]:
    """The data module's split, and each split's feature columns as LightGBM takes them."""
    data = TabularDataModule(path, target=target, seed=seed)
    data.setup("fit")
    data.setup("test")
    preprocessing = TablePreprocessing.from_state_dict(data.fitted["preprocessing"])
    parts = {f"{name}.{part}" for name, date in preprocessing.dates.items() for part in date["parts"]}
    numeric = [name for name in preprocessing.numeric if name not in parts]
    tables = {}
    for split in ("train", "val", "test"):
        rows = with_date_parts(data.frames[split], preprocessing.dates)
        features = {name: pd.to_numeric(rows[name], errors="coerce") for name in [*numeric, *sorted(parts)]}
        for name in preprocessing.categorical:
            categories = sorted(data.frames["train"][name].dropna().astype(str).unique())
            features[name] = pd.Categorical(rows[name].astype(str).where(rows[name].notna()), categories=categories)
        tables[split] = pd.DataFrame(features, index=rows.index)
    return data, tables


def targets_of(data: TabularDataModule) -> dict[str, np.ndarray]:
    """Each split's targets as the boosted trees learn them: classes, or numbers in the target's units."""
    targets = {split: data.table(split).tensors[1].numpy() for split in ("train", "val", "test")}
    if data.facts.task == "regression":
        targets = {split: values * data.facts.target_std + data.facts.target_mean for split, values in targets.items()}
    return targets


def lightgbm_fit(path: Path, target: str, seed: int) -> tuple[float, float]:
    """LightGBM on the same rows: its test score and fit seconds."""
    import lightgbm

    data, tables = frames(path, target, seed)
    targets = targets_of(data)
    model_class = lightgbm.LGBMRegressor if data.facts.task == "regression" else lightgbm.LGBMClassifier
    model = model_class(n_estimators=2000, random_state=seed, verbose=-1)
    start = time.perf_counter()
    model.fit(
        tables["train"],
        targets["train"],
        eval_set=[(tables["val"], targets["val"])],
        callbacks=[lightgbm.early_stopping(50, verbose=False)],
    )
    seconds = time.perf_counter() - start
    outputs = model.predict(tables["test"]) if data.facts.task == "regression" else model.predict_proba(tables["test"])
    return score(data.facts.task, targets["test"], outputs), seconds


def catboost_fit(path: Path, target: str, seed: int) -> tuple[float, float]:
    """CatBoost on the same rows, its defaults: its test score and fit seconds."""
    import catboost

    data, tables = frames(path, target, seed)
    categorical = [name for name, column in tables["train"].items() if isinstance(column.dtype, pd.CategoricalDtype)]
    for split, table in tables.items():  # CatBoost takes categories as strings; a missing one is one of them
        tables[split] = table.assign(
            **{name: table[name].astype(object).fillna(MISSING).astype(str) for name in categorical}
        )
    targets = targets_of(data)
    model_class = catboost.CatBoostRegressor if data.facts.task == "regression" else catboost.CatBoostClassifier
    model = model_class(random_seed=seed, verbose=0, allow_writing_files=False, cat_features=categorical)
    start = time.perf_counter()
    model.fit(tables["train"], targets["train"], eval_set=(tables["val"], targets["val"]), early_stopping_rounds=50)
    seconds = time.perf_counter() - start
    outputs = model.predict(tables["test"]) if data.facts.task == "regression" else model.predict_proba(tables["test"])
    return score(data.facts.task, targets["test"], outputs), seconds


def linear_fit(path: Path, target: str, seed: int) -> tuple[float, float]:
    """The linear model on our preprocessed features: its test score and fit seconds."""
    from sklearn.linear_model import LogisticRegression, Ridge

    data = TabularDataModule(path, target=target, seed=seed)
    data.setup("fit")
    data.setup("test")
    (x_train, y_train), (x_test, y_test) = (data.table(split).tensors for split in ("train", "test"))
    if data.facts.task == "regression":
        model = Ridge(alpha=1.0)
    else:
        model = LogisticRegression(max_iter=2000)
    start = time.perf_counter()
    model.fit(x_train.numpy(), y_train.numpy())
    seconds = time.perf_counter() - start
    outputs = model.predict(x_test.numpy()) if data.facts.task == "regression" else model.predict_proba(x_test.numpy())
    if data.facts.task == "regression":  # R² is the same in the target's units as in the deviations fed
        return score("regression", y_test.numpy(), outputs), seconds
    return score(data.facts.task, y_test.numpy(), outputs), seconds


def main() -> None:
    """Every table and seed, each model; the table of scores and the summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", required=True, help="a folder with tables.json and the tables it names")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="+", help="these tables of tables.json")
    parser.add_argument(
        "--args", default="", help="more command-line arguments for ours, e.g. '--trainer.max_epochs 30'"
    )
    parser.add_argument("--net", help="ours: Classifier or Regressor over this network (e.g. nnmodules.TabM)")
    parser.add_argument("--cv", type=int, metavar="K", help="ours: `litmodules cv --folds K`, its folds as one model")
    parser.add_argument("--json", default="lightning_logs/benchmark_tables.json")
    options = parser.parse_args()
    folder = Path(options.tables).resolve()
    listed = json.loads((folder / "tables.json").read_text())
    names = [name for name in listed if not options.only or name in options.only]
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # no roles tables, no fit summaries
    warnings.simplefilter("ignore")
    rows = []
    for name in names:
        path, target = folder / listed[name]["file"], listed[name]["target"]
        for seed in range(options.seeds):
            our_score, our_seconds, task = ours(path, target, seed, options.args.split(), options.net, options.cv)
            row = {"table": name, "task": task, "seed": seed, "ours": our_score, "ours_s": our_seconds}
            for model, fit in (("lightgbm", lightgbm_fit), ("catboost", catboost_fit), ("linear", linear_fit)):
                row[model], row[f"{model}_s"] = fit(path, target, seed)
            rows.append(row)
            print(
                f"{name:14} {task:10} seed {seed}: "
                + "  ".join(f"{model} {row[model]:.4f} ({row[f'{model}_s']:6.1f} s)" for model in MODELS),
                flush=True,
            )
    against = summary(pd.DataFrame(rows))
    os.makedirs(os.path.dirname(os.path.abspath(options.json)), exist_ok=True)
    measured = {"command": options.args, "net": options.net, "cv": options.cv, "rows": rows, "against": against}
    Path(options.json).write_text(json.dumps(measured, indent=2))


MODELS = ("ours", "lightgbm", "catboost", "linear")
ANCHORS = {"lightgbm": "LightGBM", "catboost": "CatBoost"}  # what ours is measured against


def summary(rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Prints each table's mean scores and seconds, and the comparison with each anchor; returns the latter.

    Against each anchor: the tables where ours is ahead, the mean and worst gap (the anchor's score minus ours),
    the median ratio of fit times.
    """
    means = rows.groupby("table").mean(numeric_only=True)
    print(
        "\n"
        + f"{'table':14}"
        + "".join(f"{model:>10}" for model in MODELS)
        + "".join(f"{m + ' s':>12}" for m in MODELS)
    )
    for name, row in means.iterrows():
        scores = "".join(f"{row[model]:10.4f}" for model in MODELS)
        print(f"{name:14}{scores}" + "".join(f"{row[f'{model}_s']:12.1f}" for model in MODELS))
    against = {}
    for anchor, shown in ANCHORS.items():
        gaps = means[anchor] - means["ours"]  # below 0: ours ahead
        ratios = means["ours_s"] / means[f"{anchor}_s"]
        against[anchor] = {
            "ahead": int((gaps < 0).sum()),
            "tables": len(gaps),
            "mean_gap": float(gaps.mean()),
            "worst_gap": float(gaps.max()),
            "median_time_ratio": float(statistics.median(ratios)),
        }
        print(
            f"ours ahead of {shown} on {int((gaps < 0).sum())} of {len(gaps)} tables; gap ({shown} - ours): mean "
            f"{gaps.mean():+.4f}, worst {gaps.max():+.4f} ({gaps.idxmax()}); fit time ours / {shown}: median "
            f"{statistics.median(ratios):.1f}x"
        )
    return against


if __name__ == "__main__":
    main()
