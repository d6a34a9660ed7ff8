"""The `litmodules` console script: `tune`, `recipes`, or LightningCLI's subcommands (`fit`, `test`, ...: `LitCLI`)."""

from __future__ import annotations

import argparse
import sys

from nnmodules import recipes
from nnmodules.cli import LitCLI
from nnmodules.errors import run_plainly


def main() -> None:
    """`litmodules ...` (and `python -m nnmodules ...`)."""
    sys.path.insert(0, "")  # a config's class_path may name a module of the current folder, as `python -m` finds it
    command = sys.argv[1:2]
    if command == ["recipes"]:
        run_plainly(lambda: list_or_copy_recipes(sys.argv[2:]))
    elif command == ["tune"]:
        try:
            from nnmodules.tune import main as tune  # optuna is an extra: imported only to tune
        except ImportError as error:
            raise SystemExit(f"error: tune needs {error.name}: pip install 'litmodules[tune]'") from None
        run_plainly(lambda: tune(sys.argv[2:]))
    else:
        run_plainly(LitCLI)


def list_or_copy_recipes(argv: list[str]) -> None:
    """`litmodules recipes`: each recipe and what it trains; `--copy NAME [FOLDER]` writes one out for editing."""
    parser = argparse.ArgumentParser(prog="litmodules recipes", description=list_or_copy_recipes.__doc__)
    parser.add_argument("--copy", nargs="+", metavar=("NAME", "FOLDER"), help="write recipe NAME into FOLDER (here)")
    options = parser.parse_args(argv)
    if options.copy is None:
        configs, searches = recipes.recipes(), recipes.recipes(recipes.SEARCHES)
        width = max(map(len, [*configs, *searches]))
        lines = [f"{name:<{width}}  {about}" for name, about in configs.items()]
        searches = [f"{name:<{width}}  {about}" for name, about in searches.items()]
        print("\n".join(["recipes (litmodules fit --config NAME):", *lines, "", "searches (tune --search NAME):"]))
        print("\n".join(searches))
        return
    if len(options.copy) > 2:
        parser.error("--copy takes a recipe's name and, optionally, a folder")
    for path in recipes.copy(*options.copy):
        print(f"wrote {path}")
