"""What the command line says when a user's input is wrong: one plain message, no traceback; all else in full.

A usage error (an unknown class, a value of the wrong type, a missing config file) ends in `error: ...` and
exit status 2, with "did you mean ...?" for a misspelt class or option; a user's mistake found later, before
training (`datamodules.errors.UserError`: a missing file, a table without its target column, a checkpoint of
another model; or Lightning's `MisconfigurationException`, its own word for a Trainer set up wrong), in
`error: ...` and status 1. Any other exception, a bug's or a crash inside a network, keeps its traceback;
`LITMODULES_DEBUG=1` shows it for every error. An interrupted fit ends with its one line and 130 or 143.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any, NoReturn

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningArgumentParser

from datamodules.errors import UserError
from nnmodules._jsonargparse import (
    Complaint,
    one_line,
    options_of,
    public_subclasses,
    read_complaint,
    unrecognized_option,
)
from nnmodules.callbacks import RunInterrupted
from nnmodules.nets.configs import load_class

DEBUG = "LITMODULES_DEBUG"
USER_MISTAKES = (UserError, MisconfigurationException)  # what ends in one line, with status 1


def debugging() -> bool:
    """Whether `LITMODULES_DEBUG` asks for tracebacks."""
    return os.environ.get(DEBUG, "") not in ("", "0")


def fail(message: str, status: int) -> NoReturn:
    """Ends the command with `error: message` on stderr."""
    sys.stderr.write(f"error: {message}\n")
    sys.exit(status)


class LitArgumentParser(LightningArgumentParser):
    """LightningCLI's parser, whose errors are one plain message, not the usage and every type it tried."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or debugging():  # jsonargparse is trying alternatives, or the user asked
            super().error(message, ex)
        command = ["litmodules", *self.prog.replace(" [options]", "").split()[1:], "--help"]
        if unknown := unrecognized_option(message):
            close = difflib.get_close_matches(unknown, options_of(self), n=2, cutoff=0.6)
            message = f"no option {unknown}." + (f" Did you mean {' or '.join(close)}?" if close else "")
        fail(f"{plain_usage_error(message)}\n({' '.join(command)} lists the options)", 2)


def plain_usage_error(message: str) -> str:
    """Jsonargparse's error message, shortened to what went wrong, for the option given."""
    complaint = read_complaint(message)
    if complaint.kind == "unknown class":
        return unknown_class(complaint)
    if complaint.kind == "unknown argument":
        return unknown_argument(complaint)
    if complaint.class_path.startswith("__main__."):  # a class of the script that trained: only that script has it
        try:
            load_class(complaint.class_path)
        except UserError as error:
            return f"--{complaint.key}: {error}"
    if complaint.kind == "wrong type":
        return f"--{complaint.key} {complaint.given}: expected {' or '.join(complaint.expected)}"
    return f"--{complaint.key}: {complaint.text}" if complaint.key else complaint.text


def unknown_class(complaint: Complaint) -> str:
    """An option's class that does not import: the closest known name, and the known ones."""
    key, name = complaint.key, complaint.name
    module = name.rpartition(".")[0]
    if module and _import(module) is None and importlib.util.find_spec(module.partition(".")[0]) is None:
        return f"--{key} {name}: no module {module!r} here: run from the folder that holds it, or install it"
    bases = [cls for cls in map(_import, complaint.bases) if isinstance(cls, type) and cls.__module__ != "builtins"]
    known = sorted({cls.__name__ for base in bases for cls in public_subclasses(base) if cls is not base})
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    guess = f" Did you mean {close[0]}?" if close else ""
    listed = f" Known: {', '.join(known)}." if known and len(known) <= 20 else ""
    return f"--{key} {name}: no such class.{guess}{listed} (Or give its import path: my_module.MyClass.)"


def unknown_argument(complaint: Complaint) -> str:
    """An argument the option's class does not take: the closest it takes."""
    cls, name = _import(complaint.class_path), complaint.name
    taken = [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")] if cls else []
    close = difflib.get_close_matches(name, taken, n=1, cutoff=0.6)
    guess = f" Did you mean {close[0]}?" if close else ""
    return f"--{complaint.key}.{name}: {getattr(cls, '__name__', 'the class')} takes no argument {name!r}.{guess}"


def _import(path: str) -> Any:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def run_plainly(command: Callable[[], Any]) -> Any:
    """Runs `command()`; a user's mistake ends it with its message alone (status 1), an interrupted fit with its line.

    Warnings are a line each; `LITMODULES_DEBUG=1` keeps tracebacks and Python's warning format.
    """
    formatwarning = warnings.formatwarning
    if not debugging():
        warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"
    try:
        return command()
    except USER_MISTAKES as error:
        if debugging():
            raise
        fail(f"{plain_usage_error(str(error))}\n({DEBUG}=1 shows where it was raised)", 1)
    except RunInterrupted as stop:
        sys.stderr.write(f"{stop}\n")
        sys.exit(stop.code)
    finally:
        warnings.formatwarning = formatwarning


__all__ = ["DEBUG", "LitArgumentParser", "debugging", "fail", "one_line", "plain_usage_error", "run_plainly"]
