"""`make mutants`: the repository's own realistic mutants, each against the tests chosen to catch it.

    python scripts/mutants.py [NAME ...] [--list] [--timeout SECONDS] [--jobs N]

A mutant (tests/mutants/*.yaml) is a bug a developer could write: `original`, text that occurs exactly once in
`file`, becomes `replacement`; `bug` says what a user would see, `tests` are the test files a careful developer
would run for that change. In a copy of the working tree (build/mutants/tree-<k>, one for each of `--jobs`) each
mutant is put in place, its tests run (pytest, stopping at the first failure) and the file restored: the mutant
is killed when they fail (or run past the timeout). Prints the kill rate of each file of mutants and in all,
then every survivor with its bug; writes build/mutants/results.json. mutmut's generated mutants are
`make mutation`'s other half (scripts/mutation.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "tests" / "mutants"
WORK = ROOT / "build" / "mutants"


@dataclass(frozen=True)
class Mutant:
    """One realistic bug: where it goes, what it changes, what it breaks, and the tests meant to catch it."""

    group: str
    name: str
    file: str
    original: str
    replacement: str
    bug: str
    tests: tuple[str, ...]


def read_mutants(folder: Path = MUTANTS) -> list[Mutant]:
    """Every mutant of the YAML files in `folder`, in file order; a malformed entry is refused by name."""
    found = []
    for path in sorted(folder.glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text()) or []:
            missing = {"name", "file", "original", "replacement", "bug", "tests"} - set(entry)
            if missing:
                raise SystemExit(f"{path.name}: mutant {entry.get('name', '?')} lacks {sorted(missing)}")
            found.append(
                Mutant(
                    path.stem,
                    entry["name"],
                    entry["file"],
                    entry["original"],
                    entry["replacement"],
                    entry["bug"],
                    tuple(entry["tests"]),
                )
            )
    names = [mutant.name for mutant in found]
    if duplicated := sorted({name for name in names if names.count(name) > 1}):
        raise SystemExit(f"mutant names used twice: {duplicated}")
    return found


def stale(mutant: Mutant, root: Path = ROOT) -> str | None:
    """Why a mutant no longer applies to the code (its text not there exactly once), or None."""
    path = root / mutant.file
    if not path.is_file():
        return f"{mutant.file} does not exist"
    count = path.read_text().count(mutant.original)
    if count != 1:
        return f"its original occurs {count} times in {mutant.file}"
    if mutant.original == mutant.replacement:
        return "its replacement changes nothing"
    if missing := [test for test in mutant.tests if not (root / test).is_file()]:
        return f"no test file {missing}"
    return None


def working_copy(number: int = 0) -> Path:
    """build/mutants/tree-<number>: the working tree's files (committed or not), brought up to date."""
    return copy_of_the_working_tree(WORK / f"tree-{number}")


def copy_of_the_working_tree(copy: Path) -> Path:
    """`copy` holding the working tree's files, committed or not (ignored ones aside): only changed ones copied."""
    listed = ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"]
    files = subprocess.run(listed, cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source, target = ROOT / name, copy / name
        if source.is_file() and (not target.exists() or target.read_bytes() != source.read_bytes()):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return copy


THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # several jobs share the cores: one thread each


def run(mutant: Mutant, copy: Path, timeout: float) -> tuple[str, float]:
    """("killed", "survived" or "timeout", seconds) of one mutant in the copy; the file is restored after."""
    path = copy / mutant.file
    original = path.read_text()
    path.write_text(original.replace(mutant.original, mutant.replacement, 1))
    # no bytecode: a mutant of the same size written in the same second would otherwise run the cached original
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1", **THREADS}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, timeout=timeout)
        status = "survived" if done.returncode == 0 else "killed"
    except subprocess.TimeoutExpired:
        status = "timeout"
    finally:
        path.write_text(original)
    return status, time.perf_counter() - started


def report(results: list[tuple[Mutant, str]]) -> None:
    """The kill rate of each file of mutants and in all (a timeout counts as killed), then every survivor."""
    groups = sorted({mutant.group for mutant, _ in results})
    print(f"\n{'mutants':<18}{'count':>6}{'killed':>8}{'kill rate':>11}")
    for group in [*groups, None]:
        rows = [status for mutant, status in results if group is None or mutant.group == group]
        killed = sum(status != "survived" for status in rows)
        print(f"{group or 'all':<18}{len(rows):>6}{killed:>8}{killed / max(len(rows), 1):>11.0%}")
    survivors = [mutant for mutant, status in results if status == "survived"]
    if survivors:
        print("\nsurvivors:")
        for mutant in survivors:
            print(f"  {mutant.name} ({mutant.file}): {mutant.bug} -- {' '.join(mutant.tests)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="run only these mutants (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--timeout", type=float, default=900, help="seconds a mutant's tests may take")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants run at once (default: cores)")
    options = parser.parse_args()
    mutants = read_mutants()
    if options.names:
        unknown = sorted(set(options.names) - {mutant.name for mutant in mutants})
        if unknown:
            raise SystemExit(f"no mutants named {unknown}: scripts/mutants.py --list lists them")
        mutants = [mutant for mutant in mutants if mutant.name in options.names]
    if options.list:
        for mutant in mutants:
            print(f"{mutant.group:<18}{mutant.name:<45}{mutant.bug}")
        return
    if problems := [f"{mutant.name}: {why}" for mutant in mutants if (why := stale(mutant))]:
        raise SystemExit("stale mutants (the code moved on):\n  " + "\n  ".join(problems))
    free = [working_copy(number) for number in range(max(1, options.jobs))]  # a copy a job: mutants do not meet
    done = []

    def one(mutant: Mutant) -> tuple[Mutant, str]:
        copy = free.pop()
        try:
            status, seconds = run(mutant, copy, options.timeout)
        finally:
            free.append(copy)
        done.append(mutant)
        print(f"[{len(done)}/{len(mutants)}] {mutant.name}: {status} ({seconds:.0f} s)", flush=True)
        return mutant, status

    with ThreadPoolExecutor(len(free)) as pool:
        results = list(pool.map(one, mutants))
    report(results)
    WORK.mkdir(parents=True, exist_ok=True)
    rows = [{"name": mutant.name, "group": mutant.group, "status": status} for mutant, status in results]
    (WORK / "results.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
