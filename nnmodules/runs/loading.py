"""A run taken anywhere from its checkpoint alone: its model, its data module (arguments and fitted state), its config.

    model, data = load_run("lightning_logs/mnist_mlp/version_0/checkpoints/last.ckpt")
    data = load_run(path, predict_csv="new.csv")[1]   # the data's arguments can be changed

The checkpoint's record (`nnmodules.callbacks.RunRecord`) names the model's and the data's classes;
Lightning keeps both one's arguments and the data's state. A checkpoint of 0.1.0, which has no record, is
read with the `config.yaml` of its run folder, as 0.1.0 read it. A Lightning checkpoint of another project is
refused by name: its model is not this project's to build.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import lightning as L
import yaml

from datamodules.arguments import import_class
from datamodules.errors import UserError
from nnmodules.runs.folders import run_of_checkpoint
from nnmodules.tasks import read_checkpoint, record_of

TRAINED_IN = "# trained in: "  # the first line of a 0.1.0 run's config.yaml: where relative paths in it start
DATA_HPARAMS = "datamodule_hyper_parameters"


@dataclasses.dataclass
class CheckpointRun:
    """A checkpoint, read, and what it says of its run."""

    path: Path
    checkpoint: dict[str, Any]
    config: dict[str, Any]  # the run's config: its model and data as classes and arguments, its trainer's

    @property
    def folder(self) -> Path:
        """Where what is done with the checkpoint goes: its run's folder (`run_of_checkpoint`)."""
        return run_of_checkpoint(self.path)

    @property
    def model_class(self) -> str:
        return self.config["model"]["class_path"]

    @property
    def data_class(self) -> str | None:
        data = self.config.get("data")
        return data["class_path"] if isinstance(data, dict) and data.get("class_path") else None

    def data_state(self, datamodule: L.LightningDataModule) -> dict[str, Any] | None:
        """What the checkpoint holds of that data module's state (its fitted preprocessing, ...), if anything."""
        return self.checkpoint.get(type(datamodule).__qualname__)

    def load_data_state(self, datamodule: L.LightningDataModule) -> None:
        """Gives the data module its state from the checkpoint, before it is set up: nothing is fitted again."""
        state = self.data_state(datamodule)
        if state:
            datamodule.load_state_dict(state)


def read_run(path: str | Path) -> CheckpointRun:
    """A checkpoint and its run's config: from its record, or (0.1.0) from its run's `config.yaml`.

    Raises:
        UserError: not a checkpoint, a damaged one, or one of another project.
    """
    checkpoint = read_checkpoint(path, map_location="cpu")
    record = record_of(checkpoint)
    saved = checkpoint.get("hyper_parameters", {}).items()
    hparams = {name: value for name, value in saved if not name.startswith("_")}  # 0.1.0's: _class_path
    if record:
        config = dict(record.get("config") or {})
        config["model"] = {"class_path": record["model"], "init_args": hparams}
        if record.get("data"):
            config["data"] = {"class_path": record["data"], "init_args": dict(checkpoint.get(DATA_HPARAMS, {}))}
        return CheckpointRun(Path(path), checkpoint, config)
    saved = run_of_checkpoint(path) / "config.yaml"
    if not saved.is_file():
        raise UserError(
            f"{path} was not written by litmodules (it records no run): load it with the code that wrote it; for a "
            f"checkpoint of litmodules 0.1.0, keep it in its run's checkpoints/ folder, beside the run's config.yaml"
        )
    config = config_of_0_1_0(saved.read_text())
    config["model"] = {"class_path": config["model"]["class_path"], "init_args": hparams}
    return CheckpointRun(Path(path), checkpoint, config)


def load_run(path: str | Path, **data_arguments: Any) -> tuple[L.LightningModule, L.LightningDataModule | None]:
    """The model of a checkpoint, its weights loaded, and its data module with its fitted state (not yet set up).

    Args:
        path: the checkpoint.
        **data_arguments: the data module's arguments to change (e.g. `predict_csv="new.csv"`).
    """
    run = read_run(path)
    model = import_class(run.model_class).load_from_checkpoint(path, map_location="cpu")
    if run.data_class is None:
        return model, None
    arguments = {**run.config["data"].get("init_args", {}), **data_arguments}
    datamodule = import_class(run.data_class)(**arguments)
    run.load_data_state(datamodule)
    return model, datamodule


def config_of_0_1_0(text: str) -> dict[str, Any]:
    """A 0.1.0 run's config.yaml, its data's and model's relative paths made absolute from where it ran."""
    first = text.split("\n", 1)[0]
    trained_in = Path(first.removeprefix(TRAINED_IN)) if first.startswith(TRAINED_IN) else Path.cwd()
    settings = yaml.safe_load(text)
    for section in ("data", "model"):
        if isinstance(settings.get(section), dict):
            _absolute_paths(settings[section], trained_in)
    data = settings.get("data")
    if isinstance(data, dict) and isinstance(data.get("init_args"), dict):
        data["init_args"].pop("embed_numbers", None)  # 0.1.0 decided it there; its model's hparams hold the result
    return settings


def _absolute_paths(section: dict[str, Any], folder: Path) -> None:
    """Makes the relative paths among a class's arguments (those typed as `Path`) relative to `folder`."""
    try:
        hints = typing.get_type_hints(import_class(str(section.get("class_path", ""))).__init__)
    except (ImportError, AttributeError, NameError, ValueError):
        return  # the config names a class that does not import: said when it is built
    arguments = section.get("init_args") or {}
    for key, value in arguments.items():
        if isinstance(value, str) and value and "Path" in str(hints.get(key)) and not Path(value).is_absolute():
            arguments[key] = str(folder / value)
