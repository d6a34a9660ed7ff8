"""Every use of Lightning's private names, in one place: each says why, and has a guard test.

Checked on Lightning 2.6.0 and 2.6.6 (pyproject.toml bounds `lightning` to 2.6.x); 2.5 lacks `Trainer.fit`'s
`weights_only`, which `runs.LitTrainer.fit` passes on. The guard tests
(tests/test_lightning_guards.py) fail with a message naming the function here when Lightning changes the
thing it relies on.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from typing import TYPE_CHECKING, Any

import lightning as L
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.profilers import PassThroughProfiler

if TYPE_CHECKING:
    from lightning.pytorch.cli import LightningCLI


def epoch_position(trainer: L.Trainer) -> tuple[int, int]:
    """(epoch, its training batches already done): where training stands, or goes on after a resume.

    Valid from `on_train_start` on, and while a checkpoint is written. A batch count of 0 means the epoch
    has not begun (a fresh run, or a resume from an epoch's end); a finished epoch counts as not begun
    either, since the next one starts from its first batch.

    Why private: `fit_loop.epoch_progress` and `epoch_loop.batch_progress` are the loops' own counters,
    which Lightning restores from a checkpoint; the Trainer exposes only `current_epoch` and `global_step`.
    """
    epochs = trainer.fit_loop.epoch_progress.current
    batches = trainer.fit_loop.epoch_loop.batch_progress
    in_epoch = epochs.ready > epochs.processed and not batches.is_last_batch
    return trainer.current_epoch, batches.current.completed if in_epoch else 0


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


def stop_after_this_step(trainer: L.Trainer) -> None:
    """Has Lightning stop at the end of the training step under way, as on SIGTERM.

    Lightning raises its `SIGTERMException` there, which the callbacks' `on_exception` receive.

    Why private: the flag Lightning's SIGTERM handler sets is the connector's `received_sigterm`; the
    Trainer's `received_sigterm` property has no setter, and calling the handler itself would, under DDP,
    start a collective operation inside a signal handler (a deadlock when every process gets the signal).
    """
    trainer._signal_connector.received_sigterm = True


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


def logger_version(logger: TensorBoardLogger | CSVLogger) -> int | str | None:
    """The version folder a logger was given, or None while it has not chosen one.

    Why private: the public `version` property picks the next free folder when none was given.
    """
    return logger._version


def set_logger_version(logger: TensorBoardLogger | CSVLogger, version: int) -> None:
    """Points a logger at the folder `version_<version>`, as its `version=` argument would.

    Why private: the logger has no setter; its `__init__` keeps the argument in `_version`.
    """
    logger._version = version


def tensorboard_writer(logger: TensorBoardLogger) -> Any:
    """The logger's event file writer, for summaries the `SummaryWriter` API has no call for.

    Why private: `SummaryWriter._get_file_writer` is what `TensorBoardLogger.log_hyperparams` writes with.
    """
    return logger.experiment._get_file_writer()


def cli_hyperparameters() -> dict[str, Any] | None:
    """While LightningCLI builds a model: the model's config as the CLI parsed it; else None.

    `save_hyperparameters` saves it instead of the arguments (a network as `class_path` and `init_args`, not as an
    object).

    Why private: LightningCLI hands it over in the context variable `_given_hyperparameters`.
    """
    return _given_hyperparameters.get()


def built_as_the_cli_builds(hparams: dict[str, Any]) -> dict[str, Any]:
    """A model's hyperparameters, marked for `load_from_checkpoint` to build the model as LightningCLI does.

    That is, with jsonargparse: a network among them, given as `class_path` and `init_args`, is built too.

    Why private: the mark is the `_instantiator` entry LightningCLI saves, naming its `instantiate_module`,
    which `load_from_checkpoint` reads (from an allowlist of such functions).
    """
    return {**hparams, "_instantiator": "lightning.pytorch.cli.instantiate_module"}


def take_links_into_a_network_the_model_lacks(cli: LightningCLI) -> None:
    """Lets the CLI build a model without a network (`net`) while it links the data to a network's arguments.

    Why private: LightningCLI writes every link jsonargparse applied into the model's hyperparameters, which
    it takes from its `config_dump`; jsonargparse counts a link into a network the model does not have as
    applied, and LightningCLI then fails ("Expected key net.init_args.input_dim to be in data"). An empty
    network in that dump takes those links, and empty `init_args` those into a network that takes no
    arguments; the project's models keep only the arguments a network takes, and `drop_hyperparameters`
    removes the empty network from any other model.
    """
    cli._dump_config()
    model = cli.config_dump.get("model")
    if isinstance(model, dict):
        init_args = model.get("init_args", model) if "class_path" in model else model
        if init_args.get("net") is None:
            init_args["net"] = {"init_args": {}}
        elif isinstance(init_args["net"], dict):
            init_args["net"].setdefault("init_args", {})


def drop_hyperparameters(module: L.LightningModule, names: list[str]) -> None:
    """Removes hyperparameters from those a checkpoint saves and those the logger shows.

    Why private: `hparams` can be changed, but what the logger writes is `hparams_initial`, a copy kept in
    `_hparams_initial` that has no public setter.
    """
    for name in names:
        module.hparams.pop(name, None)
        module._hparams_initial.pop(name, None)


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
