"""The project's benchmark suite: each comparison measured side by side in one process.

    python scripts/benchmark.py --data-dir ../shared/data [--json FILE] [--repeats 5] [--only PART ...]

Parts (all but the last three by default; --only picks some):

mlp: one MNIST training epoch of the tutorial's 784-128-128-10 MLP (Adam at a
constant 1e-3), three ways, at batch 64 (the tutorial's) and 128 (our default):

  (a) tutorial:    torchvision MNIST + ToTensor + Normalize + DataLoader(shuffle=True),
                   a plain PyTorch loop over the 60,000 training images;
  (b) tensor loop: the practical floor, a hand-written loop over one normalised
                   in-memory tensor of the 55,000 training images (no Lightning,
                   no DataLoader), with the same (fused) Adam as ours, then a
                   hand-written validation pass (loss and accuracy of the 5,000
                   validation images in batches of 4 x the training batch, as our
                   data modules evaluate), on the same clock;
  (c) trainer:     MLPClassifier + MNISTDataModule through the Trainer with the
                   project's default logging and checkpointing (no progress bar);
                   its epoch (55,000 images) is timed from the model's epoch-start
                   hook to its epoch-end hook, so it holds the validation pass too
                   (not the checkpoint write, which Lightning runs after the
                   model's epoch-end hook). The tutorial loop (a) validates nothing.

  Samples per second of each, and the ratios (c)/(a) and (b)/(c).

accuracy: the default MNIST config's training time until its test accuracy
first reaches 98% (the test set is scored after each epoch, off the clock), and
the peak memory (RSS) of `make train` (`litmodules fit` with that config) against
the same run on 600 blank images (interpreter, libraries, model, logger, figures)
plus twice the raw data's size.

scratch: the same three paths for the scratch net's recipe (configs/mnist_scratch.yaml:
784-20-10, the hand-written SGD step at 0.2, batch 32): (a) and (b) run the
tutorials' own functions (matrix products, log-softmax, NLL, `p -= lr * grad`).

toy: the toy regression's default recipe (configs/toy_regression.yaml: 100
full-batch LBFGS epochs, validation and checkpoint every 10, figures every 50):
(b) the plain loop of the introduction with that recipe against (c) Trainer.fit,
per epoch; where (c)'s time goes (Lightning's SimpleProfiler); test MSE, f(0) and
(f(1) - f(-1)) / 2 for each seed.

overhead: the training loop's own cost per step, with a 4-4-2 network whose
arithmetic is next to nothing: the hand-written loop, a plain LightningModule
through a bare Trainer (Lightning's floor), and our MLPClassifier with the
project's defaults, also with Lightning's own do-nothing profiler in place of
NoProfiler.

tabular: test accuracy on examples/people.csv of the scratch net with the
tutorials' recipe (configs/tabular_scratch.yaml) against a logistic regression
(MLPClassifier without hidden layers), on the same split, for each seed.

summaries: what the figure callback at its default frequency (ClassificationFigures:
confusion matrix and misclassified digits every 2 epochs) adds to MNIST MLP epochs.

cnn: configs/mnist_cnn.yaml as it is (nnmodules.SmallCNN through Classifier, 1x28x28
images, 10 epochs): the test accuracy after each epoch (scored off the clock), the
training seconds so far, and the test accuracy of the best checkpoint.

Timings on a shared machine are noisy: each path runs `--repeats` times
(the slow tutorial loops at most twice), interleaved, each step clocked; an
epoch's figure adds up each step's fastest time over the repeats (see
`undisturbed_seconds`), and every epoch as it ran is listed beside it. Ratios
measured in one run are the figures to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from itertools import pairwise

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.profilers import PassThroughProfiler, SimpleProfiler
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from datamodules import MNISTDataModule, TabularDataModule, ToyRegressionDataModule
from datamodules.batches import TensorDataModule, TensorTable
from datamodules.mnist import Normalize
from nnmodules import MLPClassifier, ScratchDeepNet, ToyRegressor
from nnmodules.cli import CHECKPOINT_DEFAULTS, LitCLI, make_trainer
from nnmodules.figures import ClassificationFigures, RegressionFigures

PEOPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "people.csv")
Run = tuple[int, list[float]]  # one timed epoch: its samples, and the seconds of each step, then of its end


def tutorial_mnist(data_dir: str, batch_size: int) -> DataLoader:
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    return DataLoader(datasets.MNIST(data_dir, train=True, transform=transform), batch_size=batch_size, shuffle=True)


def in_memory_mnist(data_dir: str, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """A split of MNISTDataModule (55,000 training or 5,000 validation images), normalised once as one float tensor."""
    data = MNISTDataModule(data_dir, download=False)
    data.setup("fit")
    images, labels = data.tables[split].tensors
    return Normalize()(images), labels


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )


def timed_epoch(batches, step: Callable, after: Callable[[], object] = lambda: None) -> Run:
    """Trains on all `batches`, then runs `after` (a validation pass), clocking each step and the end."""
    samples, marks = 0, [time.perf_counter()]
    for images, labels in batches:
        step(images, labels)
        samples += len(labels)
        marks.append(time.perf_counter())
    after()
    marks.append(time.perf_counter())
    return samples, [end - start for start, end in pairwise(marks)]


def tensor_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int):
    """The hand-written loop's batches: a fresh permutation, sliced (inside the timed epoch)."""
    order = torch.randperm(len(images))
    for first in range(0, len(images), batch_size):
        batch = order[first : first + batch_size]
        yield images[batch], labels[batch]


