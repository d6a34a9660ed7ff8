"""scratch: one MNIST training epoch of the mnist_scratch recipe's raw-tensor net, three ways, side by side.

The tutorial's loop (a) and the tensor loop (b) run the tutorials' own functions (matrix
products, log-softmax, NLL, `p -= lr * grad`) with the config's layers and step size; ours
is the config's model, data and Trainer.
"""

from __future__ import annotations

import tempfile
from contextlib import chdir

from benchmarks import loops
from benchmarks.recipes import from_config, mnist_args
from benchmarks.timing import Run, fit_epoch, print_table, ratio, side_by_side


def run(data_dir: str, repeats: int) -> dict:
    """The table, and ours against the tutorial by median epochs."""
    with tempfile.TemporaryDirectory() as folder, chdir(folder):
        probe = from_config("mnist_scratch", *mnist_args(data_dir))
        batch_size, lr = probe.datamodule.batch_size, probe.model.lr
        probe.datamodule.setup("fit")  # the widths are the data's
        facts = probe.datamodule.facts
        sizes = [facts.num_features, *probe.model.hparams.hidden_dims, facts.num_classes]

        def ours() -> Run:
            cli = from_config("mnist_scratch", *mnist_args(data_dir, epochs=1))
            return fit_epoch(cli.model, cli.datamodule, cli.trainer)

        paths = {
            "tutorial": lambda: loops.tutorial_epoch(data_dir, batch_size, loops.scratch_net(sizes, lr)[0]),
            "tensor_loop": lambda: loops.tensor_epoch(data_dir, batch_size, *loops.scratch_net(sizes, lr)),
            "ours": ours,
        }
        rows = side_by_side(paths, repeats, at_most_twice=["tutorial"])
    print_table(f"Scratch net {'-'.join(map(str, sizes))} (the mnist_scratch recipe), batch {batch_size}", rows)
    rows["tutorial_epoch_over_ours"] = ratio(rows, "tutorial", "ours")
    print(f"ours: {rows['tutorial_epoch_over_ours']:.2f}x faster than the tutorial by median epochs")
    return {batch_size: rows}
