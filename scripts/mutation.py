"""`make mutation`: mutmut over the modules where a silent bug costs users most, each against its own tests.

    python scripts/mutation.py [MODULE ...] [--sample N] [--fresh] [--report]

Each module (a key of MODULES, e.g. `preprocess`) is mutated in its own copy of the working tree,
`build/mutation/<module>/`, where mutmut runs, for each mutant, those of the module's test files that
call the function it changed. A second run keeps the verdicts of functions and tests that did not change
and runs the mutants not checked yet; `--sample N` checks a seeded random sample of N mutants instead
(a module's whole run can take hours on a small machine); `--fresh` starts over. Either way the
survivors then run again with the tests as they are by then. Then it prints each module's kill rate,
over the mutants checked, and every survivor with its change.

Mutants listed in tests/mutation_equivalents.txt (one `name  reason` a line) change no behaviour a user
could see: they are left out of the kill rate and printed apart with their reasons.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from mutants import copy_of_the_working_tree  # a script beside this one

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.txt"
MUTMUT = [sys.executable, "-m", "mutmut"]

# module -> (its files, the in-process test files that exercise them; mutmut cannot follow a test into a
# subprocess, so tests/test_ddp.py and the command-line subprocess tests do not count)
MODULES = {
    "batches": (
        ["datamodules/batches/sampling.py", "datamodules/batches/loaders.py", "datamodules/batches/module.py"],
        ["tests/test_data.py", "tests/test_runs.py", "tests/test_lifecycle.py"],
    ),
    "files": (["datamodules/tabular/files.py"], ["tests/test_files.py", "tests/test_bad_input.py"]),
    "columns": (
        ["datamodules/tabular/columns.py"],
        ["tests/test_columns.py", "tests/test_tabular.py", "tests/test_bad_input.py"],
    ),
    "preprocess": (
        ["datamodules/tabular/preprocess.py"],
        ["tests/test_tabular.py", "tests/test_columns.py", "tests/test_bad_input.py"],
    ),
    "tabular": (
        ["datamodules/tabular/module.py", "datamodules/tabular/rows.py"],
        ["tests/test_tabular.py", "tests/test_bad_input.py", "tests/test_lifecycle.py"],
    ),
    "contract": (  # what the data tells the model, and what a checkpoint keeps of it
        ["datamodules/contract.py", "datamodules/arguments.py"],
        ["tests/test_boundaries.py", "tests/test_compatibility.py", "tests/test_networks.py", "tests/test_tasks.py"],
    ),
    "tasks": (  # losses, metrics, best so far; the epoch state of checkpoints and the settings of resumed runs
        ["nnmodules/tasks/task.py", "nnmodules/tasks/classifier.py", "nnmodules/tasks/regressor.py"]
        + ["nnmodules/tasks/resume.py", "nnmodules/nets/configs.py"],
        ["tests/test_tasks.py", "tests/test_networks.py", "tests/test_mlp.py", "tests/test_scratch.py"]
        + ["tests/test_regression.py", "tests/test_runs.py", "tests/test_lifecycle.py"],
    ),
    "checkpoints": (
        ["nnmodules/tasks/checkpoints.py", "nnmodules/runs/loading.py"],
        ["tests/test_runs.py", "tests/test_networks.py", "tests/test_lifecycle.py", "tests/test_compatibility.py"],
    ),
    "schedules": (["nnmodules/tasks/schedules.py"], ["tests/test_lifecycle.py"]),
    "runs": (
        ["nnmodules/runs/folders.py", "nnmodules/runs/trainer.py"],
        ["tests/test_runs.py", "tests/test_lifecycle.py", "tests/test_boundaries.py"],
    ),
    "callbacks": (  # (Compile's tests are in test_mlp.py)
        ["nnmodules/callbacks/interruption.py", "nnmodules/callbacks/record.py", "nnmodules/callbacks/folder.py"]
        + ["nnmodules/callbacks/predictions.py", "nnmodules/callbacks/hparams.py"],
        ["tests/test_runs.py", "tests/test_lifecycle.py", "tests/test_tensorboard.py", "tests/test_boundaries.py"],
    ),
}


def working_copy(module: str, fresh: bool) -> Path:
    """build/mutation/<module>: the working tree's files (committed or not), and pyproject.toml's mutmut settings
    with the module and its tests; mutmut's results of an earlier run stay unless `fresh`."""
    copy = ROOT / "build" / "mutation" / module
    if fresh:
        shutil.rmtree(copy, ignore_errors=True)
    copy_of_the_working_tree(copy)
    paths, tests = MODULES[module]
    settings = f"only_mutate = {paths!r}\npytest_add_cli_args_test_selection = {tests!r}\n".replace("'", '"')
    pyproject = (ROOT / "pyproject.toml").read_text().replace("[tool.mutmut]\n", "[tool.mutmut]\n" + settings)
    (copy / "pyproject.toml").write_text(pyproject)
    return copy


