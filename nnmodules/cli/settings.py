"""A run's settings compared by meaning: what a study's trials, or a cross-validation's folds, must share."""

from __future__ import annotations

import json
from typing import Any

from nnmodules.callbacks.record import settings_by_key
from nnmodules.cli.lightning_cli import LitCLI


def settings_of(run: LitCLI) -> dict[str, Any]:
    """A run's whole config by dotted key, but for how it shows itself: what a study's trials must share.

    Compared by meaning: options in another order, `--x=1` for `--x 1`, a recipe's name for its file, a path
    relative to another folder are the same settings (`callbacks.record.settings_by_key`).
    """
    return settings_by_key(run.config_text)


def differences_of(before: dict[str, Any], now: dict[str, Any]) -> str:
    """The settings that differ, as options: up to four, and how many more."""
    keys = [key for key in sorted({*before, *now}) if before.get(key) != now.get(key)]
    shown = [f"--{key} {json.dumps(before.get(key))} there, {json.dumps(now.get(key))} here" for key in keys[:4]]
    return "; ".join(shown) + (f"; and {len(keys) - 4} more" if len(keys) > 4 else "")
