"""`litmodules cv`: K-fold cross-validation of a recipe, each fold an ordinary `fit` run.

    litmodules cv --folds 5 --config tabular_mlp [fit's options]

Fold k is `fit` with `--data.folds K --data.fold k` (the data module deals the rows it does not test into K
seeded folds; fold k validates), in `<save_dir>/<name>/cv_<K>/fold_<k>/` (name: the logger's). After each
fold, its best checkpoint is validated and, where the data has test rows, tested, and it predicts its
validation rows: `fold_<k>/fold.json` and `fold_<k>/out_of_fold.csv`. At the end: the mean and standard
deviation over the folds of every metric, printed, written to `cv.json` and logged (`summary/`, with the
folds' logger kind), and every out-of-fold prediction in `out_of_fold.csv`, by row. The folds' best
checkpoints then become one model (`nnmodules.runs.ensemble_of`), `ensemble/checkpoints/ensemble.ckpt`,
tested where the data has test rows: `test`, `predict` and `export` take it as any checkpoint. Stopped (Ctrl-C), the
same command continues: finished folds are kept, a stopped one goes on from its checkpoint. The folder keeps
its settings (`settings.yaml`): other settings are refused, naming what differs.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from datamodules import TabularDataModule
from datamodules.errors import UserError
from nnmodules import metrics
from nnmodules.callbacks.record import earlier_name, refuse_a_finished_run
from nnmodules.cli.lightning_cli import LitCLI
from nnmodules.cli.settings import differences_of, settings_of
from nnmodules.runs import ensemble_of, load_run, make_trainer
from nnmodules.runs.folders import resumable_checkpoint
from nnmodules.tasks import read_checkpoint

RESULT, PREDICTIONS, SUMMARY, SETTINGS = "fold.json", "out_of_fold.csv", "cv.json", "settings.yaml"
ENSEMBLE = "ensemble.json"  # the ensemble run's checkpoint and test metrics, written last
RESUME = "the same `litmodules cv` continues it"
EVALUATION = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}


def main(argv: list[str]) -> None:
    """`litmodules cv --folds K ...`: every other option is `litmodules fit`'s, for every fold."""
    parser = argparse.ArgumentParser(
        prog="litmodules cv",
        description="K-fold cross-validation: each fold a `litmodules fit` run; the folds' metrics' mean and spread.",
        epilog="Every other option is passed to each fold's `litmodules fit` (--config, --model..., --data..., "
        "--trainer...). The same command again continues a stopped cross-validation. docs/cv.md",
        allow_abbrev=False,
    )
    parser.add_argument("--folds", required=True, type=int, help="how many folds (at least 2)")
    options, fit_args = parser.parse_known_args(argv)
    cross_validate(options.folds, fit_args)


