"""toy: the toy_regression recipe as it is (100 full-batch LBFGS epochs), against the introduction's plain loop.

Per epoch: the plain loop with the config's model and optimizer, and `Trainer.fit` of the
config; where the fit's time goes (Lightning's SimpleProfiler); and what each seed learnt:
test MSE, f(0) and (f(1) - f(-1)) / 2 against the true line's 1 and 2.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from contextlib import chdir

import torch
import torch.nn.functional as F

from benchmarks.recipes import built, from_config
from nnmodules.cli import LitCLI

EPOCHS = 100  # the config's


def recipe(seed: int, *overrides: str) -> LitCLI:
    """The config, its data and initialisation seeded by `seed`."""
    return from_config("toy_regression", f"--seed_everything={seed}", f"--data.seed={seed}", *overrides)


def plain_loop_epoch_s(seed: int) -> float:
    """The introduction's loop over the training tensors with the config's model and optimizer: seconds an epoch."""
    cli = recipe(seed)
    built(cli)  # its input width is the data's, as the Trainer's setup gives it
    x, y = cli.datamodule.tables["train"].tensors
    model, optimizer = cli.model, cli.model.configure_optimizers()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        return loss

    start = time.perf_counter()
    for _ in range(EPOCHS):
        optimizer.step(closure)
    return (time.perf_counter() - start) / EPOCHS


def fit(seed: int) -> tuple[float, float, float, float]:
    """The config's fit: its seconds, then test MSE, f(0) and the slope between -1 and 1."""
    cli = recipe(seed)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    seconds = time.perf_counter() - start
    mse = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)[0]["test/mse"]
    with torch.no_grad():
        at_minus_one, at_zero, at_one = cli.model.eval()(torch.tensor([[-1.0], [0.0], [1.0]])).tolist()
    return seconds, mse, at_zero, (at_one - at_minus_one) / 2


def run(seeds: int) -> dict:
    """Median epoch of each way, and each seed's fit."""
    with tempfile.TemporaryDirectory() as folder, chdir(folder):
        plain = statistics.median(plain_loop_epoch_s(seed) for seed in range(seeds))
        fit(0)  # warm-up: the first fit also pays for imports, fonts and tracing
        profiled = recipe(0, "--trainer.profiler=SimpleProfiler")
        profiled.trainer.fit(profiled.model, profiled.datamodule)
        rows = [(seed, *fit(seed)) for seed in range(seeds)]
    print("\nWhere a fit's time goes (a separate fit under SimpleProfiler, costliest actions):")
    print(top_lines(profiled.trainer.profiler.summary(), 14))
    print(f"\nToy regression (the toy_regression recipe), {seeds} seeds")
    print(f"{'seed':>4}{'fit s':>7}{'s/epoch':>9}{'test MSE':>10}{'f(0)':>7}{'slope':>7}  (MSE<=0.11, 1+-0.1, 2+-0.1)")
    for seed, seconds, mse, intercept, slope in rows:
        met = "met" if mse <= 0.11 and abs(intercept - 1) <= 0.1 and abs(slope - 2) <= 0.1 else "missed"
        print(f"{seed:>4}{seconds:>7.2f}{seconds / EPOCHS:>9.4f}{mse:>10.4f}{intercept:>7.3f}{slope:>7.3f}  {met}")
    trainer_epoch_s = statistics.median(seconds for _, seconds, *_ in rows) / EPOCHS
    print(f"median epoch: plain loop {1000 * plain:.2f} ms, Trainer.fit {1000 * trainer_epoch_s:.2f} ms")
    keys = ("seed", "fit_seconds", "test_mse", "f0", "slope")
    return {
        "plain_loop_median_epoch_s": round(plain, 5),
        "trainer_median_epoch_s": round(trainer_epoch_s, 5),
        "seeds": [dict(zip(keys, row, strict=True)) for row in rows],
    }


def top_lines(summary: str, count: int) -> str:
    """The profiler table's header and its `count` costliest rows (it lists them costliest first)."""
    lines = [line for line in summary.splitlines() if line.strip()]
    header_end = next(i for i, line in enumerate(lines) if line.startswith("|  Action")) + 2
    return "\n".join(lines[: header_end + count])
