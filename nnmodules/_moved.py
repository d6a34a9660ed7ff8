"""Module paths of 0.1.0 that moved (`datamodules._moved` says why): nnmodules' own."""

from __future__ import annotations

from datamodules._moved import alias_modules

MOVED = {  # 0.1.0's path: where it is now
    "nnmodules.checkpoints": "nnmodules.tasks.checkpoints",
    "nnmodules.choices": "datamodules.choices",
    "nnmodules.classifier": "nnmodules.tasks.classifier",
    "nnmodules.commands": "nnmodules.cli.main",
    "nnmodules.errors": "nnmodules.cli.errors",
    "nnmodules.export": "nnmodules.runs.export",
    "nnmodules.figures": "nnmodules.callbacks",
    "nnmodules.mlp": "nnmodules.presets.mlp",
    "nnmodules.quiet": "nnmodules.runs.quiet",
    "nnmodules.recipes": "nnmodules.cli.recipes",
    "nnmodules.regressor": "nnmodules.tasks.regressor",
    "nnmodules.schedules": "nnmodules.tasks.schedules",
    "nnmodules.scratch": "nnmodules.presets.scratch",
    "nnmodules.search": "nnmodules.cli.tune.search",
    "nnmodules.toy": "nnmodules.presets.toy",
    "nnmodules.tune": "nnmodules.cli.tune",
}


def install() -> None:
    """Makes 0.1.0's module paths import (see the module)."""
    alias_modules(MOVED)
