"""The command line: `litmodules SUBCOMMAND [OPTIONS]` (`main`), the LightningCLI of its stages (`LitCLI`).

`make_trainer` and `SEED` are `nnmodules.runs`'s, kept here where 0.1.0 had them. `LitCLI`, `make_trainer` and
`SEED` are imported when first used (`datamodules.lazy`): the command starts at once.
"""

from datamodules.lazy import lazy_exports
from nnmodules.cli.main import SUBCOMMANDS, main, run  # light: the subcommands import what they need

EXPORTS = {"LitCLI": "nnmodules.cli.lightning_cli", "SEED": "nnmodules.runs", "make_trainer": "nnmodules.runs"}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = ["SEED", "SUBCOMMANDS", "LitCLI", "main", "make_trainer", "run"]
