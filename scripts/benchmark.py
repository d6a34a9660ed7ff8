"""Benchmarks, each measured side by side in one process.

    python scripts/benchmark.py --data-dir ../shared/data [--batch-sizes 64 128] [--json benchmark.json]
    python scripts/benchmark.py --tabular [--seeds 5]
    python scripts/benchmark.py --toy [--seeds 5]
    python scripts/benchmark.py --summaries --data-dir ../shared/data
    python scripts/benchmark.py --accuracy --data-dir ../shared/data

Default: one MNIST training epoch three ways, at each batch size (64, the
tutorial's, and 128, our default). All train the tutorial's 784-128-128-10 MLP
with Adam at a constant 1e-3, in this one process, one after the other:

  (a) tutorial:    torchvision MNIST + ToTensor + Normalize + DataLoader(shuffle=True),
                   a plain PyTorch loop over the 60,000 training images;
  (b) tensor loop: the practical floor, a hand-written loop over one normalised
                   in-memory tensor of the 55,000 training images (no Lightning,
                   no DataLoader);
  (c) trainer:     MLPClassifier + MNISTDataModule through the Trainer with the
                   project's default logging and checkpointing; its epoch (55,000
                   images) is timed from epoch start to epoch end, so it includes
                   the validation pass and the checkpoint write that (a) and (b) skip.

It prints samples per second of each and the ratios (c)/(a) and (b)/(c). Timings
on a shared machine are noisy: each path runs `--repeats` times, interleaved, and
its fastest epoch counts; ratios measured in one run are the figures to compare.

--tabular: test accuracy on examples/people.csv of the scratch net with the
tutorials' recipe (configs/tabular_scratch.yaml) against a logistic regression
(MLPClassifier without hidden layers), on the same split, for each seed.

--summaries: what the figure callback at its default frequency (ClassificationFigures:
confusion matrix and misclassified digits every 2 epochs) adds to MNIST MLP epochs.

--accuracy: the default MNIST config's training time until its test accuracy
first reaches 98% (the test set is scored after each epoch, off the clock), and
the peak memory (RSS) of a `litmodules fit` run of that config against the
raw data's size plus what the interpreter and libraries take by themselves.

--toy: the toy regression's default recipe (configs/toy_regression.yaml: 100
full-batch epochs, figures every 50): time of Trainer.fit, per epoch, and where
it goes (Lightning's SimpleProfiler); then test MSE, f(0) and (f(1) - f(-1)) / 2
for each seed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.profilers import SimpleProfiler
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from datamodules import MNISTDataModule, TabularDataModule, ToyRegressionDataModule
from datamodules.mnist import Normalize
from nnmodules import MLPClassifier, ScratchDeepNet, ToyRegressor
from nnmodules.cli import CHECKPOINT_DEFAULTS, make_trainer
from nnmodules.figures import ClassificationFigures, RegressionFigures

PEOPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "people.csv")


def tutorial_epoch(data_dir: str, batch_size: int) -> tuple[int, float]:
    """(a): the tutorial's loop, one epoch. Returns (samples, seconds)."""
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_set = datasets.MNIST(data_dir, train=True, download=True, transform=transform)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for images, labels in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
    return len(train_set), time.perf_counter() - start


def tensor_loop_epoch(data_dir: str, batch_size: int) -> tuple[int, float]:
    """(b): the same network and optimizer over one in-memory tensor, by hand. Returns (samples, seconds)."""
    data = MNISTDataModule(data_dir, batch_size=batch_size)
    data.setup("fit")
    raw_images, labels = data.tables["train"].tensors
    images = Normalize()(raw_images)  # once, before the clock starts
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)  # as our default optimizer
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    order = torch.randperm(len(images))
    for first in range(0, len(images), batch_size):
        batch = order[first : first + batch_size]
        optimizer.zero_grad()
        loss = loss_fn(model(images[batch]), labels[batch])
        loss.backward()
        optimizer.step()
    return len(images), time.perf_counter() - start


