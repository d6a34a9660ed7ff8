"""The Trainer's default progress bar and model summary, at the cost small models notice.

`LitProgressBar` redraws every `PROGRESS_BAR_STEPS` steps and shows the last logged `train/loss`;
`NetworkSummary` is Lightning's model summary without the rows of the metric objects.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelSummary, TQDMProgressBar
from torchmetrics import Metric, MetricCollection

from nnmodules.metrics import TRAIN_LOSS

PROGRESS_BAR_STEPS = 20  # the progress bar redraws every this many steps (and at the end of each epoch)


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
        loss = trainer.callback_metrics.get(TRAIN_LOSS)
        if loss is None:
            return items
        version = {"v_num": items.pop("v_num")} if "v_num" in items else {}
        return {**version, TRAIN_LOSS: loss.item(), **items}


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
