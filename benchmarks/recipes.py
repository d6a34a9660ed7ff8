"""The recipes the parts measure (`nnmodules/cli/configs/`, each defined there once), and the MNIST files they use."""

from __future__ import annotations

from pathlib import Path

from nnmodules.cli import LitCLI
from nnmodules.cli.recipes import FOLDER

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = FOLDER
PEOPLE = FOLDER / "examples" / "people.csv"


def from_config(name: str, *overrides: str) -> LitCLI:
    """The model, data and Trainer of the recipe `name` with `overrides`, as `litmodules fit` builds them.

    Nothing runs; the progress bar and model summary are off (the parts print their own figures). Build it in
    a scratch folder: its Trainer writes `lightning_logs/` there.
    """
    args = [
        "--config",
        str(CONFIGS / f"{name}.yaml"),
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        *overrides,
    ]
    return LitCLI(args)


def mnist_args(data_dir: str | Path, batch_size: int | None = None, epochs: int | None = None) -> list[str]:
    """The overrides that point a MNIST config at `data_dir` (never downloading), with a batch size and epochs."""
    args = [f"--data.data_dir={data_dir}", "--data.download=false"]
    if batch_size is not None:
        args.append(f"--data.batch_size={batch_size}")
    if epochs is not None:
        args.append(f"--trainer.max_epochs={epochs}")
    return args


def built(cli: LitCLI) -> LitCLI:
    """`cli` with its data set up and its model built for it, as the Trainer's setup builds it: to take its network."""
    cli.datamodule.setup("fit")
    cli.model.build(cli.datamodule.facts)
    return cli
