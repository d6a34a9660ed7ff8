"""Objects that keep the arguments they were built with, and class paths: how a checkpoint builds them again.

`KeepsArguments` reads a call's arguments from the call itself: the class's `__init__` signature bound to
what was passed, before `__init__` runs. Models, data modules and the project's networks keep theirs so, and
a checkpoint holds them as LightningCLI writes a class: `{"class_path": ..., "init_args": {...}}`.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any


class KeepsArguments:
    """Keeps the arguments of the call that built it in `init_args`: each parameter of `__init__`, defaults included.

    Those given as `**kwargs` are kept by their own names. A mixin, placed before the framework's base class.
    """

    init_args: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = super().__new__(cls)
        signature = inspect.signature(cls.__init__)
        try:
            bound = signature.bind(instance, *args, **kwargs)
        except TypeError:  # the call is wrong (`__init__` says how), or a copy is being made (its state follows)
            return instance
        bound.apply_defaults()
        arguments: dict[str, Any] = {}
        for name, value in list(bound.arguments.items())[1:]:  # not `self`
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            elif kind is not inspect.Parameter.VAR_POSITIONAL:
                arguments[name] = value
        object.__setattr__(instance, "init_args", arguments)  # before nn.Module's own attributes exist
        return instance

    def init_config(self) -> dict[str, Any]:
        """The class and arguments that build this object again, as LightningCLI writes them."""
        return {"class_path": class_path(type(self)), "init_args": dict(self.init_args)}


def class_path(cls: type) -> str:
    """The import path of a class: the shortest that gives it (`nnmodules.MLP`, as jsonargparse writes it)."""
    parts = cls.__module__.split(".")
    for end in range(1, len(parts)):
        module = ".".join(parts[:end])
        try:
            if getattr(importlib.import_module(module), cls.__qualname__, None) is cls:
                return f"{module}.{cls.__qualname__}"
        except ImportError:
            break
    return f"{cls.__module__}.{cls.__qualname__}"


def import_class(path: str) -> Any:
    """The object a class path names (`package.module.Name`)."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def plain(value: Any) -> Any:
    """Tuples as lists, all the way down: what YAML (a run's config.yaml, hparams.yaml) writes plainly."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return [plain(item) for item in value] if isinstance(value, (list, tuple)) else value