class EpochTimer(L.Callback):
    """Times each training epoch, from its start to its end (validation and checkpoint included)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def trainer_epoch(data_dir: str, batch_size: int, log_dir: str) -> tuple[int, float]:
    """(b): our modules through the Trainer with default logging and checkpointing. Returns (samples, seconds)."""
    L.seed_everything(0, verbose=False)
    data = MNISTDataModule(data_dir, batch_size=batch_size)
    model = MLPClassifier(dropout=0.0, lr=1e-3, lr_schedule="constant")  # the tutorial's network and optimizer
    timer = EpochTimer()
    trainer = make_trainer("benchmark", max_epochs=1, enable_progress_bar=False, enable_model_summary=False)
    trainer.callbacks.append(timer)
    cwd = os.getcwd()
    os.chdir(log_dir)  # its lightning_logs/ goes to a temporary folder
    try:
        trainer.fit(model, data)
    finally:
        os.chdir(cwd)
    return len(data.tables["train"]), timer.seconds[0]


def tabular_test_accuracy(model_class: type, model_args: dict, seed: int, log_dir: str) -> float:
    """Fits a model for 30 epochs on people.csv split with `seed`, then tests its best checkpoint."""
    L.seed_everything(seed, verbose=False)
    data = TabularDataModule(PEOPLE, target="renewed", drop=["id"], log1p=["income"], batch_size=8, seed=seed)
    model = model_class(input_dim=data.num_features, num_classes=data.num_classes, **model_args)
    trainer = make_trainer("benchmark", max_epochs=30, enable_progress_bar=False, enable_model_summary=False)
    cwd = os.getcwd()
    os.chdir(log_dir)
    try:
        trainer.fit(model, data)
        return trainer.test(ckpt_path="best", datamodule=data, verbose=False)[0]["test/acc"]
    finally:
        os.chdir(cwd)


def tabular(seeds: int) -> dict:
    """The scratch net with the tutorials' recipe against logistic regression, same splits."""
    rows = []
    with tempfile.TemporaryDirectory() as log_dir:
        for seed in range(seeds):
            scratch = {"hidden_dims": [10, 10], "task": "binary", "init": "tutorial", "loss": "mae", "lr": 0.1}
            logistic = {"hidden_dims": [], "dropout": 0.0, "lr": 0.01}
            rows.append(
                (
                    seed,
                    tabular_test_accuracy(ScratchDeepNet, scratch, seed, log_dir),
                    tabular_test_accuracy(MLPClassifier, logistic, seed, log_dir),
                )
            )
    print(f"\nTest accuracy on examples/people.csv, {seeds} seeds (split and initialisation)")
    print(f"{'seed':>4}{'scratch':>9}{'logistic':>10}")
    for seed, scratch_acc, logistic_acc in rows:
        print(f"{seed:>4}{scratch_acc:>9.4f}{logistic_acc:>10.4f}")
    mean_scratch, mean_logistic = (sum(column) / seeds for column in list(zip(*rows, strict=True))[1:])
    difference = 100 * (mean_scratch - mean_logistic)
    print(f"mean{mean_scratch:>9.4f}{mean_logistic:>10.4f}   scratch - logistic: {difference:+.2f} points")
    return {"seeds": rows, "scratch_mean": mean_scratch, "logistic_mean": mean_logistic}


def toy_fit(seed: int, profiler: SimpleProfiler | None = None) -> tuple[ToyRegressor, L.Trainer, float]:
    """One fit of configs/toy_regression.yaml's recipe; returns the model, its trainer and Trainer.fit's seconds."""
    L.seed_everything(seed, verbose=False)
    data = ToyRegressionDataModule(seed=seed)
    model = ToyRegressor(hidden_dims=[5], init="active", optimizer="lbfgs", lr=1.0)
    # as the config: the latest weights, a checkpoint and a validation every 10 epochs, figures every 50
    checkpoint = ModelCheckpoint(**{**CHECKPOINT_DEFAULTS, "monitor": None, "every_n_epochs": 10})
    callbacks = [checkpoint, LearningRateMonitor(), RegressionFigures(every_n_epochs=50)]
    trainer = make_trainer(
        "benchmark",
        max_epochs=100,
        check_val_every_n_epoch=10,
        log_every_n_steps=10,
        callbacks=callbacks,
        profiler=profiler,
    )
    start = time.perf_counter()
    trainer.fit(model, data)
    return model, trainer, time.perf_counter() - start


