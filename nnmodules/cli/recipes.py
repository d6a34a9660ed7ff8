"""The recipes that ship with the package: `--config mnist_mlp`, `--search mnist_mlp`, `litmodules recipes`.

A recipe is a config file of `nnmodules/cli/configs/` (a search file of `nnmodules/cli/configs/search/`
for `litmodules tune --search`), named by its file's name without `.yaml`; its first line says
what it trains. A path is read as a path, as LightningCLI reads it; a bare name that is no file
is a recipe. The example tables the recipes train on (`examples/people.csv`, ...) travel with
them: a recipe's value naming a file beside it is read from there, wherever it runs.
"""

from __future__ import annotations

import difflib
import re
import shutil
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ActionConfigFile

from datamodules.errors import ExistingFileError, MissingFileError
from nnmodules.runs.loading import TRAINED_IN, config_of_0_1_0

FOLDER = Path(__file__).resolve().parent / "configs"
SEARCHES = FOLDER / "search"
NAME = re.compile(r"[\w.-]+")  # what may be a recipe's name: no folder, no YAML text


def recipes(folder: Path = FOLDER) -> dict[str, str]:
    """The recipes of a folder by name, each with its first line (what it trains)."""
    return {path.stem: _first_line(path) for path in sorted(folder.glob("*.yaml"))}


def config_argument(value: str) -> str:
    """What `--config value` gives LightningCLI: a file's path as it is; a recipe's settings as YAML text.

    Raises:
        MissingFileError: neither a file nor a recipe, naming the closest recipe and the list.
    """
    path = _find(value, FOLDER)
    if path is None:
        return value
    return yaml.safe_dump(_beside(yaml.safe_load(path.read_text()), path.parent), sort_keys=False)


def search_file(value: str | Path) -> Path:
    """The search file `litmodules tune --search value` reads: a path, or a search recipe's file."""
    return _find(str(value), SEARCHES) or Path(value)


def copy(name: str, folder: str | Path = ".") -> list[Path]:
    """Writes a recipe (and the example tables it trains on) into `folder`, for editing; returns what it wrote.

    A search recipe is `search/NAME`, written as `<folder>/search/NAME.yaml` (which `--search` then takes).

    Raises:
        ExistingFileError: a file of that name is there already (nothing is written).
    """
    kind, _, stem = name.rpartition("/")
    source = _find(stem, SEARCHES, files=False) if kind == "search" else _find(name, FOLDER, files=False)
    folder = Path(folder)
    settings = yaml.safe_load(source.read_text())
    copies = {folder / kind / source.name: source}
    copies |= {folder / value: source.parent / value for value in _files_beside(settings, source.parent)}
    if taken := [str(target) for target in copies if target.exists()]:
        raise ExistingFileError(f"{', '.join(taken)}: already there; copy into another folder, or move it away first")
    for target, origin in copies.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, target)
    return list(copies)


def _find(value: str, folder: Path, files: bool = True) -> Path | None:
    """The recipe `value` names; with `files`, None for a file's path or YAML text (LightningCLI reads them)."""
    if files and is_file(value):
        return None
    name = value.removesuffix(".yaml")
    if NAME.fullmatch(name) and (folder / f"{name}.yaml").is_file():  # the name first: YAML text is no file name
        return folder / f"{name}.yaml"
    if files and ("\n" in value or ":" in value or "{" in value):  # YAML text, which LightningCLI takes too
        return None
    raise MissingFileError(_unknown(value, folder))


def is_file(value: str) -> bool:
    """Whether a command line's value names a file (YAML text given in its place names none)."""
    try:
        return Path(value).is_file()
    except OSError:  # e.g. a name too long for the file system
        return False


def _unknown(value: str, folder: Path) -> str:
    known = list(recipes(folder))
    stem = Path(value).name.removesuffix(".yaml")
    if stem in known:
        return f"{value} does not exist; the recipe of that name is `{stem}` (litmodules recipes lists them)"
    close = difflib.get_close_matches(stem, known, n=1, cutoff=0.6)
    guess = f" Did you mean {close[0]}?" if close else ""
    return f"{value}: no such file, nor recipe.{guess} Recipes: {', '.join(known)} (litmodules recipes)"


def _first_line(path: Path) -> str:
    line = path.read_text().split("\n", 1)[0]
    return line.removeprefix("#").strip()


def _files_beside(settings: Any, folder: Path) -> list[str]:
    """The relative paths among a recipe's values that name files beside it (its example tables)."""
    if isinstance(settings, dict):
        return [found for value in settings.values() for found in _files_beside(value, folder)]
    if isinstance(settings, list):
        return [found for value in settings for found in _files_beside(value, folder)]
    is_file = isinstance(settings, str) and NAME.fullmatch(settings.replace("/", "")) and (folder / settings).is_file()
    return [settings] if is_file else []


def _beside(settings: Any, folder: Path) -> Any:
    """The recipe's settings with its files beside it named by their full paths."""
    if isinstance(settings, dict):
        return {key: _beside(value, folder) for key, value in settings.items()}
    if isinstance(settings, list):
        return [_beside(value, folder) for value in settings]
    return str(folder / settings) if _files_beside(settings, folder) else settings


class ConfigOrRecipe(ActionConfigFile):
    """`--config`: a config file's path, YAML text (as LightningCLI takes them), or a recipe's name (`mnist_mlp`).

    A run's `config.yaml` of 0.1.0 is read with its relative paths taken from where it ran (its first line).
    """

    def __call__(self, parser: Any, cfg: Any, values: Any, option_string: str | None = None) -> None:
        value = config_argument(str(values))
        if is_file(value) and (text := Path(value).read_text()).startswith(TRAINED_IN):
            value = yaml.safe_dump(config_of_0_1_0(text), sort_keys=False)
        self.apply_config(parser, cfg, self.dest, value)
