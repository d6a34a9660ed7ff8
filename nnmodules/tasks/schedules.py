"""Step schedules that survive a resume with other settings: the plan of a run is its current length.

A run resumed with another `max_epochs`, `max_steps`, `limit_train_batches`, batch
size, number of processes or learning rate goes on as a run planned with those
settings from its start would at this step: a one-cycle schedule (and the scratch
net's cosine step size) is re-planned over the new total of steps, counted from
the steps already taken, and says so in one line. Training longer after a
finished one-cycle run therefore warms up again to part of the peak, then anneals
to the new end.
"""

from __future__ import annotations

import math
import warnings

import lightning as L
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from nnmodules._lightning import epoch_position


def planned_steps(trainer: L.Trainer) -> float:
    """The optimizer steps of the whole run, the steps a resumed run took before included; inf without an end.

    The steps taken (by a resumed run), plus those left in the epoch under way, plus the remaining epochs at
    the current epoch length; at most `max_steps`. For a new run: Lightning's `estimated_stepping_batches`.
    Valid from `on_train_start` on (Lightning restores the loops after `configure_optimizers`).
    """
    estimated = trainer.estimated_stepping_batches  # for a new run, what the count below comes to
    if not math.isfinite(estimated):
        return estimated
    epoch, batches_done = epoch_position(trainer)
    batches = trainer.num_training_batches
    steps_per_epoch = math.ceil(batches / trainer.accumulate_grad_batches)
    if batches_done < batches:
        left = batches - batches_done
    else:  # resumed at or past a smaller limit_train_batches: Lightning counts the epoch anew, as far as data goes
        left = min(batches, len(trainer.train_dataloader) - batches_done)
    total = trainer.global_step + math.ceil(left / trainer.accumulate_grad_batches)
    total += max(trainer.max_epochs - epoch - 1, 0) * steps_per_epoch
    return min(total, trainer.max_steps) if trainer.max_steps != -1 else total


SETTINGS = {  # an optimizer's settings a resumed run applies, in words
    "lr": "learning rate",
    "weight_decay": "weight decay",
    "betas": "betas",
    "momentum": "momentum",
    "eps": "eps",
}
CYCLING = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR)  # may set momentum each step


def apply_settings(optimizer: torch.optim.Optimizer, schedule: object | None) -> list[str]:
    """The settings a resumed optimizer was configured with (its `defaults`) over those its checkpoint restored.

    The learning rate is a schedule's to set, where there is one; so is the momentum (Adam's first beta) of a
    schedule that cycles it. Returns a line for each setting that changed.
    """
    kept = {"lr"} if schedule is not None else set()
    if isinstance(schedule, CYCLING) and schedule.cycle_momentum:
        kept |= {"betas", "momentum"}
    changed = []
    for setting, value in optimizer.defaults.items():
        if setting not in SETTINGS or setting in kept:
            continue
        before = [group[setting] for group in optimizer.param_groups if setting in group]
        for group in optimizer.param_groups:
            group[setting] = value
        if any(old != value for old in before):
            changed.append(f"{SETTINGS[setting]} {_shown(before[0])} -> {_shown(value)}")
    return changed


def _shown(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(f"{item:g}" for item in value) + ")"
    return f"{value:g}"


def replan_one_cycle(
    schedule: torch.optim.lr_scheduler.OneCycleLR, max_lr: float, total_steps: int, step: int
) -> str | None:
    """Makes `schedule` (restored from a checkpoint) the one-cycle schedule of `max_lr` over `total_steps`.

    At `step`; returns a line saying what changed, or None when it already was that schedule at that step.
    """
    peaks = [group["max_lr"] for group in schedule.optimizer.param_groups]
    if schedule.total_steps == total_steps and schedule.last_epoch == step and peaks == [max_lr] * len(peaks):
        return None
    before = f"{schedule.total_steps} steps, peak {peaks[0]:g}"
    fresh = torch.optim.lr_scheduler.OneCycleLR(schedule.optimizer, max_lr=max_lr, total_steps=total_steps)
    fresh.last_epoch = step - 1
    with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": here it only moves the plan
        warnings.simplefilter("ignore", UserWarning)
        fresh.step()  # sets every group's learning rate to that of `step`
    schedule.load_state_dict(fresh.state_dict())
    return f"one-cycle schedule re-planned for this run's settings: {before} -> {total_steps} steps, peak {max_lr:g}"


def announce(line: str | None, step: int) -> None:
    """Says `line`, what a resume changed in a schedule, and the step it goes on from (nothing if None)."""
    if line:
        rank_zero_info(f"{line}; going on from step {step}")
