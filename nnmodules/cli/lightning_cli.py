"""LightningCLI with the project's defaults, one parser per stage, and a run folder resolved before the Trainer.

`fit` resolves its run (`nnmodules.runs.folders`): a new one, the run a checkpoint continues, or with
`--ckpt_path last` the newest run of this model and data. `validate`, `test` and `predict` take the run of
their checkpoint (`nnmodules.runs.read_run`): its config is the parser's defaults, its model is the model,
and what they write goes into its folder. Models take what they were not given from their data's facts when
the Trainer sets them up, so nothing is linked here.
"""

from __future__ import annotations

import os
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import MethodType
from typing import Any

import lightning as L
import yaml
from jsonargparse import Namespace
from lightning.pytorch.callbacks import Checkpoint, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, LRSchedulerTypeTuple, instantiate_class
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.model_helpers import is_overridden
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from torch.optim import Optimizer

import datamodules
import nnmodules
from datamodules.arguments import import_class
from datamodules.batches import TensorDataModule
from datamodules.errors import UserError
from nnmodules._jsonargparse import raised_inside
from nnmodules.callbacks import RESUME_HINT, PredictionWriter, RunRecord
from nnmodules.callbacks.folder import refuse_a_used_folder
from nnmodules.callbacks.record import refuse_a_finished_run
from nnmodules.cli.errors import LitArgumentParser
from nnmodules.cli.recipes import ConfigOrRecipe
from nnmodules.runs import CHECKPOINT_DEFAULTS, LOGGER_DEFAULTS, SEED, TRAINER_DEFAULTS
from nnmodules.runs.folders import Run, last_run, new_run, numbered_runs, resumable_checkpoint, same_model_and_data
from nnmodules.runs.loading import CheckpointRun, config_of_0_1_0
from nnmodules.runs.quiet import evaluating_a_checkpoint
from nnmodules.runs.quiet import install as quiet
from nnmodules.runs.trainer import run_callbacks, trainer_arguments
from nnmodules.tasks import read_checkpoint, record_of

FOLDER_LOGGERS = (TensorBoardLogger, CSVLogger)  # the loggers whose folder is the run's
CALLBACK_KEYS = ("checkpoint", "lr_monitor", "prediction_writer")  # the callbacks configured by their own options


