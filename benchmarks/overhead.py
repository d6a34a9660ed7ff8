"""overhead: the training loop's own cost per step, with a 4-4-2 network whose arithmetic is next to nothing.

Batch 64 of 27,520 random rows, no validation: the hand-written loop; Lightning's floor
(a three-line LightningModule through a bare Trainer); our MLPClassifier through the
project's Trainer; and the same with Lightning's do-nothing profiler in place of ours.
"""

from __future__ import annotations

import tempfile
import warnings
from contextlib import chdir

import torch
from lightning.pytorch.profilers import PassThroughProfiler
from torch import nn

from benchmarks import loops
from benchmarks.mlp import floor_epoch
from benchmarks.timing import Run, fit_epoch, side_by_side, timed_epoch
from datamodules.batches import TensorDataModule, TensorTable
from nnmodules import MLPClassifier
from nnmodules.runs import make_trainer


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
    """4-4-2: arithmetic next to nothing."""
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))


def run(repeats: int) -> dict:
    """Microseconds per step of each path: the median step, and the per-step minimum estimate."""
    data = RandomRows()

    def hand_written() -> Run:
        step = loops.adam_step(tiny_net())
        return timed_epoch(loops.tensor_batches(*data.tables["train"].tensors, data.batch_size), step)

    def ours(**trainer_args: object) -> Run:
        model = MLPClassifier(input_dim=4, hidden_dims=[4], num_classes=2, dropout=0.0, lr=1e-3, lr_schedule="constant")
        trainer = make_trainer("overhead", max_epochs=1, limit_val_batches=0, enable_progress_bar=False, **trainer_args)
        with warnings.catch_warnings():  # no validation here: no val/loss for the checkpoints to watch
            warnings.filterwarnings("ignore", r"`ModelCheckpoint\(monitor='val/loss'\)` could not find")
            return fit_epoch(model, data, trainer)

    paths = {
        "hand_written": hand_written,
        "lightning_floor": lambda: floor_epoch(tiny_net(), data),
        "ours": ours,
        "ours_lightning_profiler": lambda: ours(profiler=PassThroughProfiler()),  # what NoProfiler saves
    }
    with tempfile.TemporaryDirectory() as folder, chdir(folder):
        rows = side_by_side(paths, repeats)
    steps = len(data.train_dataloader())
    print(f"\nThe loop's own cost: microseconds per training step of a 4-4-2 network, batch 64 ({steps} steps)")
    print(f"{'path':<26}{'median':>8}{'min-step est.':>15}")
    for name, row in rows.items():
        estimate = round(1e6 * row["per_step_minimum_epoch_s"] / steps)
        row["per_step_minimum_us"] = estimate
        print(f"{name:<26}{row['median_step_us']:>8}{estimate:>15}")
    return rows