def results(copy: Path) -> dict[str, str]:
    """Every mutant's name and status, as `mutmut results --all true` prints them."""
    output = mutmut(copy, "results", "--all", "true").stdout
    return dict(re.findall(r"^\s*(\S+): (.+)$", output, re.MULTILINE))


def change(copy: Path, name: str) -> str:
    """The lines a mutant changes, from `mutmut show`."""
    diff = mutmut(copy, "show", name).stdout
    return "\n".join(line for line in diff.splitlines() if re.match(r"^[-+](?![-+])", line))


def mutmut(copy: Path, *args: str, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*MUTMUT, *args], cwd=copy, capture_output=capture, text=True)


def run(module: str, fresh: bool, sample: int | None) -> None:
    """The module's mutants not yet checked (or a seeded random `sample` of all its mutants), then, with the
    tests as they are by then, the earlier survivors again: mutmut keeps a verdict unless a mutant is named."""
    copy = working_copy(module, fresh)
    if sample is None:
        print(f"{module}: running the mutants not yet checked", flush=True)
        mutmut(copy, "run", capture=False)
    else:
        mutmut(copy, "run", "no.such.mutant")  # makes the mutants (or brings them up to date), then stops
        statuses = results(copy)
        chosen = random.Random(0).sample(sorted(statuses), min(sample, len(statuses)))
        unchecked = [name for name in chosen if statuses[name] == "not checked"]
        print(f"{module}: running {len(unchecked)} unchecked of a sample of {len(chosen)} mutants", flush=True)
        if unchecked:
            mutmut(copy, "run", *unchecked, capture=False)
    copy = working_copy(module, fresh=False)
    survivors = [name for name, status in results(copy).items() if status not in ("killed", "not checked")]
    survivors = [name for name in survivors if name not in equivalents()]
    if survivors:
        print(f"{module}: running the {len(survivors)} survivors again, with the tests as they are now", flush=True)
        mutmut(copy, "run", *survivors, capture=False)


def equivalents() -> dict[str, str]:
    found = {}
    for line in EQUIVALENTS.read_text().splitlines() if EQUIVALENTS.is_file() else []:
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            found[name] = reason.strip()
    return found


def report(modules: list[str]) -> None:
    """The kill rate of each module (equivalent mutants left out), then every survivor with its change."""
    equivalent = equivalents()
    columns = ("mutants", 8), ("killed", 7), ("timeout", 8), ("equivalent", 11), ("other", 6), ("kill rate", 10)
    print(f"\n{'module':12} " + " ".join(f"{name:>{width}}" for name, width in columns))
    survivors = []
    for module in modules:
        copy = ROOT / "build" / "mutation" / module
        statuses = results(copy) if (copy / "mutants").is_dir() else {}
        counts = Counter("equivalent" if name in equivalent else status for name, status in statuses.items())
        counted = sum(counts.values()) - counts["equivalent"] - counts["not checked"]
        caught = counts["killed"] + counts["timeout"]  # a mutant the tests hang on fails a CI run as well
        rate = f"{caught / counted:10.1%}" if counted else f"{'-':>10}"
        unchecked = f"  ({counts['not checked']} not checked)" if counts["not checked"] else ""
        print(
            f"{module:12} {sum(counts.values()):8} {counts['killed']:7} {counts['timeout']:8} "
            f"{counts['equivalent']:11} {counted - caught:6} {rate}{unchecked}"
        )
        survivors += [
            (copy, name, status)
            for name, status in sorted(statuses.items())
            if status not in ("killed", "timeout", "not checked") and name not in equivalent
        ]
    for copy, name, status in survivors:
        print(f"\n{status}: {name}\n{change(copy, name)}")
    prefixes = tuple(path.removesuffix(".py").replace("/", ".") for module in modules for path in MODULES[module][0])
    for name, reason in equivalent.items():
        if name.startswith(prefixes):
            print(f"\nequivalent: {name}: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help=f"some of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument("--report", action="store_true", help="only print the figures of earlier runs")
    parser.add_argument("--sample", type=int, help="check a seeded random sample of this many mutants per module")
    options = parser.parse_args()
    modules = options.modules or list(MODULES)
    if unknown := [module for module in modules if module not in MODULES]:
        parser.error(f"no module {', '.join(unknown)}: choose from {', '.join(MODULES)}")
    if not options.report:
        for module in modules:
            run(module, options.fresh, options.sample)
    report(modules)


if __name__ == "__main__":
    main()
