"""Where the project reads Lightning's loop state that has no public accessor: one place, each with a guard test.

Checked on Lightning 2.6.6; the guard tests in tests/test_lifecycle.py fail with a clear message when one changes.
"""

from __future__ import annotations

from typing import Any

import lightning as L


def epoch_position(trainer: L.Trainer) -> tuple[int, int]:
    """(epoch, its training batches already done): where training stands, or goes on after a resume.

    Valid from `on_train_start` on, and while a checkpoint is written. A batch count of 0 means the epoch
    has not begun (a fresh run, or a resume from an epoch's end); a finished epoch counts as not begun
    either, since the next one starts from its first batch.

    Why private: `fit_loop.epoch_progress` and `epoch_loop.batch_progress` are the loops' own counters,
    which Lightning restores from a checkpoint; the Trainer exposes only `current_epoch` and `global_step`.
    """
    epochs = trainer.fit_loop.epoch_progress.current
    batches = trainer.fit_loop.epoch_loop.batch_progress
    in_epoch = epochs.ready > epochs.processed and not batches.is_last_batch
    return trainer.current_epoch, batches.current.completed if in_epoch else 0


def epochs_done(checkpoint: dict[str, Any]) -> int:
    """How many whole epochs the run that wrote `checkpoint` had trained.

    Why private: the checkpoint's "epoch" is the epoch under way when it was written, which is the last
    finished one at an epoch's end and the unfinished one mid-epoch; the fit loop's saved progress tells.
    """
    return checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]


def is_last_batch(trainer: L.Trainer) -> bool:
    """Whether the training step under way is its epoch's last (Lightning knows from its prefetched batch).

    Why private: `epoch_loop.batch_progress.is_last_batch` is the loop's own flag; `num_training_batches` can
    differ from the batches an epoch resumed mid-way with another batch size hands out.
    """
    return trainer.fit_loop.epoch_loop.batch_progress.is_last_batch


def stop_after_this_step(trainer: L.Trainer) -> None:
    """Has Lightning stop at the end of the training step under way, as on SIGTERM: it raises its
    `SIGTERMException` there, which the callbacks' `on_exception` receive.

    Why private: the flag Lightning's SIGTERM handler sets is the connector's `received_sigterm`; the
    Trainer's `received_sigterm` property has no setter, and calling the handler itself would, under DDP,
    start a collective operation inside a signal handler (a deadlock when every process gets the signal).
    """
    trainer._signal_connector.received_sigterm = True
