"""A run's settings compared by meaning: what a study's trials, or a cross-validation's folds, must share."""

from __future__ import annotations

import json
from typing import Any

import yaml

from nnmodules.cli.lightning_cli import LitCLI

DISPLAY = (  # how a run shows itself and where it writes: the runs of a study or of folds may differ in them
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.default_root_dir",
    "trainer.logger.init_args.version",
    "checkpoint.dirpath",
    "ckpt_path",
)


def settings_of(run: LitCLI) -> dict[str, Any]:
    """A run's whole config by dotted key, but for `DISPLAY`: what a study's trials must share, compared by meaning.

    Options in another order, `--x=1` for `--x 1`, a recipe's name for its file, a path relative to another
    folder: the same settings.
    """
    flat: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict) and value:
            for name, item in value.items():
                walk(item, f"{key}.{name}" if key else str(name))
        elif not key.startswith(DISPLAY):
            flat[key] = value

    walk(yaml.safe_load(run.config_text), "")
    return flat


def differences_of(before: dict[str, Any], now: dict[str, Any]) -> str:
    """The settings that differ, as options: up to four, and how many more."""
    keys = [key for key in sorted({*before, *now}) if before.get(key) != now.get(key)]
    shown = [f"--{key} {json.dumps(before.get(key))} there, {json.dumps(now.get(key))} here" for key in keys[:4]]
    return "; ".join(shown) + (f"; and {len(keys) - 4} more" if len(keys) > 4 else "")
