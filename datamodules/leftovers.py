"""A folder kept as it was when what writes into it fails: what appeared in it since is removed, nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path


class Leftovers:
    """What appears under `folder` from now on, removed by `remove` (the folder too, if it was not there).

    For work that may fail half-way in a folder a user named (a download into `data_dir`, a run's folder): a
    failure leaves the folder as it was. What was there before stays; so do the folders above it.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).absolute()
        self.before = set(self.folder.rglob("*")) if self.folder.is_dir() else None
        self.above = next(parent for parent in self.folder.parents if parent.is_dir())  # there before

    def remove(self) -> None:
        """Removes what appeared under the folder since, and the folders above it that appeared with it."""
        if not self.folder.is_dir():
            return
        if self.before is None:  # made by the work: all of it, and the folders above it that were not there
            shutil.rmtree(self.folder, ignore_errors=True)
            for parent in self.folder.parents:
                if parent == self.above or any(parent.iterdir()):
                    break
                parent.rmdir()
            return
        for path in sorted(set(self.folder.rglob("*")) - self.before, reverse=True):  # files before their folders
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
