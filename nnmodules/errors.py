"""What the command line says when a user's input is wrong: one plain message, no traceback.

A usage error (an unknown class, a value of the wrong type, a missing config file)
ends in `error: ...` and exit status 2, with "did you mean ...?" for a misspelt class;
a mistake found later, before training (a missing file, a table without its target
column, a checkpoint of another model), in `error: ...` and status 1. Errors that
are not a user's (a bug, a crash inside a network) keep their traceback, and
`LITMODULES_DEBUG=1` shows it for every error.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import warnings
from typing import Any, NoReturn

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningArgumentParser

DEBUG = "LITMODULES_DEBUG"
# what the project and Lightning raise for a user's input: files, tables, checkpoints, settings
USER_MISTAKES = (ValueError, FileNotFoundError, FileExistsError, MisconfigurationException)


def debugging() -> bool:
    """Whether `LITMODULES_DEBUG` asks for tracebacks."""
    return os.environ.get(DEBUG, "") not in ("", "0")


def fail(message: str, status: int) -> NoReturn:
    """Ends the command with `error: message` on stderr."""
    sys.stderr.write(f"error: {message}\n")
    sys.exit(status)


class LitArgumentParser(LightningArgumentParser):
    """LightningCLI's parser, whose errors are one plain message.

    Not the usage and the parser's own account of every type it tried.
    """

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or debugging():  # jsonargparse is trying alternatives, or the user asked
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self  # where the error is, as jsonargparse finds it
        command = ["litmodules", *parser.prog.replace(" [options]", "").split()[1:], "--help"]
        if unknown := re.match(r"unrecognized arguments: (--[\w.]+)", message):
            options = [option for action in parser._actions for option in action.option_strings]
            close = difflib.get_close_matches(unknown.group(1), options, n=2, cutoff=0.6)
            message = f"no option {unknown.group(1)}." + (f" Did you mean {' or '.join(close)}?" if close else "")
        fail(f"{plain_usage_error(message)}\n({' '.join(command)} lists the options)", 2)


def plain_usage_error(message: str) -> str:
    """Jsonargparse's error message, shortened to what went wrong, for the option given."""
    found = re.match(r'Parser key "([^"]+)":\s*(.*)', message, re.DOTALL)
    if found is None:  # a class's own check, raised while jsonargparse built it, or no option to name
        reasons = re.findall(r"^\s*- (?!Expected an? <class)(.*)$", message, re.MULTILINE)
        return reasons[0] if "Union subtypes" in message and reasons else _one_line(message)
    key, account = found.groups()
    given = re.search(r"^\s*Given value: (.*)$", account, re.MULTILINE)
    if re.search(r"Expected a dot import path string|Expected a path but", account) and given:
        return unknown_class(key, given.group(1), _base_classes(account))
    problem = re.search(r"Problem with given class_path '([^']+)':\s*(.*?)\n\s*- ", account + "\n  - ", re.DOTALL)
    if problem:
        class_path, text = problem.groups()
        if inner := re.match(r'Parser key "([^"]+)"', text):  # one of the class's arguments
            return plain_usage_error(text.replace(inner.group(0), f'Parser key "{key}.{inner.group(1)}"', 1))
        if option := re.match(r"Option '(\w+)' is not accepted", text):
            return unknown_argument(key, option.group(1), _import(class_path))
        return f"--{key}: {_one_line(text)}"
    expected = re.findall(r"Expected an? <class '([\w.]+)'>", account)
    expected = [name for name in expected if name != "NoneType"]
    if expected and given:
        return f"--{key} {given.group(1)}: expected {' or '.join(expected)}"
    if got := re.search(r"Expected an? <class '([\w.]+)'>\. Got value: (.*)", account):
        return f"--{key} {got.group(2)}: expected {got.group(1)}"
    return f"--{key}: {_one_line(account)}"


def unknown_class(key: str, name: str, bases: list[type]) -> str:
    """An option's class that does not import: the closest known name, and the known ones."""
    module = name.rpartition(".")[0]
    if module and _import(module) is None and importlib.util.find_spec(module.partition(".")[0]) is None:
        return f"--{key} {name}: no module {module!r} here: run from the folder that holds it, or install it"
    known = sorted({cls.__name__ for base in bases for cls in public_subclasses(base) if cls is not base})
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    guess = f" Did you mean {close[0]}?" if close else ""
    listed = f" Known: {', '.join(known)}." if known and len(known) <= 20 else ""
    return f"--{key} {name}: no such class.{guess}{listed} (Or give its import path: my_module.MyClass.)"


def unknown_argument(key: str, name: str, cls: Any) -> str:
    """An argument the option's class does not take: the closest it takes."""
    taken = [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")] if cls else []
    close = difflib.get_close_matches(name, taken, n=1, cutoff=0.6)
    guess = f" Did you mean {close[0]}?" if close else ""
    return f"--{key}.{name}: {getattr(cls, '__name__', 'the class')} takes no argument {name!r}.{guess}"


def public_subclasses(base: type) -> list[type]:
    """The classes one can name for `base`, as jsonargparse lists them in `--help`: imported, concrete, public."""
    found, stack = [], [base]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        path = f"{cls.__module__}.{cls.__qualname__}"
        lazy = cls.__name__.startswith("LazyInstance_")  # jsonargparse's stand-in for a default given lazily
        if not (inspect.isabstract(cls) or "._" in path or "<locals>" in path or lazy or cls in found):
            found.append(cls)
    return found


def _base_classes(account: str) -> list[type]:
    """The classes named in jsonargparse's "Subtypes: [...]" line (not None, not containers)."""
    subtypes = re.search(r"Subtypes: \[(.*)\]", account)
    names = re.findall(r"<class '([\w.]+)'>", subtypes.group(1)) if subtypes else []
    classes = [_import(name) for name in names]
    return [cls for cls in classes if isinstance(cls, type) and cls.__module__ != "builtins"]


def _import(path: str) -> Any:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def run_plainly(command: Any) -> None:
    """Runs `command()`; a user's mistake ends it with its message alone (status 1).

    Warnings are a line each; `LITMODULES_DEBUG=1` keeps tracebacks and Python's warning format.
    """
    formatwarning = warnings.formatwarning
    if not debugging():
        warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"
    try:
        command()
    except USER_MISTAKES as error:
        if debugging():
            raise
        fail(f"{plain_usage_error(str(error))}\n({DEBUG}=1 shows where it was raised)", 1)
    finally:
        warnings.formatwarning = formatwarning
