"""A callback for the tests of `tune --workers`, in a module of its own: the workers import it by its path."""

from __future__ import annotations

import os
import time

import lightning as L


class HoldOnce(L.Callback):
    """The first process to start epoch `epoch` of a trial writes its pid to `marker` and waits there `seconds`.

    Long enough to be killed there: epoch 1 comes after epoch 0's checkpoint, so the trial stops in the middle,
    with a checkpoint to go on from; epoch 0, before any. Every other process, and the trial continued, goes past.
    """

    def __init__(self, marker: str, epoch: int = 1, seconds: float = 600) -> None:
        self.marker, self.epoch, self.seconds = marker, epoch, seconds

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.current_epoch != self.epoch:
            return
        try:
            held = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(held, str(os.getpid()).encode())
        os.close(held)
        time.sleep(self.seconds)
