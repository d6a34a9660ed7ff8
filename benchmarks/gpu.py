"""The MNIST recipes on this machine's accelerator: each epoch's time and the test accuracy.

    bash scripts/gpu_check.sh [DATA_DIR] [EPOCHS]        (or: python -m benchmarks.gpu --data-dir DIR ...)

Fits `the mnist_mlp recipe`, `the mnist_mlp_fast recipe` (bf16, compiled) and
`the mnist_cnn recipe` through the command line's own classes, in a temporary folder,
then tests the best checkpoint. An epoch's time is wall clock from its first training
batch to the end of its validation, the device synchronised at both ends; the first
epoch (compilation, CUDA warm-up) is shown but left out of the median.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from benchmarks.recipes import from_config

CONFIGS = ("mnist_mlp", "mnist_mlp_fast", "mnist_cnn")


class EpochTimes(L.Callback):
    """Each training epoch's wall time, its validation included."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        _synchronize(module)
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            _synchronize(module)
            self.seconds.append(time.perf_counter() - self._start)


def _synchronize(module: L.LightningModule) -> None:
    if module.device.type == "cuda":
        torch.cuda.synchronize(module.device)


def check(config: str, data_dir: str, epochs: int, accelerator: str) -> tuple[list[float], float]:
    """Fits one recipe and tests its best checkpoint: its epochs' seconds and the test accuracy."""
    cli = from_config(
        config,
        f"--data.data_dir={data_dir}",
        f"--trainer.max_epochs={epochs}",
        f"--trainer.accelerator={accelerator}",
        "--trainer.devices=1",
    )
    times = EpochTimes()
    cli.trainer.callbacks.append(times)
    cli.trainer.fit(cli.model, cli.datamodule)
    results = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best", verbose=False)
    return times.seconds, results[0]["test/acc"]


def main() -> None:
    """Fits each recipe asked for and prints its epochs and accuracy."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data", help="the folder holding MNIST/raw")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--accelerator", default="gpu", help="gpu (the point), or cpu to try the script")
    parser.add_argument("--only", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    options = parser.parse_args()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    print(f"torch {torch.__version__}, lightning {L.__version__}, {device}")
    data_dir = str(Path(options.data_dir).resolve())  # the runs go into a temporary folder
    rows = []
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        for config in options.only:
            seconds, accuracy = check(config, data_dir, options.epochs, options.accelerator)
            rows.append((config, seconds, accuracy))
    print(f"\n{'config':16} {'median epoch':>13} {'test acc':>9}   epochs (s)")
    for config, seconds, accuracy in rows:
        median = statistics.median(seconds[1:] or seconds)
        print(f"{config:16} {median:12.2f}s {accuracy:9.4f}   {' '.join(f'{s:.2f}' for s in seconds)}")


if __name__ == "__main__":
    main()
