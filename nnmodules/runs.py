"""The run machinery: a Trainer that continues runs by name and never mixes two runs in one folder.

- `LitTrainer` (what `make_trainer` and the CLI build) continues the latest run of a
  logger's folder with `fit(..., ckpt_path="last")`: the same version folder, its
  newest checkpoint (`last.ckpt`, or `interrupted.ckpt` when that is newer). A new
  run never writes into a version folder that already holds a run, and a finished
  run is refused before anything is written.
- `LitProgressBar`, the Trainer's default bar: redrawn every few steps, with the loss.
- `run_folder`, `earlier_name`: where a checkpoint's run is, where an earlier file is kept.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins import CheckpointIO as AnyCheckpointIO
from lightning.pytorch.callbacks import (
    LearningRateMonitor,
    ModelCheckpoint,
    ModelSummary,
    ProgressBar,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torchmetrics import Metric, MetricCollection

from nnmodules import quiet
from nnmodules._lightning import (
    NoProfiler,
    epochs_done,
    logger_version,
    no_last_checkpoint_in_fast_dev_run,
    set_logger_version,
    skip_nvml_check_without_nvml,
)
from nnmodules.checkpoints import CheckpointIO, read_checkpoint
from nnmodules.export import Format, export

INTERRUPTED = "interrupted"  # the checkpoint of an interrupted run: <checkpoints dir>/interrupted.ckpt
PROGRESS_BAR_STEPS = 20  # the progress bar redraws every this many steps (and at the end of each epoch)


def run_folder(ckpt_path: str | Path | None) -> Path | None:
    """The run folder a checkpoint belongs to (`<run>/checkpoints/<name>.ckpt`), or None for one elsewhere."""
    if not ckpt_path or Path(ckpt_path).suffix != ".ckpt" or Path(ckpt_path).parent.name != "checkpoints":
        return None
    return Path(ckpt_path).parent.parent


def earlier_name(path: Path) -> Path:
    """The next free `<stem>.<n><suffix>` beside `path`: where an earlier version of it is kept."""
    number = 1
    while (kept := path.with_name(f"{path.stem}.{number}{path.suffix}")).exists():
        number += 1
    return kept


def _run_folders(root: Path) -> list[Path]:
    """The version folders of a logger's root, oldest version first."""
    versions = [p for p in root.glob("version_*") if p.is_dir() and p.name.removeprefix("version_").isdigit()]
    return sorted(versions, key=lambda p: int(p.name.removeprefix("version_")))


def _resumable(checkpoint_dir: Path) -> Path | None:
    """The newest of a run's `last.ckpt` and `interrupted.ckpt`, if it has either."""
    found = [checkpoint_dir / f"{name}.ckpt" for name in (ModelCheckpoint.CHECKPOINT_NAME_LAST, INTERRUPTED)]
    found = [path for path in found if path.is_file()]
    return max(found, key=lambda path: path.stat().st_mtime_ns) if found else None


class LitProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar, redrawn every `refresh_rate` steps, with the last logged `train/loss`.

    The models log `train/loss` without `prog_bar`: Lightning turns every progress-bar
    metric into a Python number after every training step, shown or not, and on a GPU
    that makes the host wait for the device at each step (Lightning-AI/pytorch-lightning#21232).
    This bar reads the loss only when it redraws.
    """

    def __init__(self, refresh_rate: int = PROGRESS_BAR_STEPS) -> None:
        super().__init__(refresh_rate=refresh_rate)

    def get_metrics(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, module)
        loss = trainer.callback_metrics.get("train/loss")
        if loss is None:
            return items
        version = {"v_num": items.pop("v_num")} if "v_num" in items else {}
        return {**version, "train/loss": loss.item(), **items}


class NetworkSummary(ModelSummary):
    """Lightning's model summary (the plain table: `rich` is optional) without the rows of the metric objects.

    They have no weights: they are what a model computes, not what it is.
    """

    metrics: set[str] = set()  # the model's attributes that are metric objects

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        children = pl_module.named_children()
        self.metrics = {name for name, child in children if isinstance(child, (Metric, MetricCollection))}
        super().on_fit_start(trainer, pl_module)

    def summarize(self, summary_data: list[tuple[str, list[str]]], *args: Any, **kwargs: Any) -> None:
        names = dict(summary_data)["Name"]
        keep = [row for row, name in enumerate(names) if name.split(".")[0] not in self.metrics]
        super().summarize([(title, [values[row] for row in keep]) for title, values in summary_data], *args, **kwargs)


class LitTrainer(L.Trainer):
    """A Lightning `Trainer` that continues runs by name and never mixes two runs in one folder.

    `fit(..., ckpt_path="last")` looks, when the logger's version is not fixed, for
    the newest version folder under the logger's root that holds a checkpoint, and
    continues there: the logger writes to that version, the checkpoint callback
    saves to its `checkpoints/`. With none, it starts a new run (as Lightning does:
    "last" can be passed on every start of a job that may be preempted).
    A fixed `version` (e.g. `--trainer.logger.init_args.version 3`) that already
    holds a run is refused for a new run: continue it with "last" or pick another.
    Checkpoints are read by `CheckpointIO` unless another checkpoint plugin is given;
    the progress bar (`LitProgressBar`) redraws every `PROGRESS_BAR_STEPS` steps unless one is given;
    the model summary (`NetworkSummary`) leaves out metric objects unless another summary is given;
    without a `profiler`, `NoProfiler` stands in for Lightning's do-nothing default; without a logger
    (`logger=False`), a `LearningRateMonitor` among the callbacks is left out, as it needs one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # keyword arguments only, so that LightningCLI reads Trainer's own signature (e.g. `--trainer.callbacks+=`)
        skip_nvml_check_without_nvml()
        quiet.install()
        plugins, callbacks = _as_list(kwargs.get("plugins")), _as_list(kwargs.get("callbacks"))
        if not any(isinstance(plugin, AnyCheckpointIO) for plugin in plugins):
            plugins.append(CheckpointIO())  # loads without pickle, with a clear error for a damaged file
        if kwargs.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            # Lightning's bar redraws after every step, a cost that small models notice (docs/results.md)
            callbacks.append(LitProgressBar())
        if kwargs.get("enable_model_summary") is not False and not any(isinstance(c, ModelSummary) for c in callbacks):
            callbacks.append(NetworkSummary())
        if kwargs.get("logger") in (False, []):  # a LearningRateMonitor (a default) would stop a run without logger
            callbacks = [callback for callback in callbacks if not isinstance(callback, LearningRateMonitor)]
        kwargs["plugins"], kwargs["callbacks"] = plugins, callbacks
        if kwargs.get("profiler") is None:
            kwargs["profiler"] = NoProfiler()
        super().__init__(*args, **kwargs)
        no_last_checkpoint_in_fast_dev_run(self)
        logger = self.logger
        self._version_given = isinstance(logger, (TensorBoardLogger, CSVLogger)) and logger_version(logger) is not None

    def fit(
        self,
        model: L.LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: L.LightningDataModule | None = None,
        ckpt_path: str | Path | None = None,
        weights_only: bool | None = None,
    ) -> None:
        """Train the model, validating after every epoch; `ckpt_path` continues a run ("last": this run's newest).

        As `lightning.Trainer.fit`, in a run folder of its own: a new run refuses a folder that holds one,
        and a run continued from its newest checkpoint goes on in that checkpoint's folder (docs/runs.md).
        """
        if ckpt_path == "last":
            ckpt_path = self._latest_checkpoint()
        elif ckpt_path is None:
            self._refuse_used_folder()
        else:
            self._continue_in_its_folder(ckpt_path)
        if ckpt_path is not None and Path(ckpt_path).suffix == ".ckpt":  # not Lightning's "best", "hpc", ...
            self._refuse_finished_run(ckpt_path)
        hparams = self._hparams_file(ckpt_path) if ckpt_path is not None else None
        kept = hparams.rename(earlier_name(hparams)) if hparams is not None and hparams.is_file() else None
        # moved aside: Lightning writes hparams.yaml only where there is none, and so writes this run's settings
        try:
            with warnings.catch_warnings():
                if ckpt_path is not None:  # continuing a run: its checkpoint folder is meant to hold checkpoints
                    warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
                super().fit(model, train_dataloaders, val_dataloaders, datamodule, ckpt_path, weights_only)
        finally:
            if kept is not None and not hparams.is_file():
                kept.rename(hparams)  # the run stopped before writing its own
            elif kept is not None and hparams.read_bytes() == kept.read_bytes():
                kept.unlink()
            elif kept is not None:
                rank_zero_info(f"this run's settings differ from its earlier ones, which are kept in {kept}")

    def export(
        self,
        model: L.LightningModule,
        datamodule: L.LightningDataModule | None = None,
        ckpt_path: str | Path | None = None,
        format: Format = "onnx",
        output: str | Path | None = None,
        overwrite: bool = False,
    ) -> list[Path]:
        """Write a checkpoint's model as ONNX or pt2, to predict without Lightning (`nnmodules.export`).

        Args:
            model: the model to load the checkpoint's weights into.
            datamodule: its data, given the checkpoint's state (a table's preprocessing).
            ckpt_path: the checkpoint.
            format: "onnx" (onnxruntime) or "pt2" (`torch.export.load`).
            output: the file to write; None: `<run>/export/<checkpoint's name>.<format>`.
            overwrite: replace files of the same names (otherwise an existing one stops the export).
        """
        if ckpt_path is None:
            raise ValueError("export needs a checkpoint: pass --ckpt_path <run>/checkpoints/<name>.ckpt")
        checkpoint = read_checkpoint(ckpt_path, map_location="cpu")
        model.load_state_dict(checkpoint["state_dict"])
        data_state = checkpoint.get(type(datamodule).__qualname__)
        if data_state is not None:
            datamodule.load_state_dict(data_state)
        if output is None:
            folder = run_folder(ckpt_path) or Path(ckpt_path).parent
            output = folder / "export" / f"{Path(ckpt_path).stem}.{format}"
        files = export(model.cpu(), output, format, datamodule, overwrite)
        rank_zero_info(f"exported {Path(ckpt_path).name} to {', '.join(map(str, files))}")
        return files

    def _hparams_file(self, ckpt_path: str | Path) -> Path | None:
        """The hparams.yaml of the run folder a fit continues in, on rank 0."""
        logger, run = self._versioned_logger(), run_folder(ckpt_path)
        if logger is None or run is None or not self.is_global_zero or run.resolve() != Path(logger.log_dir).resolve():
            return None
        return run / "hparams.yaml"

    def _continue_in_its_folder(self, ckpt_path: str | Path) -> None:
        """The newest checkpoint of a run goes on in that run's folder, as "last" does.

        Any other checkpoint starts a new folder (its run's later checkpoints stay as they are).
        """
        logger, run = self._versioned_logger(), run_folder(ckpt_path)
        if logger is None or logger_version(logger) is not None or run is None:
            return
        newest = _resumable(run / "checkpoints")
        ours = run in _run_folders(run.parent) and run.parent.resolve() == Path(logger.root_dir).resolve()
        if ours and newest is not None and newest.resolve() == Path(ckpt_path).resolve():
            set_logger_version(logger, int(run.name.removeprefix("version_")))

    def _versioned_logger(self) -> TensorBoardLogger | CSVLogger | None:
        """The logger whose version folder holds the checkpoints, unless the checkpoint folder is set by hand."""
        if self.checkpoint_callback is None or getattr(self.checkpoint_callback, "dirpath", None) is not None:
            return None
        logger = self.logger
        return logger if isinstance(logger, (TensorBoardLogger, CSVLogger)) else None

    def _latest_checkpoint(self) -> str | None:
        logger = self._versioned_logger()
        if logger is None:
            return "last"  # a fixed checkpoint folder: Lightning's own search for last*.ckpt there
        root = Path(logger.root_dir)
        if logger_version(logger) is not None:  # fixed by the user, or by an earlier fit of this trainer
            folders = [Path(logger.log_dir)]
        else:
            folders = _run_folders(root)[::-1]
        for folder in folders:
            if (checkpoint := _resumable(folder / "checkpoints")) is not None:
                if logger_version(logger) is None:  # a version given may be any name (`version="trial_3"`)
                    set_logger_version(logger, int(folder.name.removeprefix("version_")))
                rank_zero_info(f"continuing the run in {folder} from {checkpoint.name}")
                return str(checkpoint)
        rank_zero_info(f"no checkpoint to continue under {root}: starting a new run")
        return None

    def _refuse_finished_run(self, ckpt_path: str | Path) -> None:
        """A checkpoint that has trained as long as this Trainer would is refused before anything is written."""
        checkpoint = read_checkpoint(ckpt_path)
        epochs, steps = epochs_done(checkpoint), checkpoint["global_step"]
        by_epochs = self.max_epochs not in (None, -1) and epochs >= self.max_epochs
        if by_epochs or (self.max_steps != -1 and steps >= self.max_steps):
            limit = f"max_epochs={self.max_epochs}" if by_epochs else f"max_steps={self.max_steps}"
            longer = f"--trainer.max_epochs {2 * epochs}" if by_epochs else f"--trainer.max_steps {2 * steps}"
            raise ValueError(
                f"{ckpt_path} has trained {epochs} epoch(s) ({steps} steps), as many as {limit} asks: nothing is left "
                f"to train. To train longer, ask for more ({longer} with --ckpt_path); to evaluate it, "
                f"`litmodules test --ckpt_path {ckpt_path}`"
            )

    def _refuse_used_folder(self) -> None:
        logger = self._versioned_logger()
        if logger is None or not self._version_given or self.global_rank != 0:
            return  # a version chosen by the logger is a new folder; under DDP rank 0 alone writes
        folder = Path(logger.log_dir)
        if folder.is_dir() and any(folder.iterdir()):
            raise ValueError(
                f"{folder} already holds a run, which a new run would overwrite: continue it with "
                f'`--ckpt_path last` (`ckpt_path="last"`), or leave the logger\'s version unset for a new folder'
            )


def _as_list(items: Any) -> list:
    """A Trainer argument that takes one item or several, as a list of its own."""
    if items is None:
        return []
    return list(items) if isinstance(items, (list, tuple)) else [items]
