"""What a model's checkpoint keeps of a run under way, so that a resumed run ends as if never stopped.

- The random state (CPU and CUDA), restored at the first training step after the resume.
- Mid-epoch, the epoch's running training metrics and the steps not yet added to them, as they were.
- After a resume, the settings of the resumed run: the learning rate, weight decay and the length of a
  one-cycle schedule go to the default optimizer, whose state the checkpoint held (`nnmodules.tasks.schedules`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities import move_data_to_device
from torch import Tensor
from torchmetrics import Metric

from datamodules.arguments import import_class
from datamodules.errors import UserError
from nnmodules._lightning import epoch_position, trainer_of
from nnmodules.tasks.checkpoints import read_checkpoint, record_of
from nnmodules.tasks.schedules import announce, apply_settings, planned_steps, replan_one_cycle

EPOCH_STATE = "epoch_state"  # a mid-epoch checkpoint's running training metrics, for an exact resume


def refuse_another_model(checkpoint: dict[str, Any], path: str | Path, cls: type) -> None:
    """A checkpoint whose record names another model class than `cls` (or one it derives from) is refused."""
    written_by = record_of(checkpoint).get("model")
    if written_by is None:  # 0.1.0's checkpoints name no class: their hyperparameters are checked as they load
        return
    try:
        recorded = import_class(written_by)
    except (ImportError, AttributeError, ValueError):
        recorded = None
    if not (isinstance(recorded, type) and issubclass(cls, recorded)):
        name = written_by.rpartition(".")[2]
        raise UserError(
            f"{path} is a checkpoint of {written_by}, not of {cls.__name__}: load it with "
            f"{name}.load_from_checkpoint, or with nnmodules.load_run, which takes any run's checkpoint"
        )


class Resumable:
    """What makes a LightningModule's checkpoints resume exactly, and load without pickle: a mixin, before it.

    The model keeps, for this: `epoch_buffers` (per-step values of the epoch under way, kept in order),
    `check_finite()` (refuses to save a diverged model), and `lr`, `weight_decay` and `default_optimizer`.
    """

    epoch_buffers: tuple[str, ...] = ()
    lr: float
    weight_decay: float
    default_optimizer: torch.optim.Optimizer | None = None  # made by configure_optimizers, not --optimizer
    _rng_to_restore: dict[str, Any] | None = None  # from a checkpoint, for the first training step after it

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, *args: Any, **kwargs: Any) -> Any:
        """Lightning's, reading without pickle, and naming a file that is no checkpoint of this class."""
        if isinstance(checkpoint_path, (str, Path)):
            refuse_another_model(read_checkpoint(checkpoint_path, map_location="meta"), checkpoint_path, cls)
        try:
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)
        except UserError:
            raise
        except (RuntimeError, TypeError, ValueError) as error:  # its hyperparameters or weights do not fit
            reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
            raise UserError(
                f"{checkpoint_path} does not load as a {cls.__name__} ({reason}): is it a checkpoint of another "
                f"model? Load it with the class that wrote it"
            ) from error

    def check_finite(self) -> Tensor | None:
        """Raises if the steps not yet added up hold a diverged loss (see `TaskModule`)."""
        return None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The random state; mid-epoch, the epoch's running training metrics and pending steps as they are.

        Not added up early, which would round the sums otherwise: a resumed run ends with the very metrics of an
        uninterrupted one. The pending steps are checked first: no checkpoint of a diverged model is written.
        """
        self.check_finite()
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
        checkpoint["rng_states"] = {"torch": torch.get_rng_state(), "cuda": cuda}  # tensors: no pickle needed
        trainer = trainer_of(self)
        if trainer is not None and trainer.training and epoch_position(trainer)[1]:
            metrics = [(n, m) for n, m in self.named_modules() if isinstance(m, Metric) and n.startswith("train_")]
            states = {f"{name}.{key}": value for name, metric in metrics for key, value in metric.metric_state.items()}
            checkpoint[EPOCH_STATE] = {"metrics": states, **{name: getattr(self, name) for name in self.epoch_buffers}}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_to_restore = checkpoint.get("rng_states")
        state = checkpoint.get(EPOCH_STATE)
        if state:
            self.load_state_dict(state["metrics"], strict=False)  # the metric objects load their own states
            for name in self.epoch_buffers:
                setattr(self, name, [tuple(step) if isinstance(step, list) else step for step in state[name]])

    def on_train_start(self) -> None:
        """After a resume: the restored steps to the model's device, this run's settings to the optimizer.

        Lightning restores the optimizer's state with the settings it was saved with; the settings this run
        was configured with (the model's `lr` and `weight_decay`, or `--optimizer`'s) apply from the first
        resumed step instead (`schedules.apply_settings`), and the default one-cycle schedule is re-planned.
        """
        for name in self.epoch_buffers:
            setattr(self, name, move_data_to_device(getattr(self, name), self.device))
        step = self.trainer.global_step
        if not step:
            return  # a new run
        optimizer = self.trainer.optimizers[0]
        schedules = [config.scheduler for config in self.trainer.lr_scheduler_configs]
        schedule = schedules[0] if schedules else None
        changed = apply_settings(optimizer, schedule)
        if isinstance(schedule, torch.optim.lr_scheduler.OneCycleLR) and optimizer is self.default_optimizer:
            changed.append(replan_one_cycle(schedule, self.lr, int(planned_steps(self.trainer)), step) or "")
        announce(", ".join(line for line in changed if line), step)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # restored where the interrupted run went on from this state: after the resumed run's sanity check
        # and data loader set-up, which draw nothing from the global generator (loaders have their own)
        if self._rng_to_restore is not None:
            torch.set_rng_state(self._rng_to_restore["torch"])
            if self._rng_to_restore["cuda"]:
                torch.cuda.set_rng_state_all(self._rng_to_restore["cuda"])
            self._rng_to_restore = None