class LitCLI(LightningCLI):
    """LightningCLI with the project's defaults, for one stage, in the run's folder.

    Args:
        args: the stage's options, as on the command line (`--config mnist_mlp --trainer.max_epochs 3`).
        stage: "fit", "validate", "test" or "predict".
        checkpoint: the run of the checkpoint that validate, test and predict use (`--ckpt_path`).
        trainer_defaults: update the project's (`TRAINER_DEFAULTS`, the TensorBoard logger).
        callbacks: callbacks the Trainer has besides the config's and the project's (a search's pruning).
        resume_hint: how to continue an interrupted fit, as `Interruption` says it.
        **kwargs: LightningCLI's other arguments.
    """

    def __init__(
        self,
        args: Any = None,
        stage: str = "fit",
        checkpoint: CheckpointRun | None = None,
        trainer_defaults: dict[str, Any] | None = None,
        callbacks: list[L.Callback] | None = None,
        resume_hint: str = RESUME_HINT,
        **kwargs: Any,
    ) -> None:
        quiet()
        _import_every_public_class()
        self.stage, self.checkpoint_run = stage, checkpoint
        self.typed = [arg for arg in (args or []) if isinstance(arg, str)]  # the command line, to name what it misses
        self.extra_callbacks, self.resume_hint = list(callbacks or []), resume_hint
        self.run_folder, self.ckpt_path, self.config_text = Path("."), None, None
        kwargs.setdefault("parser_class", LitArgumentParser)  # errors in a line or two, not the whole usage
        kwargs["parser_kwargs"] = {"prog": f"litmodules {stage}", **kwargs.get("parser_kwargs", {})}
        kwargs.setdefault("seed_everything_default", SEED)
        # --optimizer and --lr_scheduler are made when the model has its parameters (once its data is known)
        kwargs.setdefault("auto_configure_optimizers", False)
        defaults = {**TRAINER_DEFAULTS, **(trainer_defaults or {})}
        super().__init__(
            args=args,
            run=False,
            trainer_class=L.Trainer,
            trainer_defaults=defaults,
            save_config_callback=None,  # the run's record writes its config.yaml, when it starts training
            load_from_checkpoint_support=False,  # the models keep their own arguments (TaskModule)
            **kwargs,
        )

    def init_parser(self, **kwargs: Any) -> LitArgumentParser:
        kwargs.setdefault("dump_header", [f"litmodules {_version()}, lightning {L.__version__}"])
        parser = self.parser_class(**kwargs)
        parser.add_argument("-c", "--config", action=ConfigOrRecipe, help="a config file, YAML text or a recipe's name")
        return parser

    def add_arguments_to_parser(self, parser: Any) -> None:
        tensorboard = f"{TensorBoardLogger.__module__}.{TensorBoardLogger.__name__}"
        parser.set_defaults({"trainer.logger": {"class_path": tensorboard, "init_args": LOGGER_DEFAULTS}})
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({f"checkpoint.{key}": value for key, value in CHECKPOINT_DEFAULTS.items()})
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")  # acts in `predict` only
        parser.add_optimizer_args((Optimizer,), link_to="AUTOMATIC")
        parser.add_lr_scheduler_args(LRSchedulerTypeTuple, link_to="AUTOMATIC")
        parser.add_argument("--test_after_fit", type=bool, default=False, help="after fit, test the best checkpoint")
        parser.add_argument("--ckpt_path", type=str | None, default=None, help="the checkpoint to start from")
        parser.add_argument("--weights_only", type=bool | None, default=None, help="(0.1.0's: ignored)")

    def parse_arguments(self, parser: Any, args: Any) -> None:
        if self.checkpoint_run is not None:  # the run's own config, under what the command line says
            parser.set_defaults({key: value for key, value in self.checkpoint_run.config.items() if key in CONFIGURED})
        super().parse_arguments(parser, args)

    def before_instantiate_classes(self) -> None:
        config = self.config
        if config.get("lr_scheduler") and not config.get("optimizer"):
            raise UserError("--lr_scheduler needs --optimizer as well, e.g. --optimizer Adam --optimizer.lr 0.001")
        _absolute_data_paths(config)
        if unused := _unused_options(self.typed, self.stage):
            rank_zero_warn(f"{', '.join(unused)}: not used by `litmodules {self.stage}`")
        if self.stage == "fit":
            self._fit_in_its_run(config)
        else:
            self._in_the_checkpoints_run(config)
        config.trainer.default_root_dir = str(self.run_folder)
        derived = self.stage == "fit" and config.checkpoint.dirpath == str(self.run_folder / "checkpoints")
        if derived:  # config.yaml says what was given: trained again elsewhere, a run saves into its own folder
            config.checkpoint.dirpath = None
        self.config_text = self.parser.dump(config, skip_unset=False)
        if derived:
            config.checkpoint.dirpath = str(self.run_folder / "checkpoints")

    def _fit_in_its_run(self, config: Namespace) -> None:
        """The run's folder: new, named, continued from a checkpoint, or `last`: the newest of this model and data."""
        logger, ckpt_path = config.trainer.logger, config.ckpt_path
        kept = isinstance(logger, Namespace) and _is_a(logger.class_path, FOLDER_LOGGERS)
        settings = logger.init_args if kept else Namespace(save_dir=LOGGER_DEFAULTS["save_dir"], name="", version=None)
        root, name, version = Path(settings.save_dir or "."), settings.name or "", settings.version
        if ckpt_path == "last":
            ours = self.parser.dump(config, format="yaml", skip_unset=False)
            found = self._last(root, name, version, yaml.safe_load(ours))
            fresh = new_run(root, name) if version is None else Run(root, name, version)
            run, ckpt_path = found if found else (fresh, None)
            if ckpt_path is None:
                rank_zero_info(f"no checkpoint to continue under {root / name}: starting a new run")
        elif ckpt_path is not None:
            run = self._run_of(Path(ckpt_path), root, name, version)
        else:
            run = new_run(root, name) if version is None else Run(root, name, version)
            refuse_a_used_folder(run.folder)
        if ckpt_path is not None:
            checkpoint = read_checkpoint(ckpt_path, map_location="cpu")
            _refuse_another_model(checkpoint, ckpt_path, config.model.class_path)
            refuse_a_finished_run(checkpoint, ckpt_path, config.trainer.max_epochs, config.trainer.max_steps)
            rank_zero_info(f"continuing the run in {run.folder} from {Path(ckpt_path).name}")
        if kept:
            settings.version = run.version
        if config.checkpoint.dirpath is None:
            config.checkpoint.dirpath = str(run.checkpoints)
        self.run_folder, self.ckpt_path = run.folder, ckpt_path

    def _last(self, root: Path, name: str, version: Any, ours: dict[str, Any]) -> tuple[Run, Path] | None:
        if version is not None:  # a run named: its own newest checkpoint
            run = Run(root, name, version)
            checkpoint = resumable_checkpoint(run.folder)
            return (run, checkpoint) if checkpoint else None
        ignored = ("batch_size", *_plumbing(ours))

        def same(folder: Path) -> bool:
            saved = folder / "config.yaml"
            return saved.is_file() and same_model_and_data(config_of_0_1_0(saved.read_text()), ours, ignored)

        return last_run(root, name, same)

    @staticmethod
    def _run_of(ckpt_path: Path, root: Path, name: str, version: Any) -> Run:
        """A run's newest checkpoint goes on in that run's folder; any other starts a new run, leaving that one."""
        folder = ckpt_path.absolute().parent.parent
        for run in numbered_runs(root, name) if version is None else [Run(root, name, version)]:
            newest = resumable_checkpoint(run.folder)
            if run.folder.absolute() == folder and newest is not None and newest.absolute() == ckpt_path.absolute():
                return run
        return new_run(root, name) if version is None else Run(root, name, version)

    def _in_the_checkpoints_run(self, config: Namespace) -> None:
        """The checkpoint's model, and its run's folder for what the stage writes (events of its own, predictions)."""
        evaluating_a_checkpoint()
        run = self.checkpoint_run
        if _name(config.model.class_path) != _name(run.model_class):
            given, held = _name(config.model.class_path), _name(run.model_class)
            raise UserError(
                f"{run.path} holds a {held}, and the options name a {given}: the model is the checkpoint's; "
                "leave --model out (or pass a checkpoint of that model)"
            )
        self.config = self.parser.parse_object({"model": run.config["model"]}, self.config)  # its weights' arguments
        self.run_folder, self.ckpt_path = run.folder, str(run.path)
        logger = run.config.get("trainer", {}).get("logger")
        kind = logger.get("class_path") if isinstance(logger, dict) else None
        self.config.trainer.logger = False
        if self.stage in ("validate", "test") and _is_a(kind, FOLDER_LOGGERS):  # its metrics as events of their own
            init_args = {"save_dir": str(run.folder), "name": "", "version": self.stage}
            if _is_a(kind, (TensorBoardLogger,)):
                init_args |= {"log_graph": False, "default_hp_metric": False}
            self.config.trainer.logger = Namespace(class_path=kind, init_args=Namespace(**init_args))

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError as error:  # a class refused its arguments: its own message, not jsonargparse's account
            inside = raised_inside(error)
            if isinstance(inside, UserError):
                raise inside from None
            raise
        optimizer, schedule = self.config_init.get("optimizer"), self.config_init.get("lr_scheduler")
        if optimizer:  # in place of the model's: made from its parameters when the Trainer asks for it
            if is_overridden("configure_optimizers", self.model):
                warnings.warn(
                    f"`{type(self.model).__name__}.configure_optimizers` will be overridden by "
                    f"`{type(self).__name__}.configure_optimizers`",
                    stacklevel=2,
                )

            def configure_optimizers(model: L.LightningModule) -> Any:
                made = instantiate_class(model.parameters(), optimizer)
                return LightningCLI.configure_optimizers(model, made, schedule and instantiate_class(made, schedule))

            self.model.configure_optimizers = MethodType(configure_optimizers, self.model)

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """The Trainer of the stage, as `make_trainer` composes one: its run's folder, the project's callbacks."""
        config = {**self.config_init["trainer"], **kwargs}
        checkpointing = config.get("enable_checkpointing") is not False and self.stage == "fit"
        own = [self.config_init[key] for key in CALLBACK_KEYS]
        if not checkpointing:  # Lightning refuses checkpoint callbacks when checkpointing is off
            own = [callback for callback in own if not isinstance(callback, Checkpoint)]
        record = RunRecord(yaml.safe_load(self.config_text), self.config_text)
        project = run_callbacks(self.run_folder, checkpointing, record, self.resume_hint)
        callbacks = [*(config.get("callbacks") or []), *own, *self.extra_callbacks, *project]
        return L.Trainer(**trainer_arguments({**config, "callbacks": callbacks}, self.run_folder))