def cross_validate(folds: int, fit_args: list[str]) -> dict[str, Any]:
    """Runs (or continues) the folds of `fit_args`' run; returns the summary `cv.json` holds.

    Args:
        folds: how many folds.
        fit_args: `litmodules fit`'s options, the same for every fold (e.g. ["--config", "tabular_mlp"]).
    """
    if folds < 2:
        raise UserError(f"--folds {folds}: cross-validation needs at least 2 folds")
    base = LitCLI(fit_args)
    folder = _folder(base) / f"cv_{folds}"
    _same_settings(folder, settings_of(base))
    results = []
    for fold in range(folds):
        done = folder / f"fold_{fold}" / RESULT
        if not done.is_file():
            _run_fold(fold, folds, fit_args, folder, base)
        results.append(json.loads(done.read_text()))
    summary = _summary(results)
    _log(summary, type(base.trainer.logger), folder)
    predictions = pd.concat([pd.read_csv(folder / f"fold_{k}" / PREDICTIONS) for k in range(folds)])
    predictions.sort_values("row").to_csv(folder / PREDICTIONS, index=False)
    summary["ensemble"] = _ensemble(folder, summary["checkpoints"], base)
    (folder / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    lines = [f"{name}: {value['mean']:.4f} ± {value['std']:.4f}" for name, value in summary["metrics"].items()]
    ensemble = summary["ensemble"]
    lines += [f"the {folds} folds as one model: {ensemble['checkpoint']}"]
    lines += [f"  {name}: {value:.4f}" for name, value in ensemble.get("test", {}).items()]
    rank_zero_info("\n".join([f"{folds}-fold cross-validation in {folder}:", *lines]))
    return summary


def _folder(base: LitCLI) -> Path:
    """`<save_dir>/<name>/`, where the folds' runs go; the data must be a table's, its folds not chosen already."""
    data = base.datamodule
    if not isinstance(data, TabularDataModule):
        raise UserError(f"{type(data).__name__} takes no folds: cross-validation is for TabularDataModule's tables")
    if base.ckpt_path is not None or data.folds is not None:
        raise UserError("cv takes no --ckpt_path, --data.fold or --data.folds: it runs every fold, and continues them")
    logger = base.trainer.logger
    if not isinstance(logger, (TensorBoardLogger, CSVLogger)):
        raise UserError(
            "cv keeps each fold in a run folder of its logger: use TensorBoardLogger (the default) or CSVLogger"
        )
    if base.trainer.world_size > 1:
        raise UserError("cv trains its folds in one process, one after the other: leave out --trainer.devices")
    return Path(logger.save_dir) / (logger.name or "")


def _same_settings(folder: Path, settings: dict[str, Any]) -> None:
    """Records the settings of a new cross-validation; refuses to continue one with others, naming them."""
    path = folder / SETTINGS
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(settings, sort_keys=True))
        return
    before = yaml.safe_load(path.read_text())
    if before != settings:
        raise UserError(
            f"{folder} holds a cross-validation of other settings ({differences_of(before, settings)}): continue it "
            "with the same, or name another with --trainer.logger.init_args.name NAME"
        )


def _run_fold(fold: int, folds: int, fit_args: list[str], folder: Path, base: LitCLI) -> None:
    """Trains fold `fold` (or goes on with it), then evaluates its best checkpoint."""
    run = folder / f"fold_{fold}"
    args = [*fit_args, f"--data.folds={folds}", f"--data.fold={fold}", "--test_after_fit=false"]
    name = folder.relative_to(Path(base.trainer.logger.save_dir)).as_posix()  # <name>/cv_<K>
    args += [f"--trainer.logger.init_args.name={name}", f"--trainer.logger.init_args.version={run.name}"]
    started = resumable_checkpoint(run)
    checkpoint = None if started is None else read_checkpoint(started)
    if checkpoint is not None and _finished(checkpoint, started, base):
        best = _best_of(checkpoint, started)
    else:
        if started is not None:
            args.append("--ckpt_path=last")
        elif run.is_dir() and any(run.iterdir()):  # stopped before its first checkpoint: kept aside, begun again
            kept = earlier_name(run)
            run.rename(kept)
            rank_zero_info(f"fold {fold} had stopped before its first checkpoint: {run} kept as {kept.name}")
        rank_zero_info(f"fold {fold} of {folds} ({run})")
        cli = LitCLI(args, resume_hint=RESUME)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.ckpt_path)
        best = cli.trainer.checkpoint_callback.best_model_path or cli.trainer.checkpoint_callback.last_model_path
    _evaluate(Path(best), run)


def _finished(checkpoint: dict[str, Any], path: Path, base: LitCLI) -> bool:
    """Whether a fold's checkpoint has trained as long as the run asks (stopped while it was evaluated)."""
    try:  # the one test of "finished", the one `fit` refuses a checkpoint by
        refuse_a_finished_run(checkpoint, path, base.trainer.max_epochs, base.trainer.max_steps)
    except UserError:
        return True
    return False


def _best_of(checkpoint: dict[str, Any], path: Path) -> str:
    """The best checkpoint its run's `ModelCheckpoint` had recorded by the time of `checkpoint` (else `path`)."""
    states = checkpoint.get("callbacks", {})
    found = [state["best_model_path"] for key, state in states.items() if key.startswith(ModelCheckpoint.__name__)]
    return next((best for best in found if best and Path(best).is_file()), str(path))


