"""summaries: what the mnist_mlp recipe's figures add to its epochs.

ClassificationFigures draws the confusion matrix and misclassified digits every 2 epochs.

Epoch times of separate runs differ by more than 10% on a shared machine, so the figure
is taken inside one run: SimpleProfiler's time in the callback's epoch-end hook against
the time of the training epochs (batches and validation; the epoch-end hooks run after,
so the share slightly overstates the cost).
"""

from __future__ import annotations

import tempfile
from contextlib import chdir

from benchmarks.recipes import from_config, mnist_args


def run(data_dir: str, epochs: int = 6) -> dict:
    """Seconds of training epochs, of drawing, and the share."""
    with tempfile.TemporaryDirectory() as folder, chdir(folder):
        cli = from_config("mnist_mlp", *mnist_args(data_dir, epochs=epochs), "--trainer.profiler=SimpleProfiler")
        cli.trainer.fit(cli.model, cli.datamodule)
    durations = cli.trainer.profiler.recorded_durations
    epochs_s = sum(durations["run_training_epoch"])
    figures_s = sum(durations["[Callback]ClassificationFigures.on_train_epoch_end"])
    share = figures_s / epochs_s
    print(f"\nconfigs/mnist_mlp.yaml, {epochs} epochs, ClassificationFigures every 2 epochs")
    print(f"training epochs: {epochs_s:.2f} s; drawing figures at their ends: {figures_s:.2f} s")
    print(f"mean epoch without figures {epochs_s / epochs:.3f} s, with {(epochs_s + figures_s) / epochs:.3f} s:")
    print(f"epochs with figures are slower than without by {100 * share:.1f}%")
    return {"epochs_s": epochs_s, "figures_s": figures_s, "slower_by": share}
