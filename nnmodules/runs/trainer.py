"""A plain Lightning `Trainer` with the project's defaults, in a run folder of its own: `make_trainer`.

The defaults live here once and serve both ways of running: `make_trainer` for scripts and notebooks that
call `Trainer.fit` themselves, and the command line (`nnmodules.cli`), which builds its Trainer with
`trainer_arguments` too. The run's folder is resolved before the Trainer is built (`nnmodules.runs.folders`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins import CheckpointIO as AnyCheckpointIO
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ModelSummary, ProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from datamodules.errors import UserError
from nnmodules import metrics
from nnmodules._lightning import NoProfiler, no_last_checkpoint_in_fast_dev_run, skip_nvml_check_without_nvml
from nnmodules.callbacks import (
    INTERRUPTED,
    RESUME_HINT,
    HParamsMetrics,
    InterruptedCheckpoint,
    Interruption,
    LitProgressBar,
    NetworkSummary,
    RunFolderGuard,
    RunRecord,
    RunSummary,
)
from nnmodules.runs import quiet
from nnmodules.runs.folders import Run, last_run, new_run
from nnmodules.tasks import CheckpointIO

SEED = 42  # what the command line seeds everything with, unless told
TRAINER_DEFAULTS: dict[str, Any] = {"accelerator": "auto", "devices": "auto", "max_epochs": 10}
# TensorBoard runs under lightning_logs/<name>/version_<n>/, checkpoints in its checkpoints/
LOGGER_DEFAULTS: dict[str, Any] = {
    "save_dir": "lightning_logs",
    "name": "",
    "log_graph": True,  # the model's graph, from its example_input_array
    "default_hp_metric": False,  # no placeholder hp_metric = -1 in the HParams tab
}
CHECKPOINT_DEFAULTS: dict[str, Any] = {
    "monitor": metrics.MONITOR,
    "mode": "min",
    "save_last": True,
    "filename": "epoch{epoch:02d}-val_loss{val/loss:.4f}",
    "auto_insert_metric_name": False,  # the metric names hold "/", which would make folders
}


def run_callbacks(
    folder: Path, checkpointing: bool = True, record: RunRecord | None = None, resume_hint: str = RESUME_HINT
) -> list[L.Callback]:
    """The callbacks of every run besides its checkpoints: its record, HParams, the summary, Ctrl-C's checkpoint.

    Args:
        folder: the run's folder, untouched if it fails before it starts (`RunFolderGuard`).
        checkpointing: whether the run writes checkpoints (then Ctrl-C writes `interrupted.ckpt`: `Interruption`).
        record: the run's record (the command line gives its config); None: a run from Python.
        resume_hint: how to continue an interrupted fit.
    """
    callbacks = [RunFolderGuard(folder), record or RunRecord(), HParamsMetrics(), RunSummary()]
    if not checkpointing:
        return callbacks
    callbacks.append(Interruption(folder / "checkpoints", resume_hint))
    if (folder / "checkpoints" / f"{INTERRUPTED}.ckpt").is_file():  # an interrupted run: `ckpt_path="last"` counts it
        callbacks.append(InterruptedCheckpoint(folder / "checkpoints", filename=INTERRUPTED))
    return callbacks


def make_trainer(
    name: str = "",
    version: int | str | None = None,
    callbacks: list[L.Callback] | tuple[L.Callback, ...] = (),
    without: tuple[type, ...] = (),
    save_dir: str | Path = "lightning_logs",
    **overrides: Any,
) -> L.Trainer:
    """A Lightning Trainer with the project's defaults (the command line's too), in a run folder of its own.

    `<save_dir>/<name>/version_<n>/`: a new one, or a run to continue (`version`). It has a TensorBoard
    logger there, `ModelCheckpoint` (best by `val/loss`, and `last.ckpt`) and `Interruption` (Ctrl-C) in its
    `checkpoints/`, the learning rate, HParams, the end-of-fit summary and the run's record in every checkpoint.

    Args:
        name: the run's folder under `save_dir`.
        version: None: a new run; a number or a name: that run (continue it with `fit(..., ckpt_path="last")`);
            "last": the newest run of `name` with a checkpoint (a new one if none has).
        callbacks: callbacks of your own, added to the project's; one of the same type as one of the project's
            replaces it (as `configure_callbacks` does).
        without: types of the project's callbacks to leave out, e.g. `(RunSummary,)`.
        save_dir: where the runs' folders are.
        **overrides: any `Trainer` argument; a `logger` given keeps its own folder when it is TensorBoard's or
            CSV's (its `log_dir` is the run's folder), else the run's folder is as above.
    """
    quiet.install()
    logger = overrides.pop("logger", None)
    if isinstance(logger, (TensorBoardLogger, CSVLogger)):
        folder = Path(logger.log_dir)  # the logger's version, which it picks now if none was given
    else:
        run = resolve_run(Path(save_dir), name, version)
        folder = run.folder
        if logger is None:
            settings = {**LOGGER_DEFAULTS, "save_dir": str(save_dir), "name": name, "version": run.version}
            logger = TensorBoardLogger(**settings)
    checkpointing = overrides.get("enable_checkpointing") is not False
    project = [ModelCheckpoint(dirpath=folder / "checkpoints", **CHECKPOINT_DEFAULTS)] if checkpointing else []
    project += [LearningRateMonitor(), *run_callbacks(folder, checkpointing)]
    replaced = {type(callback) for callback in callbacks}
    project = [c for c in project if type(c) not in replaced and not isinstance(c, tuple(without))]
    arguments = {**TRAINER_DEFAULTS, **overrides, "logger": logger, "callbacks": [*project, *callbacks]}
    trainer = L.Trainer(**trainer_arguments(arguments, folder))
    no_last_checkpoint_in_fast_dev_run(trainer)
    return trainer


def resolve_run(root: Path, name: str, version: int | str | None) -> Run:
    """The run of `make_trainer`'s `version` (see there)."""
    if version is None:
        return new_run(root, name)
    if version == "last":
        found = last_run(root, name)
        return new_run(root, name) if found is None else found[0]
    if not isinstance(version, (int, str)) or version == "":
        raise UserError(f"version must be None, a number, a name or 'last', got {version!r}")
    return Run(root, name, version)


