"""The command line (`litmodules`, `python -m nnmodules`) and the project's Trainer defaults.

The defaults live here once and serve both ways of running: `LitCLI` for the
command line and YAML configs, `make_trainer` for scripts that call
`Trainer.fit` themselves.
"""

from __future__ import annotations

import inspect
import json
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import lightning as L
from jsonargparse import Namespace, lazy_instance
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info

import datamodules  # noqa: F401  (its data modules by short name: --data TabularDataModule)
from nnmodules import quiet
from nnmodules._lightning import drop_hyperparameters, take_links_into_a_network_the_model_lacks
from nnmodules.callbacks import HParamsMetrics, Interruption, PredictionWriter, RunSummary
from nnmodules.errors import LitArgumentParser
from nnmodules.run_config import FROM_CHECKPOINT, RunConfig, with_run_config
from nnmodules.runs import LitTrainer, run_folder
from nnmodules.tasks import MONITOR, output_width

SEED = 42
TENSORBOARD = f"{TensorBoardLogger.__module__}.{TensorBoardLogger.__name__}"
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


def numbers_to_embed(numeric_features: int, embeds_numbers: bool) -> int:
    """A model's `numeric_features`: the data's numbers, if the data says to embed them; else none."""
    return numeric_features if embeds_numbers else 0


# data module attribute(s) -> model argument (under model.init_args)[, computed by], linked when the model is built
LINKS = [
    ("data.task", "task"),
    ("data.num_features", "input_dim"),
    ("data.num_classes", "num_classes"),
    ("data.class_weights", "class_weights"),
    ("data.target_mean", "target_mean"),
    ("data.target_std", "target_std"),
    (("data.numeric_features", "data.embeds_numbers"), "numeric_features", numbers_to_embed),
]
# the same for the arguments of a model's network (under model.init_args.net.init_args)
NET_LINKS = [
    ("data.num_features", "input_dim"),
    ("data.num_classes", "num_classes"),
    (("data.numeric_features", "data.embeds_numbers"), "numeric_features", numbers_to_embed),
    (("data.task", "data.num_classes"), "output_dim", output_width),
    ("data.image_shape", "in_channels", lambda shape: shape[0] if shape else None),
    ("data.image_shape", "image_size", lambda shape: shape[-1] if shape else None),
]


def default_callbacks(**interruption: Any) -> list[L.Callback]:
    """The callbacks of every run, besides the checkpoints and learning-rate monitor a config may set up.

    Args:
        **interruption: `Interruption`'s arguments.
    """
    return [HParamsMetrics(), Interruption(**interruption), RunSummary()]


def make_trainer(name: str = "", **overrides: Any) -> L.Trainer:
    """A Trainer with the project's defaults (the CLI's too); keyword arguments override them.

    Args:
        name: the run's folder under `lightning_logs/`.
        **overrides: any `Trainer` argument.
    """
    defaults = {
        **TRAINER_DEFAULTS,
        "logger": TensorBoardLogger(**{**LOGGER_DEFAULTS, "name": name}),
        "callbacks": [ModelCheckpoint(**CHECKPOINT_DEFAULTS), LearningRateMonitor(), *default_callbacks()],
    }
    return LitTrainer(**{**defaults, **overrides})


