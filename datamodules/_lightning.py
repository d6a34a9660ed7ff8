"""The private Lightning names the batch path needs, each saying why, each with a guard test.

Checked on Lightning 2.6.0 and 2.6.6 (pyproject.toml bounds `lightning` to 2.6.x). The guard tests
(tests/test_lightning_guards.py) fail naming the function here when Lightning changes what it relies on.
"""

from __future__ import annotations

import lightning as L


def epoch_position(trainer: L.Trainer) -> tuple[int, int]:
    """(epoch, its training batches done): where training stands, or goes on after a resume.

    Valid from `on_train_start` on, and while a checkpoint is written: at the end of a training step (its
    batch counts as done, as Lightning counts it when it resumes from a checkpoint written there) or after
    it. A batch count of 0 means the epoch has not begun (a fresh run, or a resume from an epoch's end); a
    finished epoch counts as not begun either, since the next one starts from its first batch.

    Why private: `fit_loop.epoch_progress` and `epoch_loop.batch_progress` are the loops' own counters,
    which Lightning restores from a checkpoint; the Trainer exposes only `current_epoch` and `global_step`.
    """
    epochs = trainer.fit_loop.epoch_progress.current
    batches = trainer.fit_loop.epoch_loop.batch_progress
    in_epoch = epochs.ready > epochs.processed and not batches.is_last_batch
    return trainer.current_epoch, batches.current.processed if in_epoch else 0
