"""The subcommands that are not Lightning's stages: `export` a checkpoint, list or copy the `recipes`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from lightning.pytorch.utilities.rank_zero import rank_zero_info

from nnmodules.cli import recipes as recipe_files
from nnmodules.cli.errors import fail
from nnmodules.runs import export as export_model
from nnmodules.runs import load_run
from nnmodules.runs.export import Format
from nnmodules.runs.folders import run_of_checkpoint


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose mistakes end in one `error:` line, as the other subcommands'."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message}\n({self.prog} --help lists the options)", 2)


def export(argv: list[str]) -> list[Path]:
    """`litmodules export --ckpt_path X [--format onnx|pt2] [--output FILE] [--overwrite true]`."""
    parser = Parser(
        prog="litmodules export",
        description="A checkpoint's model as ONNX or pt2, giving what predict gives, checked before it is kept "
        "(a table's preprocessing beside it, to predict raw rows without this package)",
    )
    parser.add_argument("--ckpt_path", required=True, help="the checkpoint")
    parser.add_argument("--format", choices=["onnx", "pt2"], default="onnx", help="onnx (onnxruntime) or pt2")
    parser.add_argument("--output", help="the file to write; default: <run>/export/<checkpoint>.<format>")
    parser.add_argument("--overwrite", type=_boolean, default=False, help="replace files of the same names")
    options = parser.parse_args(argv)
    return export_run(options.ckpt_path, options.format, options.output, options.overwrite)


def export_run(ckpt_path: str | Path, format: Format = "onnx", output: Any = None, overwrite: bool = False) -> list:
    """Writes a checkpoint's model as ONNX or pt2 (`nnmodules.runs.export`); its run's data as it was fitted."""
    model, datamodule = load_run(ckpt_path)
    if output is None:
        output = run_of_checkpoint(ckpt_path) / "export" / f"{Path(ckpt_path).stem}.{format}"
    files = export_model(model.cpu(), output, format, datamodule, overwrite)
    rank_zero_info(f"exported {Path(ckpt_path).name} to {', '.join(map(str, files))}")
    return files


def recipes(argv: list[str]) -> None:
    """`litmodules recipes`: each recipe and what it trains; `--copy NAME [FOLDER]` writes one out for editing."""
    parser = Parser(prog="litmodules recipes", description=recipes.__doc__)
    parser.add_argument("--copy", nargs="+", metavar=("NAME", "FOLDER"), help="write recipe NAME into FOLDER (here)")
    options = parser.parse_args(argv)
    if options.copy is None:
        configs, searches = recipe_files.recipes(), recipe_files.recipes(recipe_files.SEARCHES)
        width = max(map(len, [*configs, *searches]))
        lines = [f"{name:<{width}}  {about}" for name, about in configs.items()]
        searches = [f"{name:<{width}}  {about}" for name, about in searches.items()]
        searches_head = "searches (tune --search NAME; recipes --copy search/NAME):"
        print("\n".join(["recipes (litmodules fit --config NAME):", *lines, "", searches_head]))
        print("\n".join(searches))
        return
    if len(options.copy) > 2:
        parser.error("--copy takes a recipe's name and, optionally, a folder")
    for path in recipe_files.copy(*options.copy):
        print(f"wrote {path}")


def _boolean(value: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"true or false, not {value!r}")
    return value.lower() in ("true", "1", "yes")
