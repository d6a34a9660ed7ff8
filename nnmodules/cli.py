"""The command line (`litmodules`, `python -m nnmodules`) and the project's Trainer defaults.

The defaults live here once and serve both ways of running: `LitCLI` for the
command line and YAML configs, `make_trainer` for scripts that call
`Trainer.fit` themselves.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import lightning as L
import torch
from jsonargparse import lazy_instance
from lightning.pytorch.callbacks import BasePredictionWriter, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from nnmodules.heads import MONITOR
from nnmodules.runs import Interruption, LitTrainer

SEED = 42
TRAINER_DEFAULTS: dict[str, Any] = {"accelerator": "auto", "devices": "auto", "max_epochs": 10}
# TensorBoard runs under lightning_logs/<name>/version_<n>/, checkpoints in its checkpoints/
LOGGER_DEFAULTS: dict[str, Any] = {
    "save_dir": "lightning_logs",
    "name": "",
    "log_graph": True,  # the model's graph, from its example_input_array
    "default_hp_metric": False,  # no placeholder hp_metric = -1 in the HParams tab
}
CHECKPOINT_DEFAULTS: dict[str, Any] = {
    "monitor": MONITOR,
    "mode": "min",
    "save_last": True,
    "filename": "epoch{epoch:02d}-val_loss{val/loss:.4f}",
    "auto_insert_metric_name": False,  # the metric names hold "/", which would make folders
}


class PredictionWriter(BasePredictionWriter):
    """Writes what `predict` returns to a CSV file in the run's folder, one row per example in the data's order.

    Classification: the predicted class, then one probability per class (named by
    the data module's `class_names` when it has them). Regression: the prediction.

    Args:
        filename: the file's name, inside the run's log folder (a new folder for every run), or a path.
        overwrite: replace a file of that name; otherwise one that exists stops `predict` before it starts.
    """

    def __init__(self, filename: str = "predictions.csv", overwrite: bool = False) -> None:
        super().__init__(write_interval="epoch")
        self.filename, self.overwrite = filename, overwrite

    def path(self, trainer: L.Trainer) -> Path:
        return Path(trainer.log_dir or ".") / self.filename

    def on_predict_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        path = self.path(trainer)
        if path.exists() and not self.overwrite:
            raise FileExistsError(
                f"{path} exists: pass --prediction_writer.overwrite true to replace it, "
                f"or another --prediction_writer.filename"
            )

    def write_on_epoch_end(self, trainer: L.Trainer, module: L.LightningModule, predictions: Any, batch_indices: Any):
        path = self.path(trainer)  # on every rank: `trainer.log_dir` is a collective call under DDP
        outputs = torch.cat(predictions).cpu()
        if trainer.world_size > 1:  # under DDP each rank predicted a share: rank 0 writes all, in the data's order
            rows = torch.tensor([row for batch in batch_indices[0] for row in batch], dtype=torch.long)
            shares: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(shares, (rows, outputs))
            if not trainer.is_global_zero:
                return
            rows, outputs = (torch.cat(parts) for parts in zip(*shares, strict=True))
            outputs = outputs[rows.argsort()]
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w" if self.overwrite else "x") as file:  # "x": never overwrite an earlier file
            if outputs.dim() == 1:  # regression
                file.write("prediction\n" + "".join(f"{value:.6g}\n" for value in outputs.tolist()))
            else:
                names = getattr(trainer.datamodule, "class_names", None) or range(outputs.shape[1])
                file.write(",".join(["prediction", *(f"p_{name}" for name in names)]) + "\n")
                for label, row in zip(outputs.argmax(dim=1).tolist(), outputs.tolist(), strict=True):
                    file.write(",".join([str(label), *(f"{p:.6g}" for p in row)]) + "\n")
        rank_zero_info(f"predictions of {len(outputs)} examples written to {path}")


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


def make_trainer(name: str = "", **overrides: Any) -> L.Trainer:
    """A Trainer with the project's defaults (the CLI's too); keyword arguments override them.

    Args:
        name: the run's folder under `lightning_logs/`.
        **overrides: any `Trainer` argument.
    """
    defaults = {
        **TRAINER_DEFAULTS,
        "logger": TensorBoardLogger(**{**LOGGER_DEFAULTS, "name": name}),
        "callbacks": [ModelCheckpoint(**CHECKPOINT_DEFAULTS), LearningRateMonitor(), HParamsMetrics(), Interruption()],
    }
    return LitTrainer(**{**defaults, **overrides})


class LitCLI(LightningCLI):
    """LightningCLI with the project's defaults, callbacks and argument links.

    Data modules expose `num_features`, `num_classes`, `class_weights`,
    `target_mean` and `target_std`; they are linked to the model's `input_dim` and
    the arguments of the same names, so no one types them twice. A model that
    lacks one of these arguments simply does not get it.
    """

    def __init__(self, **kwargs: Any) -> None:
        logger = lazy_instance(TensorBoardLogger, **LOGGER_DEFAULTS)
        # callbacks here are always present, besides those of a config's trainer.callbacks
        always = {"logger": logger, "callbacks": [HParamsMetrics(), Interruption()]}
        kwargs.setdefault("trainer_defaults", {**TRAINER_DEFAULTS, **always})
        kwargs.setdefault("trainer_class", LitTrainer)
        # LitTrainer refuses a new run in a used folder: the config is rewritten only by a run continuing itself
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("seed_everything_default", SEED)
        super().__init__(**kwargs)

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({f"checkpoint.{key}": value for key, value in CHECKPOINT_DEFAULTS.items()})
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")  # acts in `predict` only
        parser.link_arguments("data.num_features", "model.init_args.input_dim", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_weights", "model.init_args.class_weights", apply_on="instantiate")
        parser.link_arguments("data.target_mean", "model.init_args.target_mean", apply_on="instantiate")
        parser.link_arguments("data.target_std", "model.init_args.target_std", apply_on="instantiate")
        parser.add_argument("--test_after_fit", type=bool, default=False, help="after fit, test the best checkpoint")

    def before_instantiate_classes(self) -> None:
        config = self.config.get(str(self.subcommand), self.config)
        if config.get("lr_scheduler") and not config.get("optimizer"):
            raise ValueError("--lr_scheduler needs --optimizer as well, e.g. --optimizer Adam --optimizer.lr 0.001")

    def after_instantiate_classes(self) -> None:
        # LightningCLI hands the model its whole config section as hyperparameters, link targets included;
        # one the model does not take would be saved in its checkpoints and break `--ckpt_path` later.
        accepted = inspect.signature(type(self.model).__init__).parameters
        for saved in (self.model.hparams, getattr(self.model, "_hparams_initial", {})):
            for name in [name for name in saved if not name.startswith("_") and name not in accepted]:
                del saved[name]

    def after_fit(self) -> None:
        if not self.config.fit.test_after_fit or self.trainer.fast_dev_run:
            return
        best = self.trainer.checkpoint_callback.best_model_path if self.trainer.checkpoint_callback else ""
        fitted = {name: float(value) for name, value in self.trainer.callback_metrics.items() if name.endswith("_best")}
        results = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path="best" if best else None)
        lines = [f"{name}: {value:.4f}" for name, value in {**fitted, **results[0]}.items()]
        lines.append(f"best checkpoint: {best}" if best else "no checkpoint: tested the final weights")
        if self.trainer.log_dir:
            lines.append(f"TensorBoard: tensorboard --logdir {self.trainer.log_dir}")
        rank_zero_info("\n".join(lines))


def main() -> None:
    """The `litmodules` console script."""
    LitCLI()
