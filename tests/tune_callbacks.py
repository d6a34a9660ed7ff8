"""Callbacks for the tests of `tune --workers` and DDP trials, in a module of their own: workers import them."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import lightning as L


class HoldOnce(L.Callback):
    """The first worker to start epoch `epoch` of a trial writes its pid to `marker` and waits there `seconds`.

    Long enough to be killed there: epoch 1 comes after epoch 0's checkpoint, so the trial stops in the middle,
    with a checkpoint to go on from; epoch 0, before any. Every other process, and the trial continued, goes past;
    so does the command's own process (worker 0), which says how the search ended. Every epoch lasts at least
    `pace` seconds, so that worker 0 has not run every trial by the time the others start.
    """

    def __init__(self, marker: str, epoch: int = 1, seconds: float = 600, pace: float = 1.0) -> None:
        self.marker, self.epoch, self.seconds, self.pace = marker, epoch, seconds, pace

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        time.sleep(self.pace)

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.current_epoch != self.epoch or "--worker" not in sys.argv:
            return
        try:
            held = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(held, str(os.getpid()).encode())
        os.close(held)
        time.sleep(self.seconds)


class RecordValues(L.Callback):
    """Each rank of each trial writes the learning rate it trains with to `<folder>/<run>.<rank>.json`."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        path = Path(self.folder) / f"{trainer.logger.version}.{trainer.global_rank}.json"
        path.write_text(json.dumps({"lr": module.hparams["lr"], "world_size": trainer.world_size}))
