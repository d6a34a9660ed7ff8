"""The repository's own realistic mutants (tests/mutants/, run by scripts/mutants.py) still apply to the code."""

from __future__ import annotations

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import mutants  # noqa: E402  (a script, not a package)


def test_every_mutant_changes_code_that_is_there_once_and_names_test_files_that_exist():
    found = mutants.read_mutants()
    assert len(found) >= 60
    assert [f"{mutant.name}: {why}" for mutant in found if (why := mutants.stale(mutant))] == []
