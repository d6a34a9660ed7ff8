"""tabular: the tutorials' scratch net against a logistic regression on examples/people.csv.

Test accuracy of the tabular_scratch recipe, and of the same with MLPClassifier without
hidden layers in its place, on the same split, for each seed.
"""

from __future__ import annotations

import statistics
import tempfile
from contextlib import chdir

from benchmarks.recipes import PEOPLE, from_config

LOGISTIC = ["--model=MLPClassifier", "--model.hidden_dims=[]", "--model.dropout=0.0", "--model.lr=0.01"]


def test_accuracy(seed: int, *model: str) -> float:
    """The config's fit (with `model` in place of its own) on the split of `seed`; its best checkpoint's accuracy."""
    cli = from_config(
        "tabular_scratch", f"--seed_everything={seed}", f"--data.seed={seed}", f"--data.csv={PEOPLE}", *model
    )
    cli.trainer.fit(cli.model, cli.datamodule)
    return cli.trainer.test(ckpt_path="best", datamodule=cli.datamodule, verbose=False)[0]["test/acc"]


def run(seeds: int) -> dict:
    """Each seed's two accuracies, and their means."""
    with tempfile.TemporaryDirectory() as folder, chdir(folder):
        rows = [(seed, test_accuracy(seed), test_accuracy(seed, *LOGISTIC)) for seed in range(seeds)]
    print(f"\nTest accuracy on examples/people.csv, {seeds} seeds (split and initialisation)")
    print(f"{'seed':>4}{'scratch':>9}{'logistic':>10}")
    for seed, scratch, logistic in rows:
        print(f"{seed:>4}{scratch:>9.4f}{logistic:>10.4f}")
    mean_scratch = statistics.mean(scratch for _, scratch, _ in rows)
    mean_logistic = statistics.mean(logistic for *_, logistic in rows)
    difference = 100 * (mean_scratch - mean_logistic)
    print(f"mean{mean_scratch:>9.4f}{mean_logistic:>10.4f}   scratch - logistic: {difference:+.2f} points")
    return {"seeds": rows, "scratch_mean": mean_scratch, "logistic_mean": mean_logistic}
