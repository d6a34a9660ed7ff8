"""cnn: the mnist_cnn recipe as it is (nnmodules.SmallCNN through Classifier, 1x28x28 images, 10 epochs).

The test accuracy after each epoch (scored off the clock) with the training seconds so
far, then the test accuracy of its best checkpoint (by validation loss), as
`litmodules fit` reports it.
"""

from __future__ import annotations

import tempfile
from contextlib import chdir

from benchmarks.accuracy import clocked_fit, print_epochs
from benchmarks.recipes import mnist_args


def run(data_dir: str) -> dict:
    """Each epoch's test accuracy and seconds, and the best checkpoint's test accuracy."""
    with tempfile.TemporaryDirectory() as folder, chdir(folder):
        cli, rows = clocked_fit("mnist_cnn", *mnist_args(data_dir))
        best = cli.trainer.test(ckpt_path="best", datamodule=cli.datamodule, verbose=False)[0]["test/acc"]
    print_epochs(f"the mnist_cnn recipe ({type(cli.model.net).__name__})", rows)
    print(f"best checkpoint (lowest val/loss): {100 * best:.2f}% test accuracy")
    return {"epochs": rows, "best_checkpoint_test_acc": best}