CONFIGURED = ("trainer", "model", "data", "seed_everything", "optimizer", "lr_scheduler")  # a run's config, reused
USED_BY = {  # the options only some stages use (a run's config.yaml holds them all: given there, they are quiet)
    "checkpoint": ("fit",),
    "lr_monitor": ("fit",),
    "test_after_fit": ("fit",),
    "optimizer": ("fit",),
    "lr_scheduler": ("fit",),
    "prediction_writer": ("predict",),
}


def _unused_options(typed: list[str], stage: str) -> list[str]:
    """The options typed on the command line that this stage does not use."""
    roots = [arg[2:].split("=")[0].split(".")[0] for arg in typed if arg.startswith("--")]
    return sorted({f"--{root}" for root in roots if stage not in USED_BY.get(root, (stage,))})


def _refuse_another_model(checkpoint: dict[str, Any], path: Any, model: str) -> None:
    recorded = record_of(checkpoint).get("model")
    if recorded and _name(recorded) != _name(model):
        raise UserError(
            f"{path} is a checkpoint of a {_name(recorded)}, and this run trains a {_name(model)}: continue it with "
            f"its own model, or start a new run without --ckpt_path"
        )


def _is_a(path: Any, classes: tuple[type, ...]) -> bool:
    """Whether a config's class path names one of these classes (or a subclass)."""
    try:
        cls = import_class(path) if isinstance(path, str) else None
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(cls, type) and issubclass(cls, classes)