def validate(forward: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor, batch_size: int) -> tuple:
    """The hand-written validation pass, the work (c)'s epoch holds too: loss and accuracy in batches."""
    loss = correct = torch.zeros(())
    with torch.no_grad():
        for inputs, targets in zip(images.split(batch_size), labels.split(batch_size), strict=True):
            scores = forward(inputs)
            loss = loss + F.cross_entropy(scores, targets, reduction="sum")
            correct = correct + (scores.argmax(dim=1) == targets).sum()
    return loss.item() / len(labels), correct.item() / len(labels)


def hand_written_epoch(data_dir: str, batch_size: int, step: Callable, forward: Callable) -> Run:
    """(b): one epoch over the in-memory training tensor, then the validation split at 4 x `batch_size`
    (our data modules' evaluation batch)."""
    val_images, val_labels = in_memory_mnist(data_dir, "val")
    evaluation = partial(validate, forward, val_images, val_labels, 4 * batch_size)
    return timed_epoch(tensor_batches(*in_memory_mnist(data_dir), batch_size), step, evaluation)


def hand_written_step(model: nn.Module, fused: bool = True) -> Callable[[Tensor, Tensor], None]:
    """The plain PyTorch training step: Adam at 1e-3 (fused, as ours, unless the tutorial's), cross-entropy."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)

    def step(inputs: Tensor, targets: Tensor) -> None:
        optimizer.zero_grad()
        F.cross_entropy(model(inputs), targets).backward()
        optimizer.step()

    return step


def adam_step(data_dir: str, batch_size: int, tutorial: bool) -> Run:
    """(a) or (b) for the MLP: the tutorial's network, Adam at 1e-3 (fused in (b), as ours), cross-entropy."""
    model = mlp()
    step = hand_written_step(model, fused=not tutorial)
    if tutorial:
        return timed_epoch(tutorial_mnist(data_dir, batch_size), step)
    return hand_written_epoch(data_dir, batch_size, step, model)


def scratch_step(data_dir: str, batch_size: int, tutorial: bool, lr: float = 0.2) -> Run:
    """(a) or (b) for the scratch net: the tutorials' functions, 784-20-10, the hand-written SGD step."""
    sizes = [784, 20, 10]
    weights = [(torch.randn(n_in, n_out) * (2 / n_in) ** 0.5).requires_grad_() for n_in, n_out in pairwise(sizes)]
    biases = [torch.zeros(n_out, requires_grad=True) for n_out in sizes[1:]]

    def forward(images: torch.Tensor) -> torch.Tensor:
        res = images.flatten(1)
        for i, (layer, const) in enumerate(zip(weights, biases, strict=True)):
            res = res @ layer + const
            if i != len(weights) - 1:
                res = F.relu(res)
        return F.log_softmax(res, dim=1)

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        F.nll_loss(forward(images), labels).backward()
        with torch.no_grad():
            for layer in [*weights, *biases]:
                layer.sub_(layer.grad * lr)
                layer.grad.zero_()

    if tutorial:
        return timed_epoch(tutorial_mnist(data_dir, batch_size), step)
    return hand_written_epoch(data_dir, batch_size, step, forward)


