"""Lightning's stages as subcommands: `fit`, and `validate`, `test`, `predict` of a checkpoint's run.

    litmodules fit --config mnist_mlp [--ckpt_path last]
    litmodules test --ckpt_path lightning_logs/mnist_mlp/version_0/checkpoints/last.ckpt

`validate`, `test` and `predict` need only the checkpoint: its run's config, model and data (with the data's
fitted state) come from it; any option changes them (`--data.init_args.predict_csv new.csv`), but the model
is the checkpoint's. Metrics are added to `<run>/<stage>_metrics.json` by checkpoint name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from nnmodules import metrics
from nnmodules.callbacks.summary import shown
from nnmodules.cli.errors import fail
from nnmodules.cli.lightning_cli import LitCLI
from nnmodules.runs import read_run


def fit(argv: list[str]) -> LitCLI:
    """`litmodules fit ...`: trains, then with `--test_after_fit true` tests the best checkpoint."""
    cli = LitCLI(argv, stage="fit")
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.ckpt_path)
    if cli.config.test_after_fit and not cli.trainer.fast_dev_run:
        best = cli.trainer.checkpoint_callback.best_model_path if cli.trainer.checkpoint_callback else ""
        trainer, best_path = cli.trainer, "best" if best else None
        results = trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=best_path, verbose=False)
        lines = [f"{name}: {value:.4f}" for name, value in results[0].items()]
        rank_zero_info("\n".join([*lines, f"(tested {shown(best) if best else 'the final weights: no checkpoint'})"]))
        record_metrics(cli.trainer, metrics.TEST, cli.trainer.ckpt_path)
    return cli


def from_checkpoint(stage: str) -> Any:
    """The subcommand of `stage` ("validate", "test" or "predict") of a checkpoint's run."""

    def run_stage(argv: list[str]) -> LitCLI:
        options = argparse.ArgumentParser(add_help=False)
        options.add_argument("--ckpt_path")
        ckpt_path = options.parse_known_args(argv)[0].ckpt_path
        if ckpt_path is None:
            if {"-h", "--help"} & set(argv):  # the stage's options, as its parser lists them
                return LitCLI(argv, stage=stage)
            fail(f"{stage} needs a checkpoint: --ckpt_path <run>/checkpoints/<name>.ckpt", 2)
        run = read_run(ckpt_path)
        cli = LitCLI(argv, stage=stage, checkpoint=run)
        run.load_data_state(cli.datamodule)  # before setup: the data's fitted state, nothing fitted again
        getattr(cli.trainer, stage)(cli.model, datamodule=cli.datamodule, ckpt_path=str(run.path))
        if stage != "predict":
            record_metrics(cli.trainer, metrics.VAL if stage == "validate" else metrics.TEST, str(run.path))
        return cli

    run_stage.__doc__ = f"`litmodules {stage} --ckpt_path X ...`: {stage} a checkpoint's model, on its run's data."
    return run_stage


validate, test, predict = (from_checkpoint(stage) for stage in ("validate", "test", "predict"))


def record_metrics(trainer: L.Trainer, stage: str, ckpt_path: str | None) -> None:
    """Adds the stage's metrics of a checkpoint to `<run>/<stage>_metrics.json`, by checkpoint name."""
    if not ckpt_path or not trainer.is_global_zero:
        return
    name = "validate" if stage == metrics.VAL else stage
    path = Path(trainer.default_root_dir) / f"{name}_metrics.json"
    records = json.loads(path.read_text()) if path.is_file() else {}
    logged = trainer.callback_metrics.items()  # not the "_best" so far: a figure of the fit
    records[Path(ckpt_path).name] = {
        n: float(v) for n, v in logged if n.startswith(f"{stage}/") and metrics.BEST not in n
    }
    path.write_text(json.dumps(records, indent=2) + "\n")
    rank_zero_info(f"{name} metrics of {Path(ckpt_path).name} added to {path}")