class LitCLI(LightningCLI):
    """LightningCLI with the project's defaults, callbacks and argument links.

    Data modules expose `task`, `num_features`, `num_classes`, `class_weights`,
    `target_mean`, `target_std` and `numeric_features` (where `embeds_numbers` says so,
    else 0); they are linked to the model's `input_dim` and the arguments of the same
    names, and to a network's (`model.init_args.net`): `input_dim`, `num_classes`,
    `numeric_features`, `output_dim` (one per class, or 1 for a binary or numeric target)
    and `in_channels` (images). No one types them twice; a model or
    network that lacks one of these arguments does not get it.

    `trainer_defaults` given update the project's (`TRAINER_DEFAULTS`, the TensorBoard logger,
    `default_callbacks`); LightningCLI's other arguments are as Lightning has them.
    """

    def __init__(self, args: list[str] | None = None, **kwargs: Any) -> None:
        quiet.install()
        logger = lazy_instance(TensorBoardLogger, **LOGGER_DEFAULTS)
        # callbacks here are always present, besides those of a config's trainer.callbacks
        always = {"logger": logger, "callbacks": default_callbacks()}
        kwargs["trainer_defaults"] = {**TRAINER_DEFAULTS, **always, **kwargs.get("trainer_defaults", {})}
        kwargs.setdefault("trainer_class", LitTrainer)
        kwargs.setdefault("parser_class", LitArgumentParser)  # errors in a line or two, not the whole usage
        kwargs.setdefault("save_config_callback", RunConfig)
        # LitTrainer refuses a new run in a used folder: the config is rewritten only by a run continuing itself
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("seed_everything_default", SEED)
        super().__init__(args=with_run_config(sys.argv[1:] if args is None else args), **kwargs)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's, and `export` (`LitTrainer.export`): a checkpoint's model as ONNX or pt2."""
        return {**LightningCLI.subcommands(), "export": {"model", "datamodule"}}

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict, subparser_kwargs: dict) -> None:
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        self.parser.add_argument("--version", action="version", version=f"litmodules {_version()}")
        self.parser.epilog = "litmodules tune --help: a hyperparameter search, each trial a `fit` (nnmodules.tune)"

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({f"checkpoint.{key}": value for key, value in CHECKPOINT_DEFAULTS.items()})
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")  # acts in `predict` only
        for source, target, *compute in LINKS:
            parser.link_arguments(source, f"model.init_args.{target}", *compute, apply_on="instantiate")
        for source, target, *compute in NET_LINKS:
            parser.link_arguments(source, f"model.init_args.net.init_args.{target}", *compute, apply_on="instantiate")
        parser.add_argument("--test_after_fit", type=bool, default=False, help="after fit, test the best checkpoint")

    def before_instantiate_classes(self) -> None:
        config = self.config.get(str(self.subcommand), self.config)
        take_links_into_a_network_the_model_lacks(self)
        if config.get("lr_scheduler") and not config.get("optimizer"):
            raise ValueError("--lr_scheduler needs --optimizer as well, e.g. --optimizer Adam --optimizer.lr 0.001")
        run = run_folder(config.get("ckpt_path")) if self.subcommand in FROM_CHECKPOINT else None
        if run is not None:  # evaluating or predicting a run's checkpoint: into that run's folder, not a new one
            config.trainer.logger = False
            # its metrics as events of their own, <run>/test/ or <run>/validate/
            if self.subcommand in ("validate", "test"):
                folder = {**LOGGER_DEFAULTS, "save_dir": str(run), "version": self.subcommand, "log_graph": False}
                config.trainer.logger = Namespace(class_path=TENSORBOARD, init_args=Namespace(**folder))

    def after_instantiate_classes(self) -> None:
        # LightningCLI hands the model its whole config section as hyperparameters, link targets included;
        # one the model does not take would be saved in its checkpoints and break `--ckpt_path` later.
        # (The project's models keep only their own arguments; this is for any other LightningModule.) What it
        # takes through **kwargs, jsonargparse found in the calls they go to: the parsed config's arguments.
        parsed = self.config.get(str(self.subcommand), self.config).get("model.init_args")
        accepted = {*inspect.signature(type(self.model).__init__).parameters, *vars(parsed or Namespace())}
        unused = [name for name in self.model.hparams if not name.startswith("_") and name not in accepted]
        drop_hyperparameters(self.model, unused)

    def after_fit(self) -> None:
        if not self.config.fit.test_after_fit or self.trainer.fast_dev_run:
            return
        best = self.trainer.checkpoint_callback.best_model_path if self.trainer.checkpoint_callback else ""
        ckpt_path = "best" if best else None  # its figures are printed below, with the checkpoint's name
        results = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt_path, verbose=False)
        lines = [f"{name}: {value:.4f}" for name, value in results[0].items()]
        lines.append(f"(tested {best or 'the final weights: no checkpoint'})")
        rank_zero_info("\n".join(lines))
        self._record("test")

    def after_test(self) -> None:
        self._record("test")

    def after_validate(self) -> None:
        self._record("validate")

    def _record(self, stage: str) -> None:
        """Adds the metrics of a checkpoint's evaluation to `<run>/<stage>_metrics.json`, by checkpoint name."""
        ckpt_path = self.trainer.ckpt_path
        run = run_folder(ckpt_path)
        if run is None or not self.trainer.is_global_zero:
            return
        path = run / f"{stage}_metrics.json"
        records = json.loads(path.read_text()) if path.is_file() else {}
        prefix = "val/" if stage == "validate" else "test/"
        metrics = self.trainer.callback_metrics.items()  # not the "_best" so far: a figure of the fit
        records[Path(ckpt_path).name] = {n: float(v) for n, v in metrics if n.startswith(prefix) and "_best" not in n}
        path.write_text(json.dumps(records, indent=2) + "\n")
        rank_zero_info(f"{stage} metrics of {Path(ckpt_path).name} added to {path}")


def _version() -> str:
    try:
        return version("litmodules")
    except PackageNotFoundError:  # run from a clone that was never installed
        return "(not installed)"
