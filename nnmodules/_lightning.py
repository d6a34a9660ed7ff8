"""Every use of Lightning's private names, in one place: each says why, and has a guard test.

Checked on Lightning 2.6.0 and 2.6.6 (pyproject.toml bounds `lightning` to 2.6.x). The guard tests
(tests/test_lightning_guards.py) fail with a message naming the function here when Lightning changes the
thing it relies on.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.profilers import PassThroughProfiler

from datamodules._lightning import epoch_position  # the batch path's, which the models' checkpoints read too

__all__ = [
    "FastHookNames",
    "NoProfiler",
    "epoch_position",
    "epochs_done",
    "is_last_batch",
    "logs_this_step",
    "no_last_checkpoint_in_fast_dev_run",
    "skip_nvml_check_without_nvml",
    "tensorboard_writer",
    "trainer_of",
]


def epochs_done(checkpoint: dict[str, Any]) -> int:
    """How many whole epochs the run that wrote `checkpoint` had trained.

    Why private: the checkpoint's "epoch" is the epoch under way when it was written, which is the last
    finished one at an epoch's end and the unfinished one mid-epoch; the fit loop's saved progress tells.
    """
    return checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]


def is_last_batch(trainer: L.Trainer) -> bool:
    """Whether the training step under way is its epoch's last (Lightning knows from its prefetched batch).

    Why private: `epoch_loop.batch_progress.is_last_batch` is the loop's own flag; `num_training_batches` can
    differ from the batches an epoch resumed mid-way with another batch size hands out.
    """
    return trainer.fit_loop.epoch_loop.batch_progress.is_last_batch


def trainer_of(module: L.LightningModule) -> L.Trainer | None:
    """The Trainer a module is attached to, or None (e.g. a checkpoint saved by hand, outside a fit).

    Why private: the public `module.trainer` raises when there is none; the module keeps it in `_trainer`.
    """
    return module._trainer


def logs_this_step(trainer: L.Trainer) -> bool:
    """Whether the logger writes the metrics of the training step under way (every `log_every_n_steps`).

    Why private: it is the logger connector's `should_update_logs`, the condition Lightning's own callbacks
    use (LearningRateMonitor); a model that calls `self.log` only then saves its cost on the other steps.
    """
    return trainer._logger_connector.should_update_logs


def tensorboard_writer(logger: TensorBoardLogger) -> Any:
    """The logger's event file writer, for summaries the `SummaryWriter` API has no call for.

    Why private: `SummaryWriter._get_file_writer` is what `TensorBoardLogger.log_hyperparams` writes with.
    """
    return logger.experiment._get_file_writer()


class FastHookNames(L.LightningModule):
    """A LightningModule whose attribute `_current_fx_name` is set at the cost of a plain object's.

    Why private: Lightning names the running hook in `_current_fx_name` around every hook call, about 45
    times a training step; `nn.Module.__setattr__` would first look for the name among parameters, buffers
    and submodules, ten times slower. A string is none of those.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


class NoProfiler(PassThroughProfiler):
    """Lightning's default profiler, which records nothing, without its cost.

    Why: Lightning wraps each of the about 80 hook calls of a training step in `profiler.profile(name)`,
    and `PassThroughProfiler` builds a generator-based context manager every time; this one hands out one
    shared `nullcontext`.
    """

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:
        return self._nothing


def skip_nvml_check_without_nvml() -> None:
    """Turns off Lightning's NVML-based GPU count where NVML cannot load.

    Why: Lightning asks torch to count GPUs through NVML (PYTORCH_NVML_BASED_CUDA_CHECK=1), which does not
    start CUDA in a process that may fork. Without NVML (no NVIDIA driver) torch then tries to load it on
    every call and falls back to the CUDA runtime anyway; Adam's `step` makes that call at every step.
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1" or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libnvidia-ml.so.1")  # what torch loads
    except OSError:
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"  # torch checks for "1"


def no_last_checkpoint_in_fast_dev_run(trainer: L.Trainer) -> None:
    """Keeps `ModelCheckpoint(save_last=True)` from writing `last.ckpt` at the end of a `fast_dev_run`.

    Why: Lightning 2.6's `ModelCheckpoint.on_train_end` saves the last checkpoint without asking, as its
    other saves do, whether checkpointing is off for a `fast_dev_run`; with its logger off (as a
    `fast_dev_run` has it) the file lands in `<default_root_dir>/checkpoints/`, the user's working folder.
    """
    if trainer.fast_dev_run:
        for callback in trainer.checkpoint_callbacks:
            callback.save_last = False
