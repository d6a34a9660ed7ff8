"""Runs that survive: resume with `ckpt_path="last"`, stop cleanly on Ctrl-C or SIGTERM, read checkpoints safely.

- `LitTrainer` (what `make_trainer` and the CLI build) continues the latest run of a
  logger's folder with `fit(..., ckpt_path="last")`: the same version folder, its
  newest checkpoint (`last.ckpt`, or `interrupted.ckpt` when that is newer). A new
  run never writes into a version folder that already holds a run.
- `Interruption` turns Ctrl-C into what Lightning does on SIGTERM: the training
  step under way finishes, the state after it goes to `interrupted.ckpt`, and the
  process exits (status 130 for SIGINT, 143 for SIGTERM) saying how to continue.
- `Resumable`, the base of every model here: its checkpoints carry the random
  state (an exact resume), and `load_from_checkpoint` reads without pickle.
- `CheckpointIO` loads checkpoints with `torch.load(weights_only=True)` (they hold
  plain data only) and turns an unreadable file into one error naming it. Saving
  is Lightning's own: the bytes go to a temporary file that replaces the old
  checkpoint only once complete, so a crash mid-write leaves the previous one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins import CheckpointIO as AnyCheckpointIO
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from nnmodules._lightning import epochs_done, is_last_batch, stop_after_this_step

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # what stops a fit cleanly (Interruption)
INTERRUPTED = "interrupted"  # the checkpoint of an interrupted run: <checkpoints dir>/interrupted.ckpt
PROGRESS_BAR_STEPS = 20  # the progress bar redraws every this many steps (and at the end of each epoch)
RESUME_HINT = 'continue the run with `--ckpt_path last` on the command line, or `trainer.fit(..., ckpt_path="last")`'


def read_checkpoint(path: str | Path, map_location: Any = None) -> dict[str, Any]:
    """A checkpoint's contents, loaded without pickle (`weights_only=True`); a clear error for anything else."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist: pass the path of a .ckpt file")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError... depending on the damage
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"{path} is not a readable checkpoint ({reason}): it may be truncated (a copy cut short) or not "
            f"written by Lightning; use another checkpoint of the run, e.g. its last.ckpt"
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path} is not a Lightning checkpoint: it holds no state_dict")
    return checkpoint


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


class CheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint reading and writing, with loads through `read_checkpoint`."""

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return read_checkpoint(path, map_location=map_location or (lambda storage, _: storage))


def _run_folders(root: Path) -> list[Path]:
    """The version folders of a logger's root, oldest version first."""
    versions = [p for p in root.glob("version_*") if p.is_dir() and p.name.removeprefix("version_").isdigit()]
    return sorted(versions, key=lambda p: int(p.name.removeprefix("version_")))


def _resumable(checkpoint_dir: Path) -> Path | None:
    """The newest of a run's `last.ckpt` and `interrupted.ckpt`, if it has either."""
    found = [checkpoint_dir / f"{name}.ckpt" for name in (ModelCheckpoint.CHECKPOINT_NAME_LAST, INTERRUPTED)]
    found = [path for path in found if path.is_file()]
    return max(found, key=lambda path: path.stat().st_mtime_ns) if found else None


class Resumable(L.LightningModule):
    """What a model adds for runs that survive: its random state travels in its checkpoints, and
    `load_from_checkpoint` reads without pickle and names a file that is no checkpoint of this class."""

    _rng_to_restore: dict[str, Any] | None = None  # from a checkpoint, for the first training step after it

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, *args: Any, **kwargs: Any) -> Any:
        if isinstance(checkpoint_path, (str, Path)):
            read_checkpoint(checkpoint_path)  # loads without pickle too: raises naming the file
        if not args:
            kwargs.setdefault("weights_only", True)  # checkpoints hold plain data only
        try:
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)
        except (RuntimeError, TypeError, ValueError) as error:  # its hyperparameters or weights do not fit
            reason = " ".join(line.strip() for line in str(error).splitlines()[:2])
            raise ValueError(
                f"{checkpoint_path} does not load as a {cls.__name__} ({reason}): is it a checkpoint of another "
                f"model? Load it with the class that wrote it"
            ) from error

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
        checkpoint["rng_states"] = {"torch": torch.get_rng_state(), "cuda": cuda}  # tensors: no pickle needed

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_to_restore = checkpoint.get("rng_states")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # restored where the interrupted run went on from this state: after the resumed run's sanity check
        # and data loader set-up, which draw nothing from the global generator (loaders have their own)
        if self._rng_to_restore is not None:
            torch.set_rng_state(self._rng_to_restore["torch"])
            if self._rng_to_restore["cuda"]:
                torch.cuda.set_rng_state_all(self._rng_to_restore["cuda"])
            self._rng_to_restore = None


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


