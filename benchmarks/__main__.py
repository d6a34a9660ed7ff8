"""`python -m benchmarks`: runs the parts asked for, prints their tables, writes all figures as JSON."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
from pathlib import Path

import torch

import benchmarks
from benchmarks import accuracy, cnn, export, images, mlp, overhead, scratch, summaries, tabular, toy, tune, workers

PARTS = (
    *("mlp", "accuracy", "scratch", "toy", "overhead", "tabular", "summaries", "cnn", "export", "images"),
    *("tune", "workers"),
)


def main() -> None:
    """Parses the arguments, runs each part asked for, writes the JSON."""
    parser = argparse.ArgumentParser(
        description=benchmarks.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="data", help="folder holding MNIST/raw")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS[:5], help="parts to run (default: first 5)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128], help="of the mlp part")
    parser.add_argument("--repeats", type=int, default=5, help="epochs of each path (the tutorial's at most 2)")
    parser.add_argument("--seeds", type=int, default=5, help="of the toy and tabular parts")
    parser.add_argument("--tables", help="folder of the shared tables (tables.json), for the export part")
    parser.add_argument("--png-dir", help="where the images part keeps its MNIST PNG tree (default: a temporary one)")
    parser.add_argument("--trials", type=int, default=20, help="of each search of the tune part")
    parser.add_argument("--epochs", type=int, default=3, help="of each trial of the tune part, and of its config")
    parser.add_argument("--batches", type=int, default=100, help="training batches of each trial of the workers part")
    parser.add_argument("--json", default="lightning_logs/benchmark.json", help="where to write the results")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # each fit's reports: the parts print theirs
    data_dir = os.path.abspath(args.data_dir)
    run = {
        "mlp": lambda: mlp.run(data_dir, args.batch_sizes, args.repeats),
        "accuracy": lambda: accuracy.run(data_dir),
        "scratch": lambda: scratch.run(data_dir, args.repeats),
        "toy": lambda: toy.run(args.seeds),
        "overhead": lambda: overhead.run(args.repeats),
        "tabular": lambda: tabular.run(args.seeds),
        "summaries": lambda: summaries.run(data_dir),
        "cnn": lambda: cnn.run(data_dir),
        "export": lambda: export.run(data_dir, args.tables),
        "images": lambda: images.run(data_dir, args.repeats, args.png_dir),
        "tune": lambda: tune.run(data_dir, args.trials, args.epochs),
        "workers": lambda: workers.run(data_dir, repeats=args.repeats, batches=args.batches),
    }
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    print(f"machine: {machine}; torch threads: {torch.get_num_threads()}")
    results: dict = {"machine": machine, "command": " ".join(sys.argv)}
    for part in args.only:
        results[part] = run[part]()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
