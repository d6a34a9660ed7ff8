"""accuracy: the mnist_mlp recipe's training time until its test accuracy first reaches 98%, and memory.

The test set is scored after each epoch, off the clock. Memory: the peak RSS of the
config's `litmodules fit` (what `make train` runs) against the same run on 600 blank
images (interpreter, libraries, model, logger, figures) plus twice the raw data's size.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
import time
from contextlib import chdir
from pathlib import Path

import lightning as L
import torch

from benchmarks.recipes import CONFIGS, from_config, mnist_args
from datamodules.batches import TensorTable
from nnmodules.cli import LitCLI


class TestAccuracyClock(L.Callback):
    """Training time per epoch, and the test accuracy after it (scored off the clock)."""

    def __init__(self, test_table: TensorTable) -> None:
        self.test_table, self.rows, self.seconds = test_table, [], 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seconds += time.perf_counter() - self._start
        images, labels = self.test_table.tensors
        was_training = module.training
        module.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            normalize = self.test_table.transform
            guesses = torch.cat([module(normalize(part)).argmax(dim=1) for part in images.split(1000)])
        module.train(was_training)
        self.rows.append((trainer.current_epoch + 1, self.seconds, float((guesses == labels).float().mean())))


def clocked_fit(config: str, *overrides: str) -> tuple[LitCLI, list[tuple[int, float, float]]]:
    """A config's fit with a `TestAccuracyClock`: its CLI, and (epoch, seconds so far, test accuracy) per epoch."""
    cli = from_config(config, *overrides)
    cli.datamodule.setup(None)
    clock = TestAccuracyClock(cli.datamodule.tables["test"])
    cli.trainer.callbacks.append(clock)
    cli.trainer.fit(cli.model, cli.datamodule)
    return cli, clock.rows


def print_epochs(title: str, rows: list[tuple[int, float, float]]) -> None:
    """The rows of `clocked_fit`, one epoch a line."""
    print(f"\n{title}: test accuracy after each epoch, training seconds so far")
    for epoch, seconds, accuracy in rows:
        print(f"epoch {epoch:>2}: {seconds:6.1f} s  {100 * accuracy:.2f}%")


def write_blank_mnist(raw_dir: Path, train: int, test: int) -> None:
    """MNIST's four IDX files (big-endian magic number and sizes, then bytes), of blank images."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        (raw_dir / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, count, 28, 28) + bytes(count * 784)
        )
        (raw_dir / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, count) + bytes(i % 10 for i in range(count))
        )


def peak_rss_mb(code: str) -> float:
    """The peak resident memory of a fresh interpreter running `code`, in MB.

    Its own VmHWM, read at its end: the `ru_maxrss` of a child counts the memory of the
    process it was forked from.
    """
    report = "; print(next(line for line in open('/proc/self/status') if line.startswith('VmHWM')))"
    done = subprocess.run([sys.executable, "-c", code + report], check=True, capture_output=True, text=True)
    return int(done.stdout.split("VmHWM:")[-1].split()[0]) / 1024


def fit_rss_mb(*args: str) -> float:
    """Peak RSS of `litmodules fit` of the mnist_mlp recipe with `args`."""
    command = ["fit", "--config", str(CONFIGS / "mnist_mlp.yaml"), "--trainer.enable_progress_bar=false", *args]
    return peak_rss_mb(f"from nnmodules.cli import run; run({command!r})")


def run(data_dir: str) -> dict:
    """The epochs, when 98% is first reached, and the memory figures."""
    with tempfile.TemporaryDirectory() as folder, chdir(folder):
        _, rows = clocked_fit("mnist_mlp", *mnist_args(data_dir))
        peak_mb = fit_rss_mb(*mnist_args(data_dir))
        write_blank_mnist(Path("tiny", "MNIST", "raw"), train=500, test=100)
        baseline_mb = fit_rss_mb(*mnist_args(Path("tiny").resolve()), "--data.val_size=100")
    imports_mb = peak_rss_mb("import lightning, torch, torchvision, pandas, matplotlib, nnmodules, datamodules")
    raw_mb = sum(file.stat().st_size for file in Path(data_dir, "MNIST", "raw").iterdir()) / 2**20
    reached = next(((epoch, seconds) for epoch, seconds, accuracy in rows if accuracy >= 0.98), None)
    print_epochs("the mnist_mlp recipe", rows)
    print("98.0% first reached:", f"epoch {reached[0]}, {reached[1]:.1f} s of training" if reached else "not reached")
    print(
        f"peak RSS of `make train` (CLI fit and test): {peak_mb:.0f} MB; the same run on 600 blank images: "
        f"{baseline_mb:.0f} MB (importing the libraries alone: {imports_mb:.0f} MB); raw MNIST files: {raw_mb:.0f} MB; "
        f"budget (blank-image run + 2 x data): {baseline_mb + 2 * raw_mb:.0f} MB"
    )
    return {
        "epochs": rows,
        "reached_98": reached,
        "peak_rss_mb": peak_mb,
        "blank_run_rss_mb": baseline_mb,
        "imports_rss_mb": imports_mb,
        "raw_data_mb": raw_mb,
    }
