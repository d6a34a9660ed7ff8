"""Clocks every part shares: epochs timed step by step, run side by side, summed up by their median.

The headline of a speed figure is the median whole-epoch wall time over the repeats, what a
user waits for. Beside it, two diagnostics: the median step, and the per-step minimum
estimate (each step's fastest time over the repeats, added up), which sees through the
bursts of other work on a shared machine that slow a few steps of an epoch.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import Any

import lightning as L

Run = tuple[int, list[float]]  # one timed epoch: its samples, the seconds of each training step, then of its end


def timed_epoch(batches: Iterable, step: Callable, after: Callable[[], object] = lambda: None) -> Run:
    """Trains on all `batches`, then runs `after` (a validation pass), clocking each step and the end."""
    samples, marks = 0, [time.perf_counter()]
    for inputs, targets in batches:
        step(inputs, targets)
        samples += len(targets)
        marks.append(time.perf_counter())
    after()
    marks.append(time.perf_counter())
    return samples, [end - start for start, end in pairwise(marks)]


def clocked(model: L.LightningModule) -> L.LightningModule:
    """The model, its class extended to clock its last training epoch from its own hooks.

    Each step runs from one batch-end hook to the next (the whole loop around it); the end
    from the last batch to the model's epoch-end hook (validation, epoch-end metrics and
    figures, not the checkpoint, which Lightning writes after it). Hooks of the model
    itself: a timing callback would add a call to every hook. `step_seconds` holds them.
    """

    class Clocked(type(model)):
        def on_train_epoch_start(self) -> None:
            super().on_train_epoch_start()
            self.marks = [time.perf_counter()]

        def on_train_batch_end(self, *args: Any) -> None:
            super().on_train_batch_end(*args)
            self.marks.append(time.perf_counter())

        def on_train_epoch_end(self) -> None:
            super().on_train_epoch_end()
            self.marks.append(time.perf_counter())
            self.step_seconds = [end - start for start, end in pairwise(self.marks)]

    model.__class__ = Clocked
    return model


def fit_epoch(model: L.LightningModule, data: L.LightningDataModule, trainer: L.Trainer) -> Run:
    """One epoch of `trainer.fit(model, data)`, clocked (run it in a scratch folder: the trainer writes there)."""
    model = clocked(model)
    trainer.fit(model, data)
    return len(data.tables["train"]), model.step_seconds


def side_by_side(paths: dict[str, Callable[[], Run]], repeats: int, at_most_twice: Iterable[str] = ()) -> dict:
    """Each path `repeats` times, interleaved (slow ones at most twice), then `summary` of each."""
    runs: dict[str, list[Run]] = {name: [] for name in paths}
    for repeat in range(repeats):
        for name, path in paths.items():
            if repeat < 2 or name not in at_most_twice:
                runs[name].append(path())
    return {name: summary(timings) for name, timings in runs.items()}


def summary(runs: list[Run]) -> dict:
    """An epoch's figures over its repeats: the median whole epoch first, then the diagnostics."""
    samples = runs[0][0]
    epochs = [sum(steps) for _, steps in runs]
    steps = [step for _, timings in runs for step in timings[:-1]]
    per_step_minimum = sum(min(times) for times in zip(*(timings for _, timings in runs), strict=True))
    return {
        "samples": samples,
        "median_epoch_s": round(statistics.median(epochs), 3),
        "samples_per_s": round(samples / statistics.median(epochs)),
        "median_step_us": round(1e6 * statistics.median(steps)),
        "per_step_minimum_epoch_s": round(per_step_minimum, 3),
        "epochs_s": [round(epoch, 3) for epoch in epochs],
    }


def print_table(title: str, rows: dict[str, dict]) -> None:
    """The rows of `side_by_side`, one path a line."""
    print(f"\n{title}")
    print(
        f"{'path':<17}{'median epoch s':>15}{'samples/s':>10}{'median step us':>15}{'min-step est. s':>16}   epochs (s)"
    )
    for name, row in rows.items():
        print(
            f"{name:<17}{row['median_epoch_s']:>15.2f}{row['samples_per_s']:>10}{row['median_step_us']:>15}"
            f"{row['per_step_minimum_epoch_s']:>16.2f}   {row['epochs_s']}"
        )


def ratio(rows: dict[str, dict], slower: str, faster: str, key: str = "median_epoch_s") -> float:
    """How many times `faster`'s figure fits in `slower`'s."""
    return round(rows[slower][key] / rows[faster][key], 2)