def toy(seeds: int) -> dict:
    """The toy regression's default recipe: fit time and where it goes, then what it learnt, per seed."""
    rows = []
    with tempfile.TemporaryDirectory() as log_dir:
        cwd = os.getcwd()
        os.chdir(log_dir)
        try:
            toy_fit(0)  # warm-up: the first fit also pays for imports, fonts and tracing
            profiler = SimpleProfiler()
            toy_fit(0, profiler)
            where = profiler.summary()
            for seed in range(seeds):
                model, trainer, seconds = toy_fit(seed)
                mse = trainer.test(model, datamodule=trainer.datamodule, verbose=False)[0]["test/mse"]
                with torch.no_grad():
                    at_minus_one, at_zero, at_one = model.eval()(torch.tensor([[-1.0], [0.0], [1.0]])).tolist()
                rows.append((seed, seconds, mse, at_zero, (at_one - at_minus_one) / 2))
        finally:
            os.chdir(cwd)
    print(f"\nWhere a fit's time goes (a separate fit under SimpleProfiler, top actions):\n{_top_lines(where, 14)}")
    print(f"\nToy regression, default recipe, {seeds} seeds")
    print(f"{'seed':>4}{'fit s':>7}{'s/epoch':>9}{'test MSE':>10}{'f(0)':>7}{'slope':>7}  (MSE<=0.11, 1+-0.1, 2+-0.1)")
    for seed, seconds, mse, intercept, slope in rows:
        met = "met" if mse <= 0.11 and abs(intercept - 1) <= 0.1 and abs(slope - 2) <= 0.1 else "missed"
        print(f"{seed:>4}{seconds:>7.2f}{seconds / 100:>9.4f}{mse:>10.4f}{intercept:>7.3f}{slope:>7.3f}  {met}")
    return {"seeds": rows}


def summaries(data_dir: str, epochs: int = 6) -> dict:
    """How much ClassificationFigures at its default frequency adds to the default MNIST MLP's epochs.

    Epoch times of separate runs differ by more than 10% on this shared machine, so the
    figure is taken inside one run: SimpleProfiler's time in the callback's epoch-end hook
    against the time of the training epochs (batches and validation; the epoch-end hooks
    run after, so the share slightly overstates the cost).
    """
    with tempfile.TemporaryDirectory() as log_dir:
        cwd = os.getcwd()
        os.chdir(log_dir)
        try:
            L.seed_everything(0, verbose=False)
            profiler = SimpleProfiler()
            trainer = make_trainer("benchmark", max_epochs=epochs, enable_progress_bar=False, profiler=profiler)
            trainer.callbacks.append(ClassificationFigures())
            trainer.fit(MLPClassifier(), MNISTDataModule(data_dir, batch_size=128))
        finally:
            os.chdir(cwd)
    durations = profiler.recorded_durations
    epochs_s = sum(durations["run_training_epoch"])
    figures_s = sum(durations["[Callback]ClassificationFigures.on_train_epoch_end"])
    share = figures_s / epochs_s
    print(f"\nMNIST MLP, default config's recipe, {epochs} epochs, ClassificationFigures every 2 epochs")
    print(f"training epochs: {epochs_s:.2f} s; drawing figures at their ends: {figures_s:.2f} s")
    print(f"mean epoch without figures {epochs_s / epochs:.3f} s, with {(epochs_s + figures_s) / epochs:.3f} s:")
    print(f"epochs with figures are slower than without by {100 * share:.1f}%")
    return {"epochs_s": epochs_s, "figures_s": figures_s, "slower_by": share}


class TestAccuracyClock(L.Callback):
    """Training time per epoch, and the test accuracy after it (scored off the clock)."""

    def __init__(self, test_table) -> None:
        self.test_table, self.rows, self.seconds = test_table, [], 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seconds += time.perf_counter() - self._start
        images, labels = self.test_table.tensors
        was_training = module.training
        module.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            accuracy = float((module(Normalize()(images)).argmax(dim=1) == labels).float().mean())
        module.train(was_training)
        self.rows.append((trainer.current_epoch + 1, self.seconds, accuracy))


