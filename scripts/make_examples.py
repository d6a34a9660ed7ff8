"""Writes the example tables in nnmodules/cli/configs/examples/, which the recipes train on (and docs and tests use).

    python scripts/make_examples.py [--out nnmodules/cli/configs/examples]

The records are made up here (numpy, seed 442), not taken from any public data
set; the same code always writes the same files:

- people.csv: 600 customers, numeric and categorical columns, missing values, a
  long-tailed column worth `log1p`, an id to drop, and an outcome `renewed` that
  depends on them through a known logistic rule plus noise (classification);
- houses.csv: 800 house sales, with a `price` that depends on area, rooms, age,
  district, garden and distance through a known rule plus noise (regression).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

EURO_PER_M2 = {"centre": 5200.0, "old town": 4400.0, "harbour": 3900.0, "suburbs": 2900.0, "village": 2100.0}


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


def make_houses(rows: int, seed: int = 442) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = np.clip(rng.lognormal(np.log(95), 0.35, rows), 30, 400).round()
    rooms = np.clip((area / 28 + rng.normal(0, 0.8, rows)).round(), 1, 12)
    year_built = rng.integers(1890, 2024, rows)
    district = rng.choice(list(EURO_PER_M2), rows, p=[0.15, 0.15, 0.2, 0.35, 0.15])
    garden = rng.choice(["yes", "no"], rows, p=[0.4, 0.6])
    distance_km = rng.exponential(4.0, rows).round(1)
    rate = np.array([EURO_PER_M2[name] for name in district])
    price = (
        area * rate
        + 9000 * (rooms - area / 28)
        - 180 * np.clip(2024 - year_built, 0, 80)
        + np.where(garden == "yes", 25000, 0)
        - 4000 * distance_km
    ) * rng.lognormal(0, 0.08, rows)
    houses = pd.DataFrame(
        {
            "id": np.arange(1, rows + 1),
            "area_m2": area,
            "rooms": rooms,
            "year_built": year_built.astype(float),
            "district": district,
            "garden": garden,
            "distance_km": distance_km,
            "price": price.round(-2),
        }
    )
    for column, share in (("year_built", 0.06), ("distance_km", 0.04), ("garden", 0.05)):
        houses.loc[rng.random(rows) < share, column] = np.nan  # missing at random
    return houses


TABLES = {"people.csv": (make_people, 600), "houses.csv": (make_houses, 800)}  # file: (its maker, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="nnmodules/cli/configs/examples", help="the folder to write the tables into")
    args = parser.parse_args()
    for name, (make, rows) in TABLES.items():
        make(rows).to_csv(Path(args.out) / name, index=False)
        print(f"wrote {rows} rows to {Path(args.out) / name}")


if __name__ == "__main__":
    main()