def clocked(model: L.LightningModule) -> L.LightningModule:
    """The model, its class extended to clock each training step (from one step's batch-end hook to the
    next's: the whole loop around it) and each epoch's end (validation, epoch-end metrics) from its own hooks
    (a timing callback would itself add a call to every hook): `step_seconds`, of the last epoch."""

    class Clocked(type(model)):
        def on_train_epoch_start(self) -> None:
            super().on_train_epoch_start()
            self.marks = [time.perf_counter()]

        def on_train_batch_end(self, *args: object) -> None:
            super().on_train_batch_end(*args)
            self.marks.append(time.perf_counter())

        def on_train_epoch_end(self) -> None:
            super().on_train_epoch_end()
            self.marks.append(time.perf_counter())
            self.step_seconds = [end - start for start, end in pairwise(self.marks)]

    model.__class__ = Clocked
    return model


def trainer_epoch(model: L.LightningModule, data: MNISTDataModule, log_dir: str) -> Run:
    """(c): one epoch of our modules through the Trainer with default logging and checkpointing."""
    model = clocked(model)
    trainer = make_trainer("benchmark", max_epochs=1, enable_progress_bar=False, enable_model_summary=False)
    cwd = os.getcwd()
    os.chdir(log_dir)  # its lightning_logs/ goes to a temporary folder
    try:
        trainer.fit(model, data)
    finally:
        os.chdir(cwd)
    return len(data.tables["train"]), model.step_seconds


def mlp_trainer_epoch(data_dir: str, batch_size: int, log_dir: str) -> Run:
    L.seed_everything(0, verbose=False)
    model = MLPClassifier(dropout=0.0, lr=1e-3, lr_schedule="constant")  # the tutorial's network and optimizer
    return trainer_epoch(model, MNISTDataModule(data_dir, batch_size=batch_size, download=False), log_dir)


def scratch_trainer_epoch(data_dir: str, batch_size: int, log_dir: str) -> Run:
    L.seed_everything(0, verbose=False)
    model = ScratchDeepNet(hidden_dims=[20], lr=0.2, lr_schedule="cosine")  # configs/mnist_scratch.yaml
    return trainer_epoch(model, MNISTDataModule(data_dir, batch_size=batch_size, download=False), log_dir)


def undisturbed_seconds(runs: list[Run]) -> float:
    """An epoch's time on a quiet machine, from repeated epochs: each step's fastest time (and the end's),
    added up. Other work on a shared machine comes in bursts that slow some steps of an epoch; a burst
    rarely hits the same step of every repeat, so this sees through it where the fastest whole epoch
    would need one repeat without any (luckier for a short epoch than for a long one). Every path is
    measured so: periodic work (logging every n steps) is in the same steps of each repeat and is kept."""
    return sum(min(times) for times in zip(*(steps for _, steps in runs), strict=True))


def side_by_side(paths: dict[str, Callable[[], Run]], repeats: int) -> dict:
    """Each path `repeats` times (the tutorial at most twice), interleaved; `seconds` is the
    `undisturbed_seconds` of its epochs (`all_seconds` lists the whole epochs as they ran)."""
    runs: dict[str, list[Run]] = {name: [] for name in paths}
    for repeat in range(repeats):
        for name, path in paths.items():
            if name != "a_tutorial" or repeat < 2:
                runs[name].append(path())
    rows: dict = {}
    for name, timings in runs.items():
        samples, seconds = timings[0][0], undisturbed_seconds(timings)
        rows[name] = {"samples": samples, "seconds": round(seconds, 3), "samples_per_s": round(samples / seconds)}
        rows[name]["all_seconds"] = [round(sum(steps), 3) for _, steps in timings]
    speed = {name: row["samples_per_s"] for name, row in rows.items()}
    rows["ratio_c_over_a"] = round(speed["c_trainer"] / speed["a_tutorial"], 2)
    rows["ratio_b_over_c"] = round(speed["b_tensor_loop"] / speed["c_trainer"], 2)
    fastest = {name: min(rows[name]["all_seconds"]) for name in runs}  # the older, luck-prone figure
    rows["ratio_b_over_c_fastest_epochs"] = round(fastest["c_trainer"] / fastest["b_tensor_loop"], 2)
    return rows