def _evaluate(best: Path, run: Path) -> None:
    """The best checkpoint's validation (and test) metrics and its predictions of the rows it validated."""
    model, data = load_run(best)
    trainer = L.Trainer(**EVALUATION)
    result = {"checkpoint": str(best), "val": _metrics(trainer.validate(model, datamodule=data, verbose=False))}
    if len(data.frames.get("test", ())):  # the fold's splits, read by validate's setup
        result["test"] = _metrics(trainer.test(model, datamodule=data, verbose=False))
    outputs = torch.cat(trainer.predict(model, dataloaders=data.val_dataloader()))
    _out_of_fold(data, outputs).to_csv(run / PREDICTIONS, index=False)
    (run / RESULT).write_text(json.dumps(result, indent=2) + "\n")


def _ensemble(folder: Path, checkpoints: list[str], base: LitCLI) -> dict[str, Any]:
    """The folds' best checkpoints as one model, in the run `<folder>/ensemble/`: its checkpoint and test metrics.

    Made once for these checkpoints; an earlier one of other checkpoints (a fold trained again), or stopped
    before its end, is kept aside.
    """
    run = folder / "ensemble"
    done = run / ENSEMBLE
    written = [Path(path).stat().st_mtime_ns for path in checkpoints]  # a fold trained again: the same name, anew
    made = json.loads(done.read_text()) if done.is_file() else None
    if made is not None and made["written"] == written:
        return made
    if run.is_dir():
        kept = earlier_name(run)
        run.rename(kept)
        rank_zero_info(f"the ensemble of other checkpoints, or stopped before its end, is kept as {kept.name}")
    model, fold_data = ensemble_of(checkpoints)
    data = type(fold_data)(**{**fold_data.hparams, "folds": None, "fold": 0})  # the test rows, not a fold's
    data.load_state_dict(fold_data.state_dict())  # the folds' shared preprocessing
    data.setup("test")
    tested = len(data.frames["test"]) > 0
    # no test rows: nothing to log; the checkpoint is written after a pass over validation rows the folds trained on
    logger = type(base.trainer.logger)(save_dir=str(folder), name="", version=run.name) if tested else False
    quiet = {"enable_progress_bar": False, "enable_model_summary": False}
    trainer = make_trainer("", run.name, save_dir=folder, logger=logger, **quiet)
    if tested:
        result = {"test": _metrics(trainer.test(model, datamodule=data, verbose=False))}
    else:
        trainer.validate(model, datamodule=data, verbose=False)
        result = {}
    checkpoint = run / "checkpoints" / "ensemble.ckpt"
    trainer.save_checkpoint(checkpoint, weights_only=False)  # as Lightning writes its own (and says nothing)
    result = {"checkpoint": str(checkpoint.absolute()), "members": checkpoints, "written": written, **result}
    done.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _metrics(logged: list[dict[str, Any]]) -> dict[str, float]:
    return {name: float(value) for name, value in logged[0].items() if metrics.BEST not in name}


def _out_of_fold(data: Any, outputs: torch.Tensor) -> pd.DataFrame:
    """Each validated row by its place in the table, its target, and the prediction (with each class's probability)."""
    rows = data.frames["val"]
    table = pd.DataFrame({"row": rows.index, "target": rows[data.target].to_numpy()})
    names = data.facts.class_names
    if names is None:
        return table.assign(prediction=outputs.numpy())
    table["prediction"] = [names[index] for index in outputs.argmax(dim=1).tolist()]
    return pd.concat([table, pd.DataFrame(outputs.numpy(), columns=[f"p_{name}" for name in names])], axis=1)


def _log(summary: dict[str, Any], kind: type, folder: Path) -> None:
    """The means and deviations as a run of the folds' logger kind, `<folder>/summary` (TensorBoard's scalars)."""
    logger = kind(save_dir=str(folder), name="", version="summary")
    values = {f"{name}_{stat}": value[stat] for name, value in summary["metrics"].items() for stat in ("mean", "std")}
    logger.log_metrics(values, step=0)
    logger.finalize("success")


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Every metric's mean and standard deviation over the folds (validation, then test), and each fold's value."""
    names = [(split, name) for split in ("val", "test") for name in results[0].get(split, {})]
    values = {name: [result[split][name] for result in results] for split, name in names}
    summary = {
        name: {"mean": statistics.fmean(v), "std": statistics.stdev(v), "folds": v} for name, v in values.items()
    }
    return {"folds": len(results), "metrics": summary, "checkpoints": [result["checkpoint"] for result in results]}
