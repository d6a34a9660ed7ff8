"""The `litmodules` console script (and `python -m nnmodules`): one table of subcommands, each a function.

    litmodules SUBCOMMAND [OPTIONS]     (litmodules --help lists them; litmodules SUBCOMMAND --help, their options)

A subcommand to come is one more row of `SUBCOMMANDS`: a name, a line saying what it does, and the function
that runs it on the rest of the command line. Every one runs the same way: a user's mistake ends in one
`error:` line (`nnmodules.cli.errors`). Nothing heavy is imported before `main` runs, so that Ctrl-C while a
command starts (its imports take seconds) ends it with one line too.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any


@dataclasses.dataclass(frozen=True)
class Subcommand:
    """A subcommand: what it does, in a line, and the function that runs it (`module:function`, imported to run).

    `starts`, if given, is a light function (`module:function`) run on the options before Lightning is imported,
    to start what should not wait for it (tune's workers); what it returns is the function's second argument.
    """

    about: str
    function: str
    starts: str | None = None

    def start(self, argv: list[str]) -> Any:
        return None if self.starts is None else _function(self.starts)(argv)

    def run(self, argv: list[str], started: Any = None) -> Any:
        function = _function(self.function)
        return function(argv) if started is None else function(argv, started)


def _function(path: str) -> Any:
    """The function `module:function`; a missing extra (tune needs optuna) in one line."""
    module, _, name = path.partition(":")
    try:
        found = importlib.import_module(module)
    except ImportError as error:
        if error.name and not error.name.startswith("nnmodules"):
            from nnmodules.cli.errors import fail

            fail(f"this subcommand needs {error.name}: pip install 'litmodules[{EXTRAS.get(module, 'dev')}]'", 1)
        raise
    return getattr(found, name)


STAGES, COMMANDS, TUNE = "nnmodules.cli.stages", "nnmodules.cli.commands", "nnmodules.cli.tune.command"
SUBCOMMANDS = {
    "fit": Subcommand("train a model on data: a recipe (--config mnist_mlp) or options", f"{STAGES}:fit"),
    "validate": Subcommand("validate a checkpoint's model on its run's data (--ckpt_path)", f"{STAGES}:validate"),
    "test": Subcommand("test a checkpoint's model on its run's test split (--ckpt_path)", f"{STAGES}:test"),
    "predict": Subcommand("predict with a checkpoint's model, into a CSV file (--ckpt_path)", f"{STAGES}:predict"),
    "export": Subcommand("a checkpoint's model as ONNX or pt2, to predict without Lightning", f"{COMMANDS}:export"),
    "cv": Subcommand(
        "cross-validate a table's recipe: K folds, each a fit; their metrics' mean", "nnmodules.cli.cv:main"
    ),
    "tune": Subcommand("a hyperparameter search (Optuna), each trial a fit", f"{TUNE}:main", starts=f"{TUNE}:start"),
    "recipes": Subcommand("list the recipes inside the package, or copy one out", f"{COMMANDS}:recipes"),
}
EXTRAS = {
    "nnmodules.cli.tune": "tune",
    "nnmodules.cli.tune.command": "tune",
}  # the extra each subcommand's module needs beyond the package's own


def main(argv: list[str] | None = None) -> None:
    """`litmodules SUBCOMMAND [OPTIONS]`: the console script (None: the command line's own options).

    Ctrl-C before Lightning's loop runs (while importing, reading the options, building the run) ends it with one
    line and status 130; from then on Lightning's and the fit's own handling (`callbacks.Interruption`) say it.
    """
    try:
        run(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted (Ctrl-C) before training started\n")
        sys.exit(130)


def run(argv: list[str]) -> Any:
    """Runs `litmodules` with these options; returns what the subcommand's function returns (its LitCLI, ...)."""
    argv = list(argv)
    sys.path.insert(0, "")  # a config's class_path may name a module of the current folder, as `python -m` finds it
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return None
    if argv[0] == "--version":
        print(f"litmodules {_version()}")
        return None
    name, rest = argv[0], argv[1:]
    started = SUBCOMMANDS[name].start(rest) if name in SUBCOMMANDS else None
    from nnmodules.cli.errors import fail, run_plainly  # Lightning's imports: seconds, inside `main`'s handling

    if name not in SUBCOMMANDS:
        close = difflib.get_close_matches(name, SUBCOMMANDS, n=1, cutoff=0.6)
        guess = f" Did you mean {close[0]}?" if close else ""
        fail(f"no subcommand {name!r}.{guess} Subcommands: {', '.join(SUBCOMMANDS)} (litmodules --help)", 2)
    return run_plainly(lambda: SUBCOMMANDS[name].run(rest, started))


def usage() -> str:
    """What `litmodules --help` says: every subcommand, a line each."""
    width = max(map(len, SUBCOMMANDS))
    lines = [f"  {name:<{width}}  {command.about}" for name, command in SUBCOMMANDS.items()]
    return "\n".join(
        [
            "usage: litmodules SUBCOMMAND [OPTIONS]   (litmodules SUBCOMMAND --help: its options)",
            "",
            "Reusable PyTorch Lightning training modules: models, data modules, their runs.",
            "",
            "subcommands:",
            *lines,
            "",
            "litmodules --version: the version installed",
        ]
    )


def _version() -> str:
    try:
        return version("litmodules")
    except PackageNotFoundError:  # run from a clone that was never installed
        return "(not installed)"