def print_rows(title: str, rows: dict) -> None:
    print(f"\n{title}")
    print(f"{'path':<15}{'samples':>9}{'seconds':>9}{'samples/s':>11}   all epochs (s)")
    for name in ("a_tutorial", "b_tensor_loop", "c_trainer"):
        row = rows[name]
        print(f"{name:<15}{row['samples']:>9}{row['seconds']:>9.2f}{row['samples_per_s']:>11}   {row['all_seconds']}")
    print(
        f"(c)/(a): {rows['ratio_c_over_a']:.2f}x   (b)/(c): {rows['ratio_b_over_c']:.2f}x "
        f"(fastest whole epochs: {rows['ratio_b_over_c_fastest_epochs']:.2f}x)"
    )


def mlp_epochs(data_dir: str, batch_sizes: list[int], repeats: int) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as log_dir:
        for batch_size in batch_sizes:
            paths = {
                "a_tutorial": partial(adam_step, data_dir, batch_size, tutorial=True),
                "b_tensor_loop": partial(adam_step, data_dir, batch_size, tutorial=False),
                "c_trainer": partial(mlp_trainer_epoch, data_dir, batch_size, log_dir),
            }
            results[batch_size] = side_by_side(paths, repeats)
            print_rows(f"MLP: one MNIST training epoch, batch {batch_size}", results[batch_size])
    return results


def scratch_epochs(data_dir: str, repeats: int, batch_size: int = 32) -> dict:
    with tempfile.TemporaryDirectory() as log_dir:
        paths = {
            "a_tutorial": partial(scratch_step, data_dir, batch_size, tutorial=True),
            "b_tensor_loop": partial(scratch_step, data_dir, batch_size, tutorial=False),
            "c_trainer": partial(scratch_trainer_epoch, data_dir, batch_size, log_dir),
        }
        rows = side_by_side(paths, repeats)
    print_rows(f"Scratch net 784-20-10: one MNIST training epoch, batch {batch_size}", rows)
    return {batch_size: rows}


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


def toy_plain_loop(seed: int) -> float:
    """(b) for the toy: the introduction's plain loop over the training tensors, with the config's recipe
    (active init, 100 full-batch LBFGS steps). Returns seconds per epoch."""
    L.seed_everything(seed, verbose=False)
    data = ToyRegressionDataModule(seed=seed)
    data.setup("fit")
    x, y = data.tables["train"].tensors
    model = ToyRegressor(hidden_dims=[5], init="active", optimizer="lbfgs", lr=1.0)
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        return loss

    start = time.perf_counter()
    for _ in range(100):
        optimizer.step(closure)
    return (time.perf_counter() - start) / 100


def toy(seeds: int) -> dict:
    """The toy regression's default recipe: epoch time against a plain loop, where the Trainer's time goes,
    what it learnt, per seed."""
    rows = []
    plain = min(toy_plain_loop(seed) for seed in range(seeds))
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
    trainer_epoch_s = min(seconds for _, seconds, *_ in rows) / 100
    print(f"epoch: (b) plain loop {1000 * plain:.2f} ms, (c) Trainer.fit {1000 * trainer_epoch_s:.2f} ms (fastest)")
    keys = ("seed", "fit_seconds", "test_mse", "f0", "slope")
    return {
        "b_plain_loop_epoch_s": round(plain, 5),
        "c_trainer_epoch_s": round(trainer_epoch_s, 5),
        "seeds": [dict(zip(keys, row, strict=True)) for row in rows],
    }


class RandomRows(TensorDataModule):
    """27,520 random rows of 4 features, 2 classes: a data set that costs nothing to cut."""

    num_features, num_classes = 4, 2

    def __init__(self) -> None:
        super().__init__(batch_size=64)
        features = torch.randn(27_520, 4, generator=torch.Generator().manual_seed(0))
        self.tables = {"train": TensorTable(features, (features[:, 0] > 0).long())}  # validation is switched off

    def setup(self, stage: str | None = None) -> None:
        pass  # the table is made up front


def tiny_net() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))


