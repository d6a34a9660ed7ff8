"""The figures of a `mutmut run` (`make mutation`): kill rate per module, and every survivor with its change.

    python scripts/mutation_report.py [--equivalents tests/mutation_equivalents.txt]

Mutants listed in the equivalents file (one `name  reason` a line) change no behaviour a user could see;
they are left out of the kill rate and printed apart with their reasons.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

MUTMUT = [sys.executable, "-m", "mutmut"]


def results() -> dict[str, str]:
    """Every mutant's name and status, as `mutmut results --all true` prints them."""
    output = subprocess.run([*MUTMUT, "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"^\s*(\S+): (.+)$", output, re.MULTILINE))


def change(name: str) -> str:
    """The lines a mutant changes, from `mutmut show`."""
    diff = subprocess.run([*MUTMUT, "show", name], capture_output=True, text=True).stdout
    return "\n".join(line for line in diff.splitlines() if re.match(r"^[-+](?![-+])", line))


def row(module: str, counts: Counter) -> str:
    """One line of the table: the kill rate counts every mutant but the equivalent ones."""
    counted = sum(counts.values()) - counts["equivalent"]
    rate = counts["killed"] / counted if counted else 1.0
    return (
        f"{module:28} {sum(counts.values()):8} {counts['killed']:7} {counts['equivalent']:11} "
        f"{counted - counts['killed']:6} {rate:10.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--equivalents", type=Path, default=Path("tests/mutation_equivalents.txt"))
    options = parser.parse_args()
    equivalent = {}
    if options.equivalents.is_file():
        for line in options.equivalents.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                equivalent[name] = reason.strip()
    by_module: dict[str, Counter] = defaultdict(Counter)
    survivors = []
    unchecked = 0
    for name, status in sorted(results().items()):
        if status == "not checked":  # outside this run's MUTANTS
            unchecked += 1
            continue
        module = name.split(".x_")[0].split(".xǁ")[0]
        kind = "equivalent" if name in equivalent else status
        by_module[module][kind] += 1
        if kind != "killed" and kind != "equivalent":
            survivors.append((name, status))
    print(f"{'module':28} {'mutants':>8} {'killed':>7} {'equivalent':>11} {'other':>6} {'kill rate':>10}")
    totals: Counter = Counter()
    for module, counts in sorted(by_module.items()):
        totals.update(counts)
        print(row(module, counts))
    print(row("all", totals))
    if unchecked:
        print(f"({unchecked} mutants of other modules not checked in this run)")
    for name, status in survivors:
        print(f"\n{status}: {name}\n{change(name)}")
    for name, reason in equivalent.items():
        print(f"\nequivalent: {name}: {reason}")


if __name__ == "__main__":
    main()
