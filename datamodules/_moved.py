"""Module paths of 0.1.0 that moved: importing one gives the module that now holds what it held.

0.1.0's runs and recipes name classes by their paths (`nnmodules.figures.ClassificationFigures` in a config,
`nnmodules.nets.MLP` in a checkpoint); each package lists its moved modules (`MOVED` here and in
`nnmodules._moved`), resolved by one finder at the end of `sys.meta_path`, after every real module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

MOVED = {  # 0.1.0's path: where it is now
    "datamodules.columns": "datamodules.tabular.columns",
    "datamodules.files": "datamodules.tabular.files",
    "datamodules.preprocess": "datamodules.tabular.preprocess",
}


class _Moved(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a moved module's old path and loads it as the module it moved to (the same object)."""

    def __init__(self) -> None:
        self.moved: dict[str, str] = {}

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name in self.moved else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.moved[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        pass  # imported already, at its new path


def alias_modules(moved: dict[str, str]) -> None:
    """Makes each old module path of `moved` import as the module at its new path."""
    finder = next((found for found in sys.meta_path if isinstance(found, _Moved)), None)
    if finder is None:
        finder = _Moved()
        sys.meta_path.append(finder)
    finder.moved.update(moved)