class PlainModule(L.LightningModule):
    """The least a LightningModule can be: a network, a loss, an optimizer."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_net()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        inputs, targets = batch
        return F.cross_entropy(self.net(inputs), targets)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3, fused=True)


def overhead(repeats: int) -> dict:
    """The loop's own cost per training step, with a 4-4-2 network at batch 64 whose arithmetic is next to
    nothing: (b) the hand-written loop; Lightning's floor: `PlainModule` through a bare Trainer (no callbacks,
    logger, checkpoints or progress bar); (c) `MLPClassifier` through our default Trainer. No validation."""
    data = RandomRows()

    def hand_written() -> Run:
        step = hand_written_step(tiny_net())
        return timed_epoch(tensor_batches(*data.tables["train"].tensors, data.batch_size), step)

    def through(model: L.LightningModule, trainer: L.Trainer) -> Run:
        model = clocked(model)
        trainer.fit(model, data)
        return len(data.tables["train"]), model.step_seconds

    bare = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "callbacks": []}

    def ours(**trainer_args: object) -> Run:
        model = MLPClassifier(input_dim=4, hidden_dims=[4], num_classes=2, dropout=0.0, lr=1e-3, lr_schedule="constant")
        trainer = make_trainer(
            "benchmark", max_epochs=1, limit_val_batches=0, enable_progress_bar=False, **trainer_args
        )
        return through(model, trainer)

    paths = {
        "b_hand_written": hand_written,
        "lightning_floor": lambda: through(PlainModule(), L.Trainer(max_epochs=1, limit_val_batches=0, **bare)),
        "c_ours": ours,
        "c_ours_lightning_profiler": lambda: ours(profiler=PassThroughProfiler()),  # what NoProfiler saves
    }
    runs: dict[str, list[Run]] = {name: [] for name in paths}
    with tempfile.TemporaryDirectory() as log_dir:
        cwd = os.getcwd()
        os.chdir(log_dir)
        try:
            for _ in range(repeats):
                for name, path in paths.items():
                    runs[name].append(path())
        finally:
            os.chdir(cwd)
    steps = len(runs["b_hand_written"][0][1]) - 1  # less the epoch's end
    per_step_us = {name: round(1e6 * undisturbed_seconds(timings) / steps) for name, timings in runs.items()}
    print(f"\nThe loop's own cost: microseconds per training step of a 4-4-2 network, batch 64 ({steps} steps)")
    for name, us in per_step_us.items():
        print(f"{name:<26}{us:>6} us   + {us - per_step_us['b_hand_written']} us over the hand-written loop")
    return per_step_us


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
            guesses = torch.cat([module(Normalize()(part)).argmax(dim=1) for part in images.split(1000)])
        accuracy = float((guesses == labels).float().mean())
        module.train(was_training)
        self.rows.append((trainer.current_epoch + 1, self.seconds, accuracy))


def write_blank_mnist(raw_dir: str, train: int, test: int) -> None:
    """MNIST's four IDX files (big-endian magic number and sizes, then bytes), of blank images."""
    os.makedirs(raw_dir, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        with open(os.path.join(raw_dir, f"{prefix}-images-idx3-ubyte"), "wb") as file:
            file.write(struct.pack(">IIII", 2051, count, 28, 28) + bytes(count * 784))
        with open(os.path.join(raw_dir, f"{prefix}-labels-idx1-ubyte"), "wb") as file:
            file.write(struct.pack(">II", 2049, count) + bytes(i % 10 for i in range(count)))


def peak_rss_mb(code: str, cwd: str | None = None) -> float:
    """The peak resident memory of a fresh interpreter running `code`: its own VmHWM, read at its end (the
    `ru_maxrss` of a child counts the memory of the process it was forked from)."""
    report = "; print(next(line for line in open('/proc/self/status') if line.startswith('VmHWM')))"
    done = subprocess.run([sys.executable, "-c", code + report], cwd=cwd, check=True, capture_output=True, text=True)
    return int(done.stdout.split("VmHWM:")[-1].split()[0]) / 1024


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
        args = ["fit", "--config", config, f"--data.data_dir={data_dir}", "--trainer.enable_progress_bar=false"]
        peak_mb = peak_rss_mb(f"from nnmodules.cli import LitCLI; LitCLI(args={args!r})", cwd=log_dir)
        # everything but the data: the same run on 600 blank images (libraries, model, logger, figures)
        tiny_dir = os.path.join(log_dir, "tiny")
        write_blank_mnist(os.path.join(tiny_dir, "MNIST", "raw"), train=500, test=100)
        args = [*args[:3], f"--data.data_dir={tiny_dir}", "--data.val_size=100", *args[4:]]
        baseline_mb = peak_rss_mb(f"from nnmodules.cli import LitCLI; LitCLI(args={args!r})", cwd=log_dir)
    imports_mb = peak_rss_mb("import lightning, torch, torchvision, pandas, matplotlib, nnmodules, datamodules")
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
        f"peak RSS of `make train` (CLI fit and test): {peak_mb:.0f} MB; the same run on 600 blank images: "
        f"{baseline_mb:.0f} MB (importing the libraries alone: {imports_mb:.0f} MB); raw MNIST files: {raw_mb:.0f} MB; "
        f"budget (blank-image run + 2 x data): {baseline_mb + 2 * raw_mb:.0f} MB"
    )
    return {
        "epochs": clock.rows,
        "reached_98": reached,
        "peak_rss_mb": peak_mb,
        "blank_run_rss_mb": baseline_mb,
        "imports_rss_mb": imports_mb,
        "raw_data_mb": raw_mb,
    }


