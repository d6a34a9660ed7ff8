"""Ctrl-C or SIGTERM during `fit`: finish the step, save `interrupted.ckpt`, end saying how to continue."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import OnExceptionCheckpoint
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from nnmodules._lightning import is_last_batch
from nnmodules.tasks import Diverged

INTERRUPTED = "interrupted"  # the checkpoint of an interrupted run: <run>/checkpoints/interrupted.ckpt
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # what stops a fit cleanly
RESUME_HINT = 'continue with `--ckpt_path last` on the command line, or `trainer.fit(..., ckpt_path="last")`'


class RunInterrupted(Exception):  # noqa: N818  (it names what happened, as KeyboardInterrupt does)
    """A fit stopped by Ctrl-C or SIGTERM after a whole step, its state saved; the message says where and how to go on.

    `code` is the shell's status for the signal (130 for Ctrl-C, 143 for SIGTERM), which the command line exits
    with. In Jupyter and IPython the cell ends with the message alone, no traceback.
    """

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.code = 128 + signum

    def _render_traceback_(self) -> list[str]:  # IPython's hook: what it shows instead of the traceback
        return [str(self)]


class InterruptedCheckpoint(OnExceptionCheckpoint):
    """An interrupted fit's checkpoint, as Lightning knows one: the next `fit` of the same Trainer goes on from it.

    Lightning's own resumes a Trainer's next `fit` from the newest of its on-exception and last checkpoints
    (`ckpt_path="last"`, or none given); `Interruption` registers one only once it has saved, so that a first fit
    starts anew. The checkpoint was saved at the end of its step; it is kept after the run goes on.
    """

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        pass  # written already, by Interruption

    def teardown(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        pass  # Lightning's removes it when a stage ends; kept, as every checkpoint of a run is


class Interruption(L.Callback):
    """Ctrl-C or SIGTERM during `fit`: finish the step, save `interrupted.ckpt`, end saying how to continue.

    The signal only sets a flag; at the end of the training step under way every process learns of it (under
    DDP, from any of them: one `max` reduction a step), the checkpoint is written, and `fit` ends with
    `RunInterrupted`. A second Ctrl-C interrupts at once, as Python does. A signal during validation takes
    effect after the next training step; one on an epoch's last step, after that epoch's validation and
    checkpoints. The checkpoint is Lightning's own of the end of a training step, which it resumes after that
    step; the same Trainer's next `fit` goes on from it (`InterruptedCheckpoint`), and `--ckpt_path last` counts it.

    Lightning's own SIGTERM handler is replaced for the training loop: under DDP it calls a collective operation
    inside the handler, which deadlocks when every process gets the signal (torchrun, SLURM, or Lightning
    forwarding it).

    Args:
        dirpath: the run's checkpoint folder; None: `checkpoints/` in the Trainer's `default_root_dir`.
        resume_hint: how to continue, said after the checkpoint's path.
    """

    def __init__(self, dirpath: str | Path | None = None, resume_hint: str = RESUME_HINT) -> None:
        self.dirpath, self.resume_hint = None if dirpath is None else str(dirpath), resume_hint
        self._signal: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def ckpt_path(self) -> str:
        return os.path.join(self.dirpath or "", f"{INTERRUPTED}.ckpt")

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self.dirpath = self.dirpath or os.path.join(trainer.default_root_dir, "checkpoints")

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # not earlier: Lightning sets its signal handlers after `on_fit_start` and puts back what it found then
        self._signal = None
        if _main_thread():
            self._previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self._signal is None and signum == signal.SIGINT:
            rank_zero_info("\nCtrl-C: stopping after this training step (press again to stop at once)")
        self._signal = self._signal or signum

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        signum = self._signal or 0
        if trainer.world_size > 1:  # every process stops after the same step, whichever got the signal
            flag = torch.tensor(float(signum), device=trainer.strategy.root_device)
            signum = int(trainer.strategy.reduce(flag, reduce_op="max").item())
        if not signum or is_last_batch(trainer):  # on the last, after the epoch's validation and checkpoints
            return
        name, where = signal.Signals(signum).name, f"epoch {trainer.current_epoch}, step {trainer.global_step}"
        try:
            trainer.save_checkpoint(self.ckpt_path, weights_only=False)  # given: Lightning logs a line when not
        except Diverged as error:  # a diverged model is not worth continuing
            raise RunInterrupted(f"{name} at {where}: nothing saved: {error}", signum) from None
        if not any(isinstance(callback, InterruptedCheckpoint) for callback in trainer.callbacks):
            trainer.callbacks.append(InterruptedCheckpoint(self.dirpath, filename=INTERRUPTED))
        raise RunInterrupted(f"{name} at {where}: saved {self.ckpt_path}; {self.resume_hint}", signum)

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self._restore()  # saved already, at the end of its step; any other exception saves nothing

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._restore()

    def _restore(self) -> None:
        if _main_thread():
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
        self._previous = {}


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
