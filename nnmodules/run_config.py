"""A run's saved config: written by the run itself, and enough to test or predict from its checkpoints.

`litmodules fit` saves the run's full config as `<run>/config.yaml`, with a first
line naming the folder it ran in. `litmodules test|validate|predict --ckpt_path
<run>/checkpoints/X.ckpt` without `--config` reads that file, with the data's and
model's relative paths taken from that folder, as they were when the run trained
(paths given on the command line stay relative to where it is typed); so does
`--config <run>/config.yaml`, from any folder and with any subcommand. A run
continued with other settings rewrites its config.yaml, and keeps the earlier one
as `config.<n>.yaml`.
"""

from __future__ import annotations

import typing
from importlib import import_module
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.cli import SaveConfigCallback

from nnmodules.recipes import config_argument, is_file
from nnmodules.runs import earlier_name, run_folder

TRAINED_IN = "# trained in: "  # the first line of a run's config.yaml, then the folder the run started from
FROM_CHECKPOINT = ("validate", "test", "predict", "export")  # the subcommands that can take their config from a run


class RunConfig(SaveConfigCallback):
    """Saves `config.yaml` into a fitting run's folder when training starts.

    Not before: a run refused before its first step leaves its folder as it was. The file is headed by the folder
    the run ran in; an earlier, different config of the same run (continued with other settings) is kept as
    `config.<n>.yaml`. Evaluating and predicting write no config: they change nothing of the run.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        pass

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.already_saved:
            return
        path = Path(trainer.log_dir or ".") / self.config_filename
        earlier = path.read_text() if trainer.is_global_zero and path.is_file() else None
        super().setup(trainer, pl_module, "fit")
        if trainer.is_global_zero:
            text = path.read_text()
            if earlier is not None and _settings(earlier) != text:
                earlier_name(path).write_text(earlier)
            path.write_text(f"{TRAINED_IN}{Path.cwd()}\n{text}")


def _settings(config_text: str) -> str:
    """A saved config without its first line (where it ran)."""
    return config_text.split("\n", 1)[1] if config_text.startswith(TRAINED_IN) else config_text


def with_run_config(args: Any) -> Any:
    """The command line, with a run's config read as it was written.

    `--config NAME` of a recipe (`nnmodules.recipes`) is that recipe's settings;
    `--config <the run's config.yaml>` is put first for `test`, `validate` or `predict` given a run's `--ckpt_path`
    and no `--config`; and the relative paths of any run's config.yaml (its first line says where it ran) taken from
    the folder it ran in. Arguments given as a dict or Namespace (LightningCLI takes those too) are left as they are.
    """
    if not isinstance(args, (list, tuple)) or not args:
        return args
    args = [f"--config={config_argument(arg[9:])}" if arg.startswith("--config=") else arg for arg in args]
    configs = [index + 1 for index, arg in enumerate(args[:-1]) if arg in ("-c", "--config")]
    if configs:
        for index in configs:
            args[index] = config_argument(args[index])  # a recipe's name, or a path as it is
            if is_file(args[index]) and (text := Path(args[index]).read_text()).startswith(TRAINED_IN):
                args[index] = _as_it_ran(text)
        return args
    ckpt_path = _value(args, "--ckpt_path")
    if args[0] not in FROM_CHECKPOINT or ckpt_path is None or any(a.startswith("--config=") for a in args):
        return args
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"checkpoint {ckpt_path} does not exist: pass the path of a .ckpt file")
    run = run_folder(ckpt_path)
    config = run / "config.yaml" if run else None
    if config is None or not config.is_file():
        raise ValueError(
            f"{ckpt_path} is not in the checkpoints/ folder of a run with its config.yaml: pass the config it was "
            f"trained with too (`litmodules {args[0]} --config CONFIG --ckpt_path {ckpt_path}`)"
        )
    return [args[0], "--config", _as_it_ran(config.read_text(), args[0]), *args[1:]]


def _as_it_ran(config_text: str, subcommand: str | None = None) -> str:
    """A run's saved config as YAML text, its data's and model's relative paths made absolute.

    From the folder the run ran in (its first line), or from here when it does not say. For `export`, without
    `weights_only`, an argument of Lightning's subcommands that `export` lacks (it never loads with pickle).
    """
    first = config_text.split("\n", 1)[0]
    trained_in = Path(first.removeprefix(TRAINED_IN)) if first.startswith(TRAINED_IN) else Path.cwd()
    settings = yaml.safe_load(config_text)
    for section in ("data", "model"):
        if isinstance(settings.get(section), dict):
            _absolute_paths(settings[section], trained_in)
    if subcommand == "export":
        settings.pop("weights_only", None)
    return yaml.safe_dump(settings)


def _value(args: list[str], option: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def _absolute_paths(section: dict[str, Any], folder: Path) -> None:
    """Makes the relative paths among a class's arguments (those typed as `Path`) relative to `folder`."""
    module, _, name = str(section.get("class_path", "")).rpartition(".")
    try:
        hints = typing.get_type_hints(getattr(import_module(module), name).__init__)
    except (ImportError, AttributeError, NameError, ValueError):
        return  # LightningCLI names the class that does not import, when it parses the config
    arguments = section.get("init_args") or {}
    for key, value in arguments.items():
        if isinstance(value, str) and value and "Path" in str(hints.get(key)) and not Path(value).is_absolute():
            arguments[key] = str(folder / value)