def cnn(data_dir: str) -> dict:
    """configs/mnist_cnn.yaml as it is: test accuracy after each epoch and training seconds so far, then the test
    accuracy of its best checkpoint (by validation loss), as `litmodules fit` reports it."""
    with tempfile.TemporaryDirectory() as log_dir:
        cwd = os.getcwd()
        os.chdir(log_dir)
        try:
            config = os.path.join(cwd, "configs", "mnist_cnn.yaml")
            args = ["--config", config, f"--data.data_dir={data_dir}", "--trainer.enable_progress_bar=false"]
            cli = LitCLI(args=args, run=False)
            cli.datamodule.setup(None)
            clock = TestAccuracyClock(cli.datamodule.tables["test"])
            cli.trainer.callbacks.append(clock)
            cli.trainer.fit(cli.model, cli.datamodule)
            best = cli.trainer.test(ckpt_path="best", datamodule=cli.datamodule, verbose=False)[0]["test/acc"]
        finally:
            os.chdir(cwd)
    print(f"\nconfigs/mnist_cnn.yaml ({type(cli.model.net).__name__}, {len(clock.rows)} epochs): test accuracy")
    for epoch, seconds, acc in clock.rows:
        print(f"epoch {epoch:>2}: {seconds:6.1f} s  {100 * acc:.2f}%")
    print(f"best checkpoint (lowest val/loss): {100 * best:.2f}% test accuracy")
    return {"epochs": clock.rows, "best_checkpoint_test_acc": best}


def _top_lines(summary: str, count: int) -> str:
    """The profiler table's header and its `count` costliest rows (it lists them costliest first)."""
    lines = [line for line in summary.splitlines() if line.strip()]
    header_end = next(i for i, line in enumerate(lines) if line.startswith("|  Action")) + 2
    return "\n".join(lines[: header_end + count])


PARTS = ("mlp", "accuracy", "scratch", "toy", "overhead", "tabular", "summaries", "cnn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data", help="folder holding MNIST/raw")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS[:5], help="parts to run (default: first 5)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128], help="of the mlp part")
    parser.add_argument("--repeats", type=int, default=5, help="epochs of each path (each step's fastest counts)")
    parser.add_argument("--seeds", type=int, default=5, help="of the toy and tabular parts")
    parser.add_argument("--json", default="lightning_logs/benchmark.json", help="where to write the results")
    args = parser.parse_args()
    data_dir = os.path.abspath(args.data_dir)
    run = {
        "mlp": lambda: mlp_epochs(data_dir, args.batch_sizes, args.repeats),
        "accuracy": lambda: accuracy(data_dir),
        "scratch": lambda: scratch_epochs(data_dir, args.repeats),
        "toy": lambda: toy(args.seeds),
        "overhead": lambda: overhead(args.repeats),
        "tabular": lambda: tabular(args.seeds),
        "summaries": lambda: summaries(data_dir),
        "cnn": lambda: cnn(data_dir),
    }
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    print(f"machine: {machine}; torch threads: {torch.get_num_threads()}")
    results: dict = {"machine": machine, "command": " ".join(sys.argv)}
    for part in args.only:
        results[part] = run[part]()
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as file:
        json.dump(results, file, indent=2)
    print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
