"""The command line: `litmodules SUBCOMMAND [OPTIONS]` (`main`), the LightningCLI of its stages (`LitCLI`).

`make_trainer` and `SEED` are `nnmodules.runs`'s, kept here where 0.1.0 had them.
"""

from nnmodules.cli.lightning_cli import LitCLI
from nnmodules.cli.main import SUBCOMMANDS, main, run
from nnmodules.runs import SEED, make_trainer

__all__ = ["SEED", "SUBCOMMANDS", "LitCLI", "main", "make_trainer", "run"]
