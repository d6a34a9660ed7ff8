"""The names every model logs, defined once, and which of them each task is judged by.

`train/loss` (every `log_every_n_steps` steps), `train/loss_epoch`, `val/loss`, `test/loss`; classification
adds `train/acc`, `val/acc`, `val/acc_best`, `test/acc`; regression `val/mse`, `val/mae`, `val/r2`,
`val/mse_best` and the same for `test/` (docs/design.md).
"""

from __future__ import annotations

from datamodules.contract import CLASSES

TRAIN, VAL, TEST = "train", "val", "test"  # the stages, as the names begin
LOSS, ACCURACY, MSE, MAE, R2 = "loss", "acc", "mse", "mae", "r2"
BEST = "_best"  # a validation metric's best so far: `val/acc_best`


def name(stage: str, metric: str) -> str:
    """A logged metric's name: `val/acc`."""
    return f"{stage}/{metric}"


TRAIN_LOSS, TRAIN_LOSS_EPOCH = name(TRAIN, LOSS), name(TRAIN, LOSS) + "_epoch"
VAL_LOSS, TEST_LOSS = name(VAL, LOSS), name(TEST, LOSS)
MONITOR = VAL_LOSS  # what "best" means for checkpoints: lowest validation loss, any task


def judged_by(task: str) -> str:
    """The metric a task is judged by per epoch: accuracy for classes, mean squared error for numbers."""
    return ACCURACY if task in CLASSES else MSE


def objective(task: str) -> tuple[str, str]:
    """What a search optimises by default, and in which direction: `val/acc_best` up, `val/mse_best` down."""
    metric = judged_by(task)
    return name(VAL, metric) + BEST, "maximize" if metric == ACCURACY else "minimize"


def hparams_metrics(task: str) -> tuple[str, str]:
    """The metrics TensorBoard's HParams tab compares runs by: the best validation value and the test value."""
    metric = judged_by(task)
    return name(VAL, metric) + BEST, name(TEST, metric)
