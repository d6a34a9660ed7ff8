"""Writes examples/people.csv: made-up customer records with a 0/1 outcome, for docs, configs and tests.

    python scripts/make_people_csv.py [--rows 600] [--out examples/people.csv]

The records are generated here (numpy, seed 442), not taken from any public
data set: numeric and categorical columns, missing values, a long-tailed
column worth `log1p`, an id to drop, and an outcome `renewed` that depends on
them through a known logistic rule plus noise. The same arguments always
write the same file.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def make_people(rows: int, seed: int = 442) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(42, 13, rows), 18, 90).round()
    income = np.exp(rng.normal(10.3, 0.7, rows)).round(-2)  # long tail: log1p it
    visits = rng.poisson(3, rows)
    region = rng.choice(["north", "south", "east", "west"], rows, p=[0.3, 0.3, 0.25, 0.15])
    plan = rng.choice(["basic", "plus", "premium"], rows, p=[0.5, 0.3, 0.2])
    channel = rng.choice(["web", "store", "phone", "partner"], rows, p=[0.45, 0.25, 0.2, 0.1])
    score = (
        0.035 * (age - 42)
        + 0.9 * (np.log(income) - 10.3)
        + 0.35 * (visits - 3)
        + np.select([plan == "plus", plan == "premium"], [0.6, 1.2], 0.0)
        + np.select([region == "south", region == "west"], [-0.5, 0.4], 0.0)
        - 0.3
    )
    renewed = (rng.random(rows) < 1 / (1 + np.exp(-2 * score))).astype(int)
    people = pd.DataFrame(
        {
            "id": np.arange(1, rows + 1),
            "age": age,
            "income": income,
            "visits": visits,
            "region": region,
            "plan": plan,
            "channel": channel,
            "renewed": renewed,
        }
    )
    for column, share in (("age", 0.08), ("income", 0.05), ("region", 0.04), ("channel", 0.03)):
        people.loc[rng.random(rows) < share, column] = np.nan  # missing at random
    return people


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--out", default="examples/people.csv")
    args = parser.parse_args()
    make_people(args.rows).to_csv(args.out, index=False)
    print(f"wrote {args.rows} rows to {args.out}")


if __name__ == "__main__":
    main()