def _import_every_public_class() -> None:
    """The packages' models, networks and data modules imported (else when first used: `datamodules.lazy`).

    LightningCLI knows a class by its short name (`--model MLPClassifier`), and lists it in `--help`, once imported.
    """
    for package in (datamodules, nnmodules):  # in the order --help lists them
        for name in package.__all__:
            getattr(package, name)


def _version() -> str:
    try:
        return version("litmodules")
    except PackageNotFoundError:  # run from a clone that was never installed
        return "(not installed)"


def _name(path: str) -> str:
    return path.rpartition(".")[2]


def _plumbing(config: dict[str, Any]) -> tuple[str, ...]:
    """The data module's arguments that say how data is served, not what is learnt (`TensorDataModule.plumbing`)."""
    data = config.get("data") or {}
    try:
        cls = import_class(data.get("class_path", ""))
    except (ImportError, AttributeError, ValueError):
        return ()
    return cls.plumbing if isinstance(cls, type) and issubclass(cls, TensorDataModule) else ()


def _absolute_data_paths(config: Namespace) -> None:
    """The data module's file and folder arguments made absolute: a run's config works from any folder."""
    data = config.get("data")
    if not isinstance(data, Namespace) or not data.get("class_path"):
        return
    try:
        cls = import_class(data.class_path)
    except (ImportError, AttributeError, ValueError):
        return
    if isinstance(cls, type) and issubclass(cls, TensorDataModule) and data.get("init_args"):
        for name in cls.paths:
            value = data.init_args.get(name)
            if isinstance(value, (str, Path)):
                data.init_args[name] = os.path.abspath(os.path.expanduser(value))