def accuracy(data_dir: str) -> dict:
    """Training seconds until the default MNIST config first scores 98% on the test set; peak RSS of a CLI fit."""
    with tempfile.TemporaryDirectory() as log_dir:
        cwd = os.getcwd()
        os.chdir(log_dir)
        try:
            L.seed_everything(42, verbose=False)  # as configs/mnist_mlp.yaml: defaults of MLPClassifier, batch 128
            data = MNISTDataModule(data_dir, batch_size=128)
            data.setup(None)
            clock = TestAccuracyClock(data.tables["test"])
            trainer = make_trainer("benchmark", max_epochs=10, enable_progress_bar=False)
            trainer.callbacks += [clock, ClassificationFigures()]
            trainer.fit(MLPClassifier(), data)
        finally:
            os.chdir(cwd)
        reached = next(((epoch, seconds) for epoch, seconds, acc in clock.rows if acc >= 0.98), None)
        config = os.path.join(cwd, "configs", "mnist_mlp.yaml")
        command = [sys.executable, "-m", "nnmodules", "fit", "--config", config, f"--data.data_dir={data_dir}"]
        command += ["--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--test_after_fit=false"]
        subprocess.run(command, cwd=log_dir, check=True, capture_output=True)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    imports = "import lightning, torch, torchvision, pandas, matplotlib, nnmodules, datamodules"
    baseline = subprocess.run(
        [
            sys.executable,
            "-c",
            imports + "; import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    baseline_mb = int(baseline.stdout.split()[-1]) / 1024
    raw_mb = (
        sum(
            os.path.getsize(os.path.join(data_dir, "MNIST", "raw", name))
            for name in os.listdir(os.path.join(data_dir, "MNIST", "raw"))
        )
        / 2**20
    )
    print("\nDefault MNIST config (10 epochs): test accuracy after each epoch, training seconds so far")
    for epoch, seconds, acc in clock.rows:
        print(f"epoch {epoch:>2}: {seconds:6.1f} s  {100 * acc:.2f}%")
    print(
        "98.0% first reached:",
        f"epoch {reached[0]}, {reached[1]:.1f} s of training" if reached else "not within 10 epochs",
    )
    print(
        f"peak RSS of a 1-epoch CLI fit: {peak_mb:.0f} MB; interpreter and libraries alone: {baseline_mb:.0f} MB; "
        f"raw MNIST files: {raw_mb:.0f} MB; budget (libraries + 2 x data): {baseline_mb + 2 * raw_mb:.0f} MB"
    )
    return {
        "epochs": clock.rows,
        "reached_98": reached,
        "peak_rss_mb": peak_mb,
        "baseline_rss_mb": baseline_mb,
        "raw_data_mb": raw_mb,
    }


def _top_lines(summary: str, count: int) -> str:
    """The profiler table's header and its `count` costliest rows (it lists them costliest first)."""
    lines = [line for line in summary.splitlines() if line.strip()]
    header_end = next(i for i, line in enumerate(lines) if line.startswith("|  Action")) + 2
    return "\n".join(lines[: header_end + count])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data", help="folder holding MNIST/raw")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--repeats", type=int, default=2, help="epochs of each path; the fastest counts")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--tabular", action="store_true", help="the table benchmark instead of the MNIST one")
    parser.add_argument("--toy", action="store_true", help="the toy regression benchmark")
    parser.add_argument("--summaries", action="store_true", help="MNIST epochs with and without figures")
    parser.add_argument("--accuracy", action="store_true", help="time to 98%% test accuracy, and peak memory")
    parser.add_argument("--seeds", type=int, default=5, help="with --tabular or --toy: seeds to run")
    args = parser.parse_args()
    if args.tabular or args.toy or args.summaries or args.accuracy:
        if args.summaries or args.accuracy:
            results = (summaries if args.summaries else accuracy)(os.path.abspath(args.data_dir))
        else:
            results = tabular(args.seeds) if args.tabular else toy(args.seeds)
        if args.json:
            with open(args.json, "w") as file:
                json.dump(results, file, indent=2)
        return
    data_dir = os.path.abspath(args.data_dir)

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    results: dict = {"machine": machine, "batch_sizes": {}}
    with tempfile.TemporaryDirectory() as log_dir:
        for batch_size in args.batch_sizes:
            paths = {
                "a_tutorial": partial(tutorial_epoch, data_dir, batch_size),
                "b_tensor_loop": partial(tensor_loop_epoch, data_dir, batch_size),
                "c_trainer": partial(trainer_epoch, data_dir, batch_size, log_dir),
            }
            # interleaved repeats, the fastest of each: other load on a shared machine only ever adds time
            timings = [{name: path() for name, path in paths.items()} for _ in range(args.repeats)]
            runs = {name: min((timing[name] for timing in timings), key=lambda run: run[1]) for name in paths}
            rows = {
                name: {"samples": n, "seconds": round(s, 3), "samples_per_s": round(n / s)}
                for name, (n, s) in runs.items()
            }
            speed = {name: row["samples_per_s"] for name, row in rows.items()}
            rows["ratio_c_over_a"] = round(speed["c_trainer"] / speed["a_tutorial"], 2)
            rows["ratio_b_over_c"] = round(speed["b_tensor_loop"] / speed["c_trainer"], 2)
            results["batch_sizes"][batch_size] = rows

    for batch_size, rows in results["batch_sizes"].items():
        print(f"\nOne MNIST training epoch, batch {batch_size} ({machine})")
        print(f"{'path':<15}{'samples':>9}{'seconds':>9}{'samples/s':>11}")
        for name in ("a_tutorial", "b_tensor_loop", "c_trainer"):
            row = rows[name]
            print(f"{name:<15}{row['samples']:>9}{row['seconds']:>9.2f}{row['samples_per_s']:>11}")
        print(f"(c)/(a): {rows['ratio_c_over_a']:.2f}x   (b)/(c): {rows['ratio_b_over_c']:.2f}x")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
