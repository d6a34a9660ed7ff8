"""A run's folder kept to itself: a new run refuses a used folder, and one that fails before it starts leaves none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from datamodules.errors import UserError
from datamodules.leftovers import Leftovers


class RunFolderGuard(L.Callback):
    """A new run never writes into a folder that holds a run; a stage that fails before it starts leaves none.

    `fit` without a checkpoint to continue refuses a folder that held files when the Trainer was built.
    A stage that fails before its loop starts leaves `folder` as it was: what appeared in it since is removed.

    Lightning makes its loggers' experiments (a TensorBoard or CSV logger's folder and first file) before it sets
    up the data and the model, where a user's mistake is found; a mistake, or Ctrl-C, while setting up must not
    leave a run folder that no run is in. What was there before (an earlier run's files, the events of earlier
    tests) stays. Once training (or evaluating, predicting) has started, nothing is removed.

    Args:
        folder: the run's folder, as it is when the Trainer is built.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).absolute()
        self.leftovers = Leftovers(self.folder)  # what appears in it, until the stage starts
        self.started = False

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.ckpt_path is None and self.leftovers.before:  # a new run (a continued one has a checkpoint)
            refuse_a_used_folder(self.folder)

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = True

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = self.started or trainer.state.fn == "validate"  # not a fit's sanity check

    def on_test_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = True

    def on_predict_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = True

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> Any:
        if not self.started and trainer.is_global_zero:
            self.leftovers.remove()


def refuse_a_used_folder(folder: Path) -> None:
    """A new run never writes into a folder that holds one."""
    if folder.is_dir() and any(folder.iterdir()):
        raise UserError(
            f"{folder} already holds a run, which a new run would overwrite: continue it with `--ckpt_path last` "
            '(`ckpt_path="last"`), or leave the version unset for a new folder'
        )
