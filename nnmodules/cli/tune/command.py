"""`litmodules tune ...`: its options, read before anything heavy is imported (`nnmodules.cli.tune.study`).

With `--workers N` the other workers start before Lightning is imported (`start`, which `litmodules` runs first),
so that their start-up (seconds of imports) runs beside this process's own and its checks; they wait for this
process's word before they open the study, and are stopped without a word if its checks fail (`workers.Workers`).
"""

from __future__ import annotations

import argparse
import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nnmodules.cli.tune.workers import Workers

if importlib.util.find_spec("optuna") is None:  # the extra, missing: `litmodules` says so in one line (main.py)
    raise ModuleNotFoundError("No module named 'optuna'", name="optuna")


def start(argv: list[str]) -> Workers | None:
    """With `--workers N` (and not in a worker): the other workers, started before Lightning is imported here.

    They wait for `main`'s word. Options that do not parse end here, as `main` would end them (`--help` too); a
    count of workers the machine refuses starts none: `main` says why.
    """
    options, fit_args = _parser().parse_known_args(argv)
    if options.workers <= 1 or options.worker is not None:
        return None
    from datamodules.errors import UserError
    from nnmodules.cli.tune.workers import Workers

    same = ["--search", options.search, "--trials", str(options.trials), *fit_args]
    same += ["--study", options.study] if options.study else []
    try:
        return Workers(options.workers, same, options.storage)
    except UserError:
        return None


def main(argv: list[str], started: Workers | None = None) -> None:
    """`litmodules tune ...`: the options below; every other option is `litmodules fit`'s, for every trial.

    `started`: the other workers, if `start` started them.
    """
    options, fit_args = _parser().parse_known_args(argv)
    from nnmodules.cli.tune.study import tune

    tune(
        options.search,
        options.trials,
        fit_args,
        options.study,
        command=argv,
        storage=options.storage,
        workers=options.workers,
        worker=options.worker,
        others=started,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="litmodules tune",
        description="A hyperparameter search (Optuna): each trial a `litmodules fit` run with the search's values.",
        epilog="Every other option is passed to each trial's `litmodules fit` (--config, --model..., --data..., "
        "--trainer...). The same command again continues the study. docs/tune.md",
        allow_abbrev=False,
    )
    parser.add_argument("--search", required=True, help="the search file: its space, and optionally metric, pruner")
    parser.add_argument("--trials", required=True, type=int, help="trials in all: completed, pruned or diverged")
    parser.add_argument("--study", help="the study's name and folder under save_dir; default: the search file's name")
    parser.add_argument(
        "--storage",
        help="where the study lives, as Optuna takes it: postgresql://..., mysql://..., sqlite:///..., or a journal "
        "file's path; default: LITMODULES_STORAGE if set, else study.db beside the trials",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes on this machine, one per GPU (or a share of its cores)"
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # a worker that --workers started: its number
    return parser