def trainer_arguments(arguments: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A Trainer's arguments with the project's: its run folder, and the plugins and callbacks it takes unless given.

    The run's folder is the Trainer's `default_root_dir`. Checkpoints are read by `CheckpointIO` (no pickle, one
    line for a damaged file) unless another checkpoint plugin is given; the progress bar (`LitProgressBar`)
    redraws every few steps unless one is given; the model summary (`NetworkSummary`) leaves out metric objects
    unless another summary is given; without a `profiler`, `NoProfiler` stands in for Lightning's do-nothing
    default; without a logger, a `LearningRateMonitor` is left out, as it needs one; a `ModelCheckpoint` without a
    `dirpath` saves into the run's `checkpoints/`.
    """
    skip_nvml_check_without_nvml()
    arguments = dict(arguments)
    plugins, callbacks = _as_list(arguments.get("plugins")), _as_list(arguments.get("callbacks"))
    if not any(isinstance(plugin, AnyCheckpointIO) for plugin in plugins):
        plugins.append(CheckpointIO())
    if arguments.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(LitProgressBar())  # Lightning's redraws after every step, a cost small models notice
    if arguments.get("enable_model_summary") is not False and not any(isinstance(c, ModelSummary) for c in callbacks):
        callbacks.append(NetworkSummary())
    if arguments.get("logger") in (False, []):
        callbacks = [callback for callback in callbacks if not isinstance(callback, LearningRateMonitor)]
    for callback in callbacks:  # a ModelCheckpoint of one's own saves where the run's do, unless told
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(folder / "checkpoints")
    if arguments.get("profiler") is None:
        arguments["profiler"] = NoProfiler()
    if (folder / "checkpoints").is_dir():
        quiet.continued_run(folder / "checkpoints")
    return {**arguments, "plugins": plugins, "callbacks": callbacks, "default_root_dir": str(folder)}


def _as_list(items: Any) -> list:
    """A Trainer argument that takes one item or several, as a list of its own."""
    if items is None:
        return []
    return list(items) if isinstance(items, (list, tuple)) else [items]
