"""A run's folder, resolved before its Trainer is built: a new one, one named, or the newest of this model and data.

`<save_dir>/<name>/version_<n>/` (or a version given by name, e.g. `trial_3`) holds everything of a run: its
`config.yaml`, `checkpoints/`, the logger's files where the logger keeps them there (TensorBoard, CSV), and
what evaluating and predicting its checkpoints adds. The Trainer gets it as its `default_root_dir`, the
checkpoint callbacks as their folder, a TensorBoard or CSV logger as its `version`: public arguments only,
the same whatever the logger, or none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

from nnmodules.callbacks import INTERRUPTED

VERSION = "version_"  # a numbered run's folder: version_0, version_1, ...


@dataclasses.dataclass(frozen=True)
class Run:
    """A run's folder: `<root>/<name>/version_<n>`, or `<root>/<name>/<version>` for a version given by name."""

    root: Path
    name: str
    version: int | str

    @property
    def folder(self) -> Path:
        version = f"{VERSION}{self.version}" if isinstance(self.version, int) else self.version
        return self.root / self.name / version

    @property
    def checkpoints(self) -> Path:
        return self.folder / "checkpoints"


def numbered_runs(root: Path, name: str) -> list[Run]:
    """The numbered runs of a name, oldest first."""
    folders = (root / name).glob(f"{VERSION}*")
    numbers = sorted(int(p.name[len(VERSION) :]) for p in folders if p.is_dir() and p.name[len(VERSION) :].isdigit())
    return [Run(root, name, number) for number in numbers]


def new_run(root: Path, name: str) -> Run:
    """The next numbered run of a name (its folder is made when it starts training)."""
    runs = numbered_runs(root, name)
    return Run(root, name, runs[-1].version + 1 if runs else 0)


def resumable_checkpoint(run_folder: Path) -> Path | None:
    """The newest of a run's `last.ckpt` and `interrupted.ckpt`, if it has either."""
    names = (ModelCheckpoint.CHECKPOINT_NAME_LAST, INTERRUPTED)
    found = [path for path in (run_folder / "checkpoints" / f"{name}.ckpt" for name in names) if path.is_file()]
    return max(found, key=lambda path: path.stat().st_mtime_ns) if found else None


def last_run(root: Path, name: str, same: Callable[[Path], bool] | None = None) -> tuple[Run, Path] | None:
    """The newest numbered run of a name with a checkpoint to continue that `same` accepts, and that checkpoint."""
    for run in reversed(numbered_runs(root, name)):
        checkpoint = resumable_checkpoint(run.folder)
        if checkpoint is not None and (same is None or same(run.folder)):
            return run, checkpoint
    return None


def run_of_checkpoint(path: str | Path) -> Path:
    """The folder of the run a checkpoint belongs to: above its `checkpoints/` folder, else the folder it is in."""
    path = Path(path).absolute()
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def same_model_and_data(config: dict[str, Any], other: dict[str, Any], ignored: tuple[str, ...] = ()) -> bool:
    """Whether two runs' configs train the same model class on the same data: class and arguments, but `ignored`.

    What a run may change when it goes on (its model's settings, the batch size, how data is served) is left out.
    """

    def identity(settings: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
        model, data = settings.get("model") or {}, settings.get("data") or {}
        arguments = {k: v for k, v in (data.get("init_args") or {}).items() if k not in ignored and v is not None}
        return _short(model.get("class_path")), _short(data.get("class_path")), arguments

    return identity(config) == identity(other)


def _short(path: Any) -> Any:
    """A class path by its class's name: `nnmodules.MLPClassifier` and `nnmodules.presets.mlp.MLPClassifier` alike."""
    return path.rpartition(".")[2] if isinstance(path, str) else path
