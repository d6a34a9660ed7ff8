"""Callbacks: what every run does besides training, predictions to a CSV file, and `torch.compile`.

Every run: Ctrl-C, the HParams tab, the summary at its end; `torch.compile` is switched on from a config.
TensorBoard's figures are in `figures.py`.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from nnmodules._lightning import is_last_batch, stop_after_this_step, tensorboard_writer
from nnmodules.runs import INTERRUPTED, run_folder

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # what stops a fit cleanly (Interruption)
RESUME_HINT = 'continue the run with `--ckpt_path last` on the command line, or `trainer.fit(..., ckpt_path="last")`'


class PredictionWriter(BasePredictionWriter):
    """Writes what `predict` returns to a CSV file, one row per example, in the data's order.

    Each row starts with who it is: `row`, its position in the file or split it was
    predicted from, and the data's id column (`TabularDataModule(id_column=...)`)
    when it has one. Classification: `prediction`, the label as the data has it
    (the data module's `class_names`), then `p_<label>`, one probability per class.
    Regression: `prediction`, in the target's units.

    Args:
        filename: None: `predictions/<what was predicted>.csv` (e.g. `predictions/new.csv` for
            `predict_csv=new.csv`, `predictions/test.csv` for the test split) in the run folder of the
            checkpoint predicted from, or else the Trainer's log folder; a name or path: inside that folder.
        overwrite: replace a file of that name; otherwise one that exists stops `predict` before it starts.
    """

    def __init__(self, filename: str | None = None, overwrite: bool = False) -> None:
        super().__init__(write_interval="epoch")
        self.filename, self.overwrite = filename, overwrite

    def path(self, trainer: L.Trainer) -> Path:
        folder = run_folder(trainer.ckpt_path) or Path(trainer.log_dir or ".")  # log_dir: collective under DDP
        name = getattr(trainer.datamodule, "predict_name", "predictions")
        return folder / (self.filename or f"predictions/{name}.csv")

    def on_predict_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        path = self.path(trainer)
        if path.exists() and not self.overwrite:
            raise FileExistsError(
                f"{path} exists: pass --prediction_writer.overwrite true to replace it, "
                f"or another --prediction_writer.filename"
            )

    def write_on_epoch_end(self, trainer: L.Trainer, module: L.LightningModule, predictions: Any, batch_indices: Any):
        path = self.path(trainer)  # on every rank: see `path`
        outputs = torch.cat(predictions).cpu()
        if trainer.world_size > 1:  # under DDP each rank predicted a share: rank 0 writes all, in the data's order
            rows = torch.tensor([row for batch in batch_indices[0] for row in batch], dtype=torch.long)
            shares: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(shares, (rows, outputs))
            if not trainer.is_global_zero:
                return
            rows, outputs = (torch.cat(parts) for parts in zip(*shares, strict=True))
            outputs = outputs[rows.argsort()]
        table = self.table(trainer.datamodule, outputs)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w" if self.overwrite else "x", newline="") as file:  # "x": never overwrite an earlier file
            table.to_csv(file, index=False, float_format="%.6g")
        rank_zero_info(f"predictions of {len(table)} examples written to {path}")

    @staticmethod
    def table(data: L.LightningDataModule | None, outputs: torch.Tensor) -> pd.DataFrame:
        """The rows' identities, then the predictions (see the class)."""
        rows = (
            data.prediction_rows() if hasattr(data, "prediction_rows") else pd.DataFrame({"row": range(len(outputs))})
        )
        if len(rows) != len(outputs):
            raise RuntimeError(f"{len(outputs)} predictions for {len(rows)} rows: the data changed while predicting")
        table = rows.reset_index(drop=True)
        if outputs.dim() == 1:  # regression
            return table.assign(prediction=outputs.numpy())
        labels = getattr(data, "class_names", None) or [str(index) for index in range(outputs.shape[1])]
        table["prediction"] = [labels[index] for index in outputs.argmax(dim=1).tolist()]
        probabilities = pd.DataFrame(outputs.numpy(), columns=[f"p_{label}" for label in labels])
        return pd.concat([table, probabilities], axis=1)


class HParamsMetrics(L.Callback):
    """Fills TensorBoard's HParams tab: the run's hyperparameters and the model's `hparams_metrics`.

    The metrics: classifiers `val/acc_best`, `test/acc`; regressors `val/mse_best`, `test/mse`.

    The tab shows the last value logged under each name, so nothing is logged twice
    and no placeholder `hp_metric = -1` appears. One declaration per run folder. The model's
    settings come first; a data module's `plumbing` (where files are, how fast batches come:
    `data_dir`, `num_workers`, ...) is left out of the tab, not out of `hparams.yaml`.
    """

    def __init__(self) -> None:
        self._declared: set[str] = set()
        self._said = False  # that another logger has no HParams tab

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._declare(trainer, module)

    def on_test_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._declare(trainer, module)

    def _declare(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        logger = trainer.logger
        if logger is not None and not isinstance(logger, TensorBoardLogger) and not self._said:
            rank_zero_info(
                f"HParams: the tab is TensorBoard's; with {type(logger).__name__} the settings are in hparams.yaml"
            )
            self._said = True
        if not isinstance(logger, TensorBoardLogger) or not trainer.is_global_zero or logger.log_dir in self._declared:
            return
        settings = dict(module.hparams_initial)  # the model's first; where both have a name, the model's value
        data = trainer.datamodule
        for name, value in ({} if data is None else data.hparams_initial).items():
            if name not in getattr(data, "plumbing", ()):
                settings.setdefault(name, value)
        params = {
            name: value if isinstance(value, (bool, int, float, str)) else str(value)
            for name, value in _flat(settings).items()
        }
        metrics = dict.fromkeys(getattr(module, "hparams_metrics", ("val/loss",)), 0.0)  # names only: no value written
        writer = tensorboard_writer(logger)
        for summary in hparams_summaries(params, metrics):
            writer.add_summary(summary)
        self._declared.add(logger.log_dir)


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Public settings one level deep: a network's config as `net.class_path`, `net.<argument>`."""
    flat = {}
    for name, value in settings.items():
        if name.startswith("_"):
            continue
        if isinstance(value, dict) and "class_path" in value:
            flat |= _flat({"class_path": value["class_path"], **value.get("init_args", {})}, f"{prefix}{name}.")
        elif isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{name}.")
        else:
            flat[f"{prefix}{name}"] = value
    return flat


class RunSummary(L.Callback):
    """Says at the end of every `fit` where things are.

    The best checkpoint and its score, the last one, and the run: the TensorBoard command, or its folder.
    """

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.fast_dev_run:
            return
        lines = [f"{name}: {float(value):.4f}" for name, value in trainer.callback_metrics.items() if "_best" in name]
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, ModelCheckpoint):
            if checkpoint.best_model_path and checkpoint.best_model_score is not None:
                score = f"{checkpoint.monitor} {float(checkpoint.best_model_score):.4f}"
                lines.append(f"best checkpoint: {checkpoint.best_model_path} ({score})")
            if checkpoint.last_model_path:
                lines.append(f"last checkpoint: {checkpoint.last_model_path}")
        logger = trainer.logger
        if isinstance(logger, TensorBoardLogger):
            lines.append(f"TensorBoard: tensorboard --logdir {logger.log_dir}")
        elif isinstance(logger, CSVLogger):
            lines.append(f"run folder: {logger.log_dir} (metrics.csv: every logged value, a row per step)")
        elif logger is not None:
            lines.append(f"run folder: {trainer.log_dir} (logged to {type(logger).__name__})")
        rank_zero_info("\n".join(lines))


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

    Args:
        resume_hint: how to continue, said after the checkpoint's path.
    """

    def __init__(self, resume_hint: str = RESUME_HINT) -> None:
        self.resume_hint = resume_hint
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
            rank_zero_info(f"{signal.Signals(signum).name} during {where}: {self.resume_hint} from its last checkpoint")
            return
        path = os.path.join(checkpoint_dir, f"{INTERRUPTED}.ckpt")
        try:
            trainer.save_checkpoint(path, weights_only=False)
        except FloatingPointError as error:  # a diverged model is not worth continuing
            rank_zero_info(f"{signal.Signals(signum).name} at {where}: nothing saved: {error}")
            return
        rank_zero_info(f"{signal.Signals(signum).name} at {where}: saved {path}; {self.resume_hint}")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class Compile(L.Callback):
    """Trains with the model's `forward` compiled by `torch.compile` (for training and validation in `fit`).

    The model summary, the TensorBoard graph and the sanity check run before, on the
    plain model; after `fit` the model is plain again, so testing, predicting and
    tracing need no compilation, and checkpoints are those of the plain model.

    A compiled graph is specialised to its input shapes, and a new shape compiles
    again. Training batches of one size compile once: set the data module's
    `drop_last=True`, or the last, shorter batch of the first epoch compiles a
    second, shape-generic graph. Validation compiles for its first batch size and
    once more, shape-generic, at the first other size (its last batch), then no
    more (torch's automatic dynamic shapes). Training and evaluation mode are
    separate graphs (dropout differs).

    Args:
        mode: `torch.compile`'s: None (its default), "reduce-overhead" (CUDA graphs: the least
            launch overhead on a GPU) or "max-autotune".
        dynamic: `torch.compile`'s: None (shape-generic after the first change of shape),
            False (one graph per shape) or True (shape-generic from the start).
        backend: `torch.compile`'s: "inductor" (generates kernels), or e.g. "eager" (traces only).
    """

    def __init__(self, mode: str | None = None, dynamic: bool | None = None, backend: str | Callable = "inductor"):
        self.options: dict[str, Any] = {"mode": mode, "dynamic": dynamic, "backend": backend}

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        module.forward = torch.compile(module.forward, **self.options)  # this instance only, until fit ends

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._restore(module)

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self._restore(module)

    @staticmethod
    def _restore(module: L.LightningModule) -> None:
        module.__dict__.pop("forward", None)  # the class's forward again
