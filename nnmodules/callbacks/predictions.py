"""Predictions to a CSV file, one row per example, named as the data names its rows and classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from datamodules.batches import TensorDataModule
from datamodules.contract import DataFacts, facts_of
from datamodules.errors import ExistingFileError
from nnmodules.tasks import TaskModule


class PredictionWriter(BasePredictionWriter):
    """Writes what `predict` returns to a CSV file, one row per example, in the data's order.

    Each row starts with who it is: `row`, its position in the file or split it was
    predicted from, and the data's id column (`TabularDataModule(id_column=...)`)
    when it has one. Classification: `prediction`, the label as the data has it
    (the data's facts' `class_names`), then `p_<label>`, one probability per class.
    Regression: `prediction`, in the target's units.

    Args:
        filename: None: `predictions/<what was predicted>.csv` (e.g. `predictions/new.csv` for
            `predict_csv=new.csv`, `predictions/test.csv` for the test split) in the run's folder (the
            Trainer's `default_root_dir`: the checkpoint's run, from the command line); a name or path: inside it.
        overwrite: replace a file of that name; otherwise one that exists stops `predict` before it starts.
    """

    def __init__(self, filename: str | None = None, overwrite: bool = False) -> None:
        super().__init__(write_interval="epoch")
        self.filename, self.overwrite = filename, overwrite

    def path(self, trainer: L.Trainer) -> Path:
        data = trainer.datamodule
        name = data.predict_name if isinstance(data, TensorDataModule) else "predictions"
        return Path(trainer.default_root_dir) / (self.filename or f"predictions/{name}.csv")

    def on_predict_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        path = self.path(trainer)
        if path.exists() and not self.overwrite:
            raise ExistingFileError(
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
        facts = facts_of(trainer.datamodule) or (module.facts if isinstance(module, TaskModule) else None)
        table = self.table(trainer.datamodule, outputs, facts)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w" if self.overwrite else "x", newline="") as file:  # "x": never overwrite an earlier file
            table.to_csv(file, index=False, float_format="%.6g")
        rank_zero_info(f"predictions of {len(table)} examples written to {path}")

    @staticmethod
    def table(data: L.LightningDataModule | None, outputs: torch.Tensor, facts: DataFacts | None) -> pd.DataFrame:
        """The rows' identities, then the predictions (see the class)."""
        if isinstance(data, TensorDataModule):
            rows = data.prediction_rows()
        else:
            rows = pd.DataFrame({"row": range(len(outputs))})
        if len(rows) != len(outputs):
            raise RuntimeError(f"{len(outputs)} predictions for {len(rows)} rows: the data changed while predicting")
        table = rows.reset_index(drop=True)
        if outputs.dim() == 1:  # regression
            return table.assign(prediction=outputs.numpy())
        known = facts.class_names if facts is not None else None
        labels = list(known) if known else [str(index) for index in range(outputs.shape[1])]
        table["prediction"] = [labels[index] for index in outputs.argmax(dim=1).tolist()]
        probabilities = pd.DataFrame(outputs.numpy(), columns=[f"p_{label}" for label in labels])
        return pd.concat([table, probabilities], axis=1)
