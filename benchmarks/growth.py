"""Time as tables grow: ours and LightGBM on one real table resampled to 10k, 100k and 1M rows.

    python -m benchmarks.growth --table ../shared/data/tables/fertility.csv --target morekids
        [--rows 10000 100000 1000000] [--args '--data.batch_size 4096'] [--json FILE]

Needs the benchmark extra (LightGBM). The table's rows are drawn with replacement (seeded) to each size, its
numeric columns given a little noise (1% of each column's deviation) so that no row is repeated exactly, and
written as a CSV. On each, in a process of its own (its peak memory its own): ours, the plain command line with
the project's defaults (`litmodules fit --model MLPClassifier|MLPRegressor --data TabularDataModule`), as
`benchmarks.tables` runs it (with any `--args`), and LightGBM with its defaults and early stopping on the same
validation rows. Each prints its test score (as `benchmarks.tables` scores it), its fit seconds (the fit alone,
wall clock), its peak resident memory (the whole process: libraries, table and all), and the microseconds of
fit per training row: flat or falling as rows grow is the goal.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROWS = (10_000, 100_000, 1_000_000)


def resampled(table: Path, rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` rows drawn with replacement from the table, its numeric feature columns given 1% noise."""
    frame = pd.read_csv(table)
    rng = np.random.default_rng(seed)
    drawn = frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)
    for name in drawn.select_dtypes("number").columns:
        if drawn[name].nunique() > 20:  # a measurement, not a code or a class
            drawn[name] = drawn[name] + rng.normal(0, 0.01 * frame[name].std(), rows)
    return drawn


def one(model: str, csv: Path, target: str, args: list[str]) -> dict[str, float]:
    """One model's fit on one table, in this process: test score, seconds, peak memory (MB)."""
    from benchmarks.tables import lightgbm_fit, ours  # the bench extra: imported where used

    if model == "ours":
        score, seconds, _ = ours(csv, target, 0, args)
    else:
        score, seconds = lightgbm_fit(csv, target, 0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"score": score, "seconds": seconds, "peak_mb": peak}


def main() -> None:
    """Each size, each model in a process of its own; the table of seconds, memory and cost per row."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--rows", type=int, nargs="+", default=list(ROWS))
    parser.add_argument("--args", default="", help="more command-line arguments for ours")
    parser.add_argument("--json", default="lightning_logs/benchmark_growth.json")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "CSV"), help=argparse.SUPPRESS)  # a child's work
    options = parser.parse_args()
    if options.one:
        print(json.dumps(one(options.one[0], Path(options.one[1]), options.target, options.args.split())))
        return
    results = []
    print(f"{'rows':>9} {'model':>9} {'score':>7} {'fit s':>8} {'peak MB':>8} {'us/row':>7}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for rows in options.rows:
            csv = Path(folder) / f"rows_{rows}.csv"
            resampled(Path(options.table), rows).to_csv(csv, index=False)
            training = round(rows * 0.6)  # TabularDataModule's default split: 60% trains
            for model in ("ours", "lightgbm"):
                command = [sys.executable, "-m", "benchmarks.growth", "--table", options.table]
                command += ["--target", options.target, f"--args={options.args}", "--one", model, str(csv)]
                done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=folder, env=_env())
                row = {"rows": rows, "model": model, **json.loads(done.stdout.strip().splitlines()[-1])}
                row["us_per_training_row"] = row["seconds"] / training * 1e6
                results.append(row)
                print(
                    f"{rows:9d} {model:>9} {row['score']:7.4f} {row['seconds']:8.1f} {row['peak_mb']:8.0f} "
                    f"{row['us_per_training_row']:7.1f}",
                    flush=True,
                )
    os.makedirs(os.path.dirname(os.path.abspath(options.json)), exist_ok=True)
    measured = {"table": options.table, "args": options.args, "rows": results}
    Path(options.json).write_text(json.dumps(measured, indent=2))


def _env() -> dict[str, str]:
    """The child's environment: this checkout importable from the temporary folder it runs in."""
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


if __name__ == "__main__":
    main()
