"""One check for an argument typed as a `Literal` of choices, for the callers LightningCLI does not check."""

from __future__ import annotations

from typing import Any, get_args

from datamodules.errors import UserError


def check_choice(name: str, value: Any, choices: Any) -> None:
    """Refuses `value` for the argument `name` unless it is one of the `Literal` type `choices`."""
    allowed = get_args(choices)
    if value not in allowed:
        listed = " or ".join([", ".join(map(repr, allowed[:-1])), repr(allowed[-1])] if len(allowed) > 1 else allowed)
        raise UserError(f"{name} must be {listed}, got {value!r}")
