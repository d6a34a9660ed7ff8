"""The whole run in every checkpoint: the model's and the data's classes, the data's facts, the run.

With it, a checkpoint alone rebuilds the run anywhere (`nnmodules.runs.loading`): the model from its
hyperparameters, the data module from its arguments and fitted state (both of which Lightning keeps), and what
the data told the model. The run's folder gets its `config.yaml` when training starts: the command line's
whole config, or for a run trained from Python its model and data as a config would name them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from datamodules.arguments import class_path, plain
from datamodules.contract import facts_of
from datamodules.errors import UserError
from nnmodules._lightning import epochs_done
from nnmodules.tasks.checkpoints import RECORD

DISPLAY = (  # how a run shows itself and where it writes: the runs of a study or of folds may differ in them
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.default_root_dir",
    "trainer.logger.init_args.version",
    "checkpoint.dirpath",
    "ckpt_path",
)

CONFIG = "config.yaml"
FROM_PYTHON = "# a run trained from Python: its model and data, as `litmodules fit --config` takes them\n"


class RunRecord(L.Callback):
    """Writes the run's record into every checkpoint (`RECORD`), and its `config.yaml` when training starts.

    An earlier, different `config.yaml` of the same run (continued with other settings) is kept as
    `config.<n>.yaml`. The data module's arguments go to the loggers too, as `data.<name>`.

    Args:
        config: the command line's whole config, as plain data; None for a run trained from Python.
        config_text: the same as YAML, as `config.yaml` is to hold it.
    """

    def __init__(self, config: dict[str, Any] | None = None, config_text: str | None = None) -> None:
        self.config, self.config_text = config, config_text

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        data = trainer.datamodule
        facts = facts_of(data)
        checkpoint[RECORD] = {
            "model": class_path(type(module)),
            "data": None if data is None else class_path(type(data)),
            "facts": None if facts is None else facts.state_dict(),
            "run": str(Path(trainer.default_root_dir).absolute()),
            "config": self.config,
        }

    def on_load_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn == "fit":
            refuse_a_finished_run(checkpoint, trainer.ckpt_path, trainer.max_epochs, trainer.max_steps)

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        data = trainer.datamodule
        if data is not None and data.hparams:
            for logger in trainer.loggers:
                logger.log_hyperparams({f"data.{name}": value for name, value in data.hparams.items()})

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return
        path = Path(trainer.default_root_dir) / CONFIG
        text = self.config_text or FROM_PYTHON + yaml.safe_dump(self._config_of(trainer, module), sort_keys=False)
        earlier = settings_by_key(path.read_text()) if path.is_file() else None
        if earlier is not None and earlier != settings_by_key(text):  # continued with other settings
            kept = earlier_name(path)
            path.rename(kept)
            rank_zero_info(f"this run's settings differ from its earlier ones, which are kept in {kept}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for logger in trainer.loggers:  # TensorBoard writes hparams.yaml once: a continued run's are its own
            hparams = Path(logger.log_dir) / logger.NAME_HPARAMS_FILE if isinstance(logger, TensorBoardLogger) else None
            if hparams is not None and hparams.is_file():
                save_hparams_to_yaml(hparams, logger.hparams)

    @staticmethod
    def _config_of(trainer: L.Trainer, module: L.LightningModule) -> dict[str, Any]:
        config = {"model": {"class_path": class_path(type(module)), "init_args": plain(dict(module.hparams))}}
        data = trainer.datamodule
        if data is not None:
            config["data"] = {"class_path": class_path(type(data)), "init_args": plain(dict(data.hparams))}
        return config


def settings_by_key(config_text: str) -> dict[str, Any]:
    """A run's config (its config.yaml's text) by dotted key, but for `DISPLAY`: its settings, compared by meaning.

    A run continued from its own checkpoint, or with its progress bar off, is the same run; so are a study's trials
    with their own folders.
    """
    flat: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict) and value:
            for name, item in value.items():
                walk(item, f"{key}.{name}" if key else str(name))
        elif not key.startswith(DISPLAY):
            flat[key] = value

    walk(yaml.safe_load(config_text), "")
    return flat


class FinishedRunError(UserError):
    """A run continued from a checkpoint that has trained as long as the run asks: nothing is left to train."""


def refuse_a_finished_run(checkpoint: dict[str, Any], path: Any, max_epochs: int | None, max_steps: int) -> None:
    """A checkpoint that has trained as long as the run asks is refused before anything is written."""
    epochs, steps = epochs_done(checkpoint), checkpoint["global_step"]
    by_epochs = max_epochs not in (None, -1) and epochs >= max_epochs
    if by_epochs or (max_steps != -1 and steps >= max_steps):
        limit = f"max_epochs={max_epochs}" if by_epochs else f"max_steps={max_steps}"
        longer = f"--trainer.max_epochs {2 * epochs}" if by_epochs else f"--trainer.max_steps {2 * steps}"
        raise FinishedRunError(
            f"{path} has trained {epochs} epoch(s) ({steps} steps), as many as {limit} asks: nothing is left "
            f"to train. To train longer, ask for more ({longer} with --ckpt_path); to evaluate it, "
            f"`litmodules test --ckpt_path {path}`"
        )


def earlier_name(path: Path) -> Path:
    """The next free `<stem>.<n><suffix>` beside `path`: where an earlier version of it is kept."""
    number = 1
    while (kept := path.with_name(f"{path.stem}.{number}{path.suffix}")).exists():
        number += 1
    return kept
