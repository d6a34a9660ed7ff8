"""Benchmark: one MNIST training epoch of the tutorial's loop against our Trainer path, side by side.

    python scripts/benchmark.py --data-dir ../shared/data [--batch-size 64] [--json benchmark.json]

Both train the tutorial's 784-128-128-10 MLP with Adam at a constant 1e-3, in
this one process, one after the other:

  (a) tutorial: torchvision MNIST + ToTensor + Normalize + DataLoader(shuffle=True),
      a plain PyTorch loop over the 60,000 training images;
  (b) ours:     MLPClassifier + MNISTDataModule through the Trainer with the
      project's default logging and checkpointing; its epoch (55,000 images)
      is timed from epoch start to epoch end, so it includes the validation
      pass and the checkpoint write that (a) does not do.

It prints samples per second of each and the ratio (b)/(a). Timings on a shared
machine are noisy: the ratio, measured in one run, is the figure to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from datamodules import MNISTDataModule
from nnmodules import MLPClassifier
from nnmodules.cli import make_trainer


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data", help="folder holding MNIST/raw")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    data_dir = os.path.abspath(args.data_dir)

    with tempfile.TemporaryDirectory() as log_dir:
        runs = {
            "a_tutorial": tutorial_epoch(data_dir, args.batch_size),
            "b_trainer": trainer_epoch(data_dir, args.batch_size, log_dir),
        }
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "batch_size": args.batch_size,
        **{
            name: {"samples": n, "seconds": round(s, 3), "samples_per_s": round(n / s)} for name, (n, s) in runs.items()
        },
    }
    results["ratio_b_over_a"] = round(results["b_trainer"]["samples_per_s"] / results["a_tutorial"]["samples_per_s"], 2)

    print(f"\nOne MNIST training epoch, batch {args.batch_size} ({results['machine']})")
    print(f"{'path':<14}{'samples':>9}{'seconds':>9}{'samples/s':>11}")
    for name in runs:
        row = results[name]
        print(f"{name:<14}{row['samples']:>9}{row['seconds']:>9.2f}{row['samples_per_s']:>11}")
    print(f"ratio (b)/(a): {results['ratio_b_over_a']:.2f}x")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
