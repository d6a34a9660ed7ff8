"""The `litmodules` console script: `tune`, or LightningCLI's subcommands (`fit`, `test`, ... : `LitCLI`)."""

from __future__ import annotations

import sys

from nnmodules.cli import LitCLI
from nnmodules.errors import run_plainly


def main() -> None:
    """`litmodules ...` (and `python -m nnmodules ...`)."""
    sys.path.insert(0, "")  # a config's class_path may name a module of the current folder, as `python -m` finds it
    if sys.argv[1:2] != ["tune"]:
        run_plainly(LitCLI)
        return
    try:
        from nnmodules.tune import main as tune  # optuna is an extra: imported only to tune
    except ImportError as error:
        raise SystemExit(f"error: tune needs {error.name}: pip install 'litmodules[tune]'") from None
    run_plainly(lambda: tune(sys.argv[2:]))
