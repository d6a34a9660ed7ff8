"""Callbacks of every run: predictions to a CSV file, TensorBoard's HParams tab, and where a fit left things."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from nnmodules.runs import run_folder


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
    """Fills TensorBoard's HParams tab: the run's hyperparameters and, as its metrics, the model's
    `hparams_metrics` (classifiers: `val/acc_best`, `test/acc`; regressors: `val/mse_best`, `test/mse`).

    The tab shows the last value logged under each name, so nothing is logged twice
    and no placeholder `hp_metric = -1` appears. One declaration per run folder.
    """

    def __init__(self) -> None:
        self._declared: set[str] = set()

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._declare(trainer, module)

    def on_test_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._declare(trainer, module)

    def _declare(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        logger = trainer.logger
        if not isinstance(logger, TensorBoardLogger) or not trainer.is_global_zero or logger.log_dir in self._declared:
            return
        data_hparams = trainer.datamodule.hparams_initial if trainer.datamodule is not None else {}
        params = {
            name: value if isinstance(value, (bool, int, float, str)) else str(value)
            for name, value in {**data_hparams, **module.hparams_initial}.items()
            if not name.startswith("_")
        }
        metrics = dict.fromkeys(
            getattr(module, "hparams_metrics", ("val/loss",)), 0.0
        )  # names only: no value is written
        writer = logger.experiment._get_file_writer()  # as TensorBoardLogger.log_hyperparams does
        for summary in hparams_summaries(params, metrics):
            writer.add_summary(summary)
        self._declared.add(logger.log_dir)


class RunSummary(L.Callback):
    """Says at the end of every `fit` where things are: the best checkpoint and its score, the last one,
    and the TensorBoard command for the run."""

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
        if isinstance(trainer.logger, TensorBoardLogger):
            lines.append(f"TensorBoard: tensorboard --logdir {trainer.logger.log_dir}")
        rank_zero_info("\n".join(lines))