class NoProfiler(PassThroughProfiler):
    """Lightning's default profiler, which records nothing, without its cost: Lightning wraps each of
    the about 80 hook calls of a training step in `profiler.profile(name)`, which builds a generator-based
    context manager every time (about 1 us on a 2-core CPU); this one hands out one shared `nullcontext`."""

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:
        return self._nothing


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
    without a `profiler`, `NoProfiler` stands in for Lightning's do-nothing default.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # keyword arguments only, so that LightningCLI reads Trainer's own signature (e.g. `--trainer.callbacks+=`)
        _skip_nvml_check_without_nvml()
        plugins, callbacks = _as_list(kwargs.get("plugins")), _as_list(kwargs.get("callbacks"))
        if not any(isinstance(plugin, AnyCheckpointIO) for plugin in plugins):
            plugins.append(CheckpointIO())  # loads without pickle, with a clear error for a damaged file
        if kwargs.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            # Lightning's bar redraws after every step: 15-20% of a small model's epoch on a 2-core CPU
            callbacks.append(LitProgressBar())
        kwargs["plugins"], kwargs["callbacks"] = plugins, callbacks
        if kwargs.get("profiler") is None:
            kwargs["profiler"] = NoProfiler()
        super().__init__(*args, **kwargs)
        self._version_given = getattr(self.logger, "_version", None) is not None  # before any run resolves it

    def fit(
        self,
        model: L.LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: L.LightningDataModule | None = None,
        ckpt_path: str | Path | None = None,
        weights_only: bool | None = None,
    ) -> None:
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

    def _hparams_file(self, ckpt_path: str | Path) -> Path | None:
        """The hparams.yaml of the run folder a fit continues in, on rank 0."""
        logger, run = self._versioned_logger(), run_folder(ckpt_path)
        if logger is None or run is None or not self.is_global_zero or run.resolve() != Path(logger.log_dir).resolve():
            return None
        return run / "hparams.yaml"

    def _continue_in_its_folder(self, ckpt_path: str | Path) -> None:
        """The newest checkpoint of a run under the logger's root goes on in that run's folder, as "last" does;
        any other checkpoint starts a new folder (its run's later checkpoints stay as they are)."""
        logger, run = self._versioned_logger(), run_folder(ckpt_path)
        if logger is None or getattr(logger, "_version", None) is not None or run is None:
            return
        newest = _resumable(run / "checkpoints")
        ours = run in _run_folders(run.parent) and run.parent.resolve() == Path(logger.root_dir).resolve()
        if ours and newest is not None and newest.resolve() == Path(ckpt_path).resolve():
            logger._version = int(run.name.removeprefix("version_"))  # no public setter: as its __init__ does

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
        if getattr(logger, "_version", None) is not None:  # fixed by the user, or by an earlier fit of this trainer
            folders = [Path(logger.log_dir)]
        else:
            folders = _run_folders(root)[::-1]
        for folder in folders:
            if (checkpoint := _resumable(folder / "checkpoints")) is not None:
                logger._version = int(folder.name.removeprefix("version_"))  # no public setter: as its __init__ does
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


class Interruption(L.Callback):
    """Ctrl-C or SIGTERM during `fit`: finish the step, save `interrupted.ckpt`, exit saying how to continue.

    The signal only sets a flag; at the end of the training step under way, every
    process learns of it (under DDP, from any of them: one `max` reduction a step)
    and Lightning stops them all there, as it does on SIGTERM, after the same step.
    A second Ctrl-C interrupts at once, as Python does. A signal during validation
    takes effect after the next training step; one on an epoch's last step, after
    that epoch's validation and checkpoints.

    Lightning's own SIGTERM handler is replaced for the training loop: under DDP it
    calls a collective operation inside the handler, which deadlocks when every
    process gets the signal (torchrun, SLURM, or Lightning forwarding it).
    """

    def __init__(self) -> None:
        self._signal: int | None = None
        self._previous: dict[int, Any] = {}

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
        if signum and not is_last_batch(trainer):  # on the last, after the epoch's validation and checkpoints
            self._signal = signum
            stop_after_this_step(trainer)

    def _restore(self) -> None:
        if _main_thread():
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
        self._previous = {}

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self._restore()
        if not isinstance(exception, SIGTERMException):
            return
        signum = self._signal or signal.SIGTERM
        exception.code = 128 + signum  # the shell's convention for "ended by this signal"
        where = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
        checkpoint_dir = getattr(trainer.checkpoint_callback, "dirpath", None)
        if trainer.sanity_checking or trainer.validating or not checkpoint_dir:
            rank_zero_info(f"{signal.Signals(signum).name} during {where}: {RESUME_HINT} from its last checkpoint")
            return
        path = os.path.join(checkpoint_dir, f"{INTERRUPTED}.ckpt")
        try:
            trainer.save_checkpoint(path, weights_only=False)
        except FloatingPointError as error:  # a diverged model is not worth continuing
            rank_zero_info(f"{signal.Signals(signum).name} at {where}: nothing saved: {error}")
            return
        rank_zero_info(f"{signal.Signals(signum).name} at {where}: saved {path}; {RESUME_HINT}")


def _as_list(items: Any) -> list:
    """A Trainer argument that takes one item or several, as a list of its own."""
    return [] if items is None else list(items) if isinstance(items, (list, tuple)) else [items]


def _skip_nvml_check_without_nvml() -> None:
    """Lightning asks torch to count GPUs through NVML (PYTORCH_NVML_BASED_CUDA_CHECK=1), which does not start
    CUDA in a process that may fork. Without NVML (no NVIDIA driver) torch then tries to load it on every
    call and falls back to the CUDA runtime anyway; Adam's `step` makes that call, about 60 us a step on a
    2-core CPU. Where NVML cannot load, the check only costs time: turn it off (torch checks for "1")."""
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1" or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libnvidia-ml.so.1")  # what torch loads
    except OSError:
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
