"""TensorBoard's HParams tab: one row per run, its settings, and the metrics its task is judged by."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from datamodules.batches import TensorDataModule
from datamodules.contract import facts_of
from nnmodules._lightning import tensorboard_writer
from nnmodules.metrics import VAL_LOSS, hparams_metrics


class HParamsMetrics(L.Callback):
    """Fills TensorBoard's HParams tab: the run's hyperparameters and the metrics its task is judged by.

    The metrics (`metrics.hparams_metrics`): classes `val/acc_best`, `test/acc`; numbers `val/mse_best`,
    `test/mse`; `val/loss` for a data module that publishes no facts.

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
        plumbing = data.plumbing if isinstance(data, TensorDataModule) else ()
        for name, value in ({} if data is None else data.hparams).items():
            if name not in plumbing:
                settings.setdefault(name, value)
        params = {
            name: value if isinstance(value, (bool, int, float, str)) else str(value)
            for name, value in _flat(settings).items()
        }
        facts = facts_of(data)
        names = hparams_metrics(facts.task) if facts is not None else (VAL_LOSS,)
        metrics = dict.fromkeys(names, 0.0)  # names only: no value is written
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
