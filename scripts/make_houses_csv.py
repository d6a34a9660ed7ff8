"""Writes examples/houses.csv: made-up house sales with a price to predict, for the regression recipe and tests.

    python scripts/make_houses_csv.py [--rows 800] [--out examples/houses.csv]

The records are generated here (numpy, seed 442), not taken from any public
data set: numeric and categorical columns, missing values, an id to drop, and a
`price` that depends on them through a known rule plus noise. The same
arguments always write the same file.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

EURO_PER_M2 = {"centre": 5200.0, "old town": 4400.0, "harbour": 3900.0, "suburbs": 2900.0, "village": 2100.0}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=800)
    parser.add_argument("--out", default="examples/houses.csv")
    args = parser.parse_args()
    make_houses(args.rows).to_csv(args.out, index=False)
    print(f"wrote {args.rows} rows to {args.out}")


if __name__ == "__main__":
    main()
