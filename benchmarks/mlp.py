"""mlp: one MNIST training epoch of the mnist_mlp recipe's MLP, five ways, side by side.

- tutorial: the tutorial's loop and network (Adam at a constant 1e-3), `loops` (a);
- tensor_loop: the config's network and optimizer (dropout, fused Adam, one-cycle) in the
  hand-written loop over in-memory tensors, then its validation pass, `loops` (b);
- lightning_floor: the config's network in a three-line LightningModule (a loss, Adam) with
  the config's data, through a bare `lightning.Trainer` (no logger, checkpoints or
  validation): Lightning's own floor;
- plain_trainer: the config's model and data through `lightning.Trainer` with its defaults,
  what a Lightning user brings (its TensorBoard logger and checkpoints);
- ours: the config's model, data and Trainer, as `litmodules fit` builds them.

Targets at batch 64: ours' median step within 10% of lightning_floor's, and ours' median
epoch at least 5x faster than the tutorial's.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from contextlib import chdir

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks import loops
from benchmarks.recipes import built, from_config, mnist_args
from benchmarks.timing import Run, fit_epoch, print_table, ratio, side_by_side


class ThreeLines(L.LightningModule):
    """The least a LightningModule can be: a network, a loss, an optimizer (it trains only: no validation)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return F.cross_entropy(self.net(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3, fused=True)


def floor_epoch(net: nn.Module, data: L.LightningDataModule) -> Run:
    """One epoch of `net` in `ThreeLines` through a bare `lightning.Trainer` (no logger, checkpoints or validation)."""
    bare = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}
    with warnings.catch_warnings():  # the data has validation rows, which the floor leaves out
        warnings.filterwarnings("ignore", "You passed in a `val_dataloader` but have no `validation_step`")
        return fit_epoch(ThreeLines(net), data, L.Trainer(max_epochs=1, limit_val_batches=0, **bare))


def paths(data_dir: str, batch_size: int) -> dict:
    """The five ways to one epoch, each building its own model and data from the config."""

    def recipe() -> L.LightningModule:
        return from_config("mnist_mlp", *mnist_args(data_dir, batch_size, epochs=1))

    def tensor_loop() -> Run:
        model = built(recipe()).model
        steps = math.ceil(len(loops.in_memory_mnist(data_dir)[1]) / batch_size)
        step = loops.adam_step(model.net, lr=model.lr, one_cycle_steps=steps)
        return loops.tensor_epoch(data_dir, batch_size, step, lambda inputs: model.net.eval()(inputs))

    def lightning_floor() -> Run:
        cli = built(recipe())
        return floor_epoch(cli.model.net, cli.datamodule)

    def plain_trainer() -> Run:
        cli = recipe()
        trainer = L.Trainer(max_epochs=1, enable_progress_bar=False, enable_model_summary=False)
        return fit_epoch(cli.model, cli.datamodule, trainer)

    def ours() -> Run:
        cli = recipe()
        return fit_epoch(cli.model, cli.datamodule, cli.trainer)

    return {
        "tutorial": lambda: loops.tutorial_epoch(
            data_dir, batch_size, loops.adam_step(loops.tutorial_mlp(), fused=False)
        ),
        "tensor_loop": tensor_loop,
        "lightning_floor": lightning_floor,
        "plain_trainer": plain_trainer,
        "ours": ours,
    }


def run(data_dir: str, batch_sizes: list[int], repeats: int) -> dict:
    """Each batch size's table, and ours against the floor (per step) and the tutorial (per epoch)."""
    results = {}
    with tempfile.TemporaryDirectory() as folder, chdir(folder):
        for batch_size in batch_sizes:
            rows = side_by_side(paths(data_dir, batch_size), repeats, at_most_twice=["tutorial"])
            print_table(f"MLP (the mnist_mlp recipe): one MNIST training epoch, batch {batch_size}", rows)
            over_floor = rows["ours"]["median_step_us"] / rows["lightning_floor"]["median_step_us"] - 1
            rows["ours_step_over_lightning_floor"] = round(over_floor, 3)
            rows["tutorial_epoch_over_ours"] = ratio(rows, "tutorial", "ours")
            print(
                f"ours per step: {100 * over_floor:+.1f}% against lightning_floor (target: within +10%); "
                f"epochs: {rows['tutorial_epoch_over_ours']:.2f}x faster than the tutorial's (target: 5x)"
            )
            results[batch_size] = rows
    return results
