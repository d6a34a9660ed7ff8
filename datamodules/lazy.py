"""A package's public names imported when first used: `import nnmodules` (and the `litmodules` command) starts fast.

The names stay the package's (`from nnmodules import MLPClassifier`); each module is imported the first time one
of its names is read, so that a command spends its start-up time where it can say so (and be interrupted
cleanly), not in `import`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package`, whose public names are `exports` (name: its module)."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)  # read again: a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*exports, *vars(sys.modules[package])})

    return __getattr__, __dir__
