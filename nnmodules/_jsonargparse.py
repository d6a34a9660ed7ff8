"""Everything that depends on jsonargparse's wording or internals, in one place: each says why, and has a guard test.

Checked on jsonargparse 4.53 (pyproject.toml asks for 4.49 or newer); the guard tests
(tests/test_jsonargparse_guards.py) fail naming the function here when jsonargparse changes what it relies on.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import re
import textwrap
from typing import Any

from jsonargparse._instantiation import call_without_instantiate_context


def deferred_class(factory: Any) -> tuple[type, dict[str, Any]] | None:
    """The class and given arguments of the callable jsonargparse makes for a class left without its required ones.

    A parameter typed `Callable[..., nn.Module]` given `class_path` and `init_args` that leave out a required
    argument (a network's `num_classes`, which the data gives) is parsed into this callable; the model calls
    it with the data's widths. None for any other object.

    Why private: jsonargparse hands out `functools.partial(call_without_instantiate_context, instantiator,
    class, **init_args)` and documents only that it is callable.
    """
    if not isinstance(factory, functools.partial) or factory.func is not call_without_instantiate_context:
        return None
    *_, cls = factory.args
    return (cls, dict(factory.keywords)) if inspect.isclass(cls) else None


def raised_inside(error: BaseException) -> BaseException | None:
    """The exception a class raised while jsonargparse built it, or None.

    Why private: jsonargparse raises a ValueError of its own ("Does not validate against any of the Union
    subtypes ...") for a class whose `__init__` refused its arguments, with that refusal as its `__cause__`.
    """
    return error.__cause__ if isinstance(error, ValueError) else None


def options_of(parser: Any) -> list[str]:
    """Every option string a parser takes (`--trainer.max_epochs`, ...), to find the closest to a mistyped one.

    Why private: argparse keeps its actions in `_actions`; jsonargparse's parsers are argparse's.
    """
    return [option for action in parser._actions for option in action.option_strings]


@dataclasses.dataclass
class Complaint:
    """What a jsonargparse error message says, read: the option at fault and what is wrong with it.

    `kind` is "unknown class" (`name` does not import as one of `bases`), "unknown argument" (the class of
    `class_path` takes no argument `name`), "wrong type" (`given` is none of `expected`) or "other" (`text`).
    """

    kind: str
    key: str | None = None
    name: str = ""
    class_path: str = ""
    bases: list[str] = dataclasses.field(default_factory=list)
    given: str = ""
    expected: list[str] = dataclasses.field(default_factory=list)
    text: str = ""


def read_complaint(message: str) -> Complaint:
    """Reads a jsonargparse error message.

    Why private: jsonargparse's messages are prose ("Parser key ...: Problem with given class_path ...", indented
    causes, "Given value: ..."), not structured errors; this reads that prose.
    """
    found = re.match(r'Parser key "([^"]+)":\s*(.*)', message, re.DOTALL)
    if found is None:  # a class's own check, raised while jsonargparse built it, or no option to name
        reasons = re.findall(r"^\s*- (?!Expected an? <class)(.*)$", message, re.MULTILINE)
        return Complaint("other", text=reasons[0] if "Union subtypes" in message and reasons else one_line(message))
    key, account = found.groups()
    given = re.search(r"^\s*Given value: (.*)$", account, re.MULTILINE)
    if problem := _class_problem(account):  # first: a class's own argument may be the one at fault (--model.net)
        class_path, text = problem
        if re.match(r"(module '[\w.]+' has no attribute|No module named) ", text):  # no such class
            subtypes = re.search(r"Subtypes: \[(.*)\]", account)
            bases = re.findall(r"<class '([\w.]+)'>", subtypes.group(1)) if subtypes else []
            return Complaint("unknown class", key, name=class_path, class_path=class_path, bases=bases)
        if inner := re.match(r'Parser key "([^"]+)"', text):  # one of the class's arguments
            return read_complaint(text.replace(inner.group(0), f'Parser key "{key}.{inner.group(1)}"', 1))
        if option := re.match(r"Option '(\w+)' is not accepted", text):
            return Complaint("unknown argument", key, name=option.group(1), class_path=class_path)
        return Complaint("other", key, class_path=class_path, text=one_line(text))
    if ambiguous := re.search(r"Multiple subclasses with name \w+\. Give the full class path[^\n]*", account):
        return Complaint("other", key, text=ambiguous.group(0))
    if re.search(r"Expected a dot import path string|Expected a path but", account) and given:
        subtypes = re.search(r"Subtypes: \[(.*)\]", account)
        bases = re.findall(r"<class '([\w.]+)'>", subtypes.group(1)) if subtypes else []
        return Complaint("unknown class", key, name=given.group(1), bases=bases)
    expected = [name for name in re.findall(r"Expected an? <class '([\w.]+)'>", account) if name != "NoneType"]
    if expected and given:
        return Complaint("wrong type", key, given=given.group(1), expected=expected)
    if got := re.search(r"Expected an? <class '([\w.]+)'>\. Got value: (.*)", account):
        return Complaint("wrong type", key, given=got.group(2), expected=[got.group(1)])
    return Complaint("other", key, text=one_line(account))


def _class_problem(account: str) -> tuple[str, str] | None:
    """The first "Problem with given class_path 'x':" of an account, and its cause: the lines indented under it."""
    found = re.search(r"Problem with given class_path '([^']+)':[ \t]*(.*)", account, re.DOTALL)
    if found is None:
        return None
    class_path, rest = found.groups()
    line_start = account.rfind("\n", 0, found.start()) + 1
    depth = _indent(account[line_start:]) + 1  # the cause is indented deeper than its "- Problem ..." line
    first, *lines = rest.split("\n")
    cause = [first, *itertools.takewhile(lambda line: not line.strip() or _indent(line) >= depth, lines)]
    return class_path, textwrap.dedent("\n".join(cause)).strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def unrecognized_option(message: str) -> str | None:
    """The option named by jsonargparse's "unrecognized arguments: --x ..." message, or None.

    Why private: the message is prose.
    """
    found = re.match(r"unrecognized arguments: (--[\w.]+)", message)
    return found.group(1) if found else None


def public_subclasses(base: type) -> list[type]:
    """The classes one can name for `base`, as jsonargparse lists them in `--help`: imported, concrete, public.

    Why private: jsonargparse's own rules (no abstract class, no private module, no `LazyInstance_` stand-in)
    are not exposed.
    """
    found, stack = [], [base]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        path = f"{cls.__module__}.{cls.__qualname__}"
        lazy = cls.__name__.startswith("LazyInstance_")  # jsonargparse's stand-in for a default given lazily
        if not (inspect.isabstract(cls) or "._" in path or "<locals>" in path or lazy or cls in found):
            found.append(cls)
    return found


def one_line(text: str) -> str:
    """A message of several lines as one."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
