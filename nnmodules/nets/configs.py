"""A model's network as a checkpoint keeps it (`class_path`, `init_args`), and a network built for its data.

A network reaches a model in one of three forms:

- a builder: a class, a `functools.partial` of one, the callable jsonargparse makes from a config that leaves
  out the data's widths, or any callable. The model calls it with the widths it names that it was not given
  (`WIDTHS`: the data's, from `DataFacts.widths`), and keeps its class and arguments.
- an object: kept by its class and arguments, which the project's networks record as they are built
  (`KeepsArguments`); another object's are read from its attributes of the same names (`self.width = width`)
  and checked by building it again on the meta device.
- a config, as a checkpoint holds it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

from datamodules.arguments import KeepsArguments, class_path, import_class, plain
from datamodules.errors import UserError
from nnmodules._jsonargparse import deferred_class

WIDTHS = ("input_dim", "num_classes", "output_dim", "in_channels", "image_size", "numeric_features")  # the data's


class NetworkBuilder(Protocol):
    """What builds a network given the data's widths by name, as a model calls it (a class, a partial of one...).

    The type of a model's `net`: from YAML, a network's `class_path` and `init_args` that leave the widths out are
    parsed (by jsonargparse) into such a builder, the widths filled when the model knows its data.
    """

    def __call__(
        self,
        *,
        input_dim: int,
        num_classes: int,
        output_dim: int,
        in_channels: int,
        image_size: int,
        numeric_features: int,
    ) -> nn.Module: ...


PLAIN = (bool, int, float, str, type(None))  # what a checkpoint's arguments may be made of
FIX = (
    "give the network's class instead, Classifier(net=MyNet) (the data fills its widths), or "
    "functools.partial(MyNet, width=64); or keep each argument as an attribute of the same name (self.width = width)"
)


@dataclasses.dataclass
class Builder:
    """A network not built yet: what builds it, the arguments given, and the class it builds where known."""

    make: Callable[..., nn.Module]
    given: dict[str, Any]
    cls: type | None

    def parameters(self) -> list[str]:
        """The names of the arguments `make` takes (a class's `__init__` arguments)."""
        signature = inspect.signature(self.cls or self.make)
        return [name for name, p in signature.parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def missing_widths(self) -> list[str]:
        """The data's widths it takes and was not given (or given as None)."""
        return [name for name in self.parameters() if name in WIDTHS and self.given.get(name) is None]

    def build(self, widths: dict[str, int]) -> tuple[nn.Module, dict[str, Any]]:
        """The network, with its missing widths from `widths`, and its config; widths given are checked first."""
        for name in self.parameters():
            given, known = self.given.get(name), widths.get(name)
            if name in WIDTHS and given is not None and known is not None and given != known:
                raise UserError(
                    f"the network's {name}={given} but the data gives {known}: leave {name} out, and the data "
                    f"fills it, or give {name}={known}"
                )
        if unknown := [name for name in self.missing_widths() if name not in widths]:
            raise UserError(
                f"the network ({self.name}) needs {', '.join(unknown)}: give them, or train it on a data module "
                "that publishes them (datamodules.contract.DataFacts)"
            )
        arguments = {**self.given, **{name: widths[name] for name in self.missing_widths()}}
        try:
            net = self.make(**arguments)
        except TypeError as error:  # an argument the class does not take, or one missing
            raise UserError(f"the network ({self.name}) cannot be built with {sorted(arguments)}: {error}") from error
        path = class_path(self.cls) if self.cls is not None else _function_path(self.make)
        return net, {"class_path": path, "init_args": arguments}

    @property
    def name(self) -> str:
        return getattr(self.cls or self.make, "__name__", type(self.make).__name__)


def builder_of(net: Any) -> Builder | None:
    """`net` as a builder (see the module), or None when it is a network built already."""
    if isinstance(net, nn.Module):
        return None
    if isinstance(net, dict) and "class_path" in net:  # a checkpoint's config
        cls = load_class(net["class_path"])
        return Builder(cls, dict(net.get("init_args") or {}), cls if inspect.isclass(cls) else None)
    if deferred := deferred_class(net):  # a config from the command line, without the data's widths
        return Builder(deferred[0], deferred[1], deferred[0])
    if isinstance(net, functools.partial) and not net.args:
        return Builder(net.func, dict(net.keywords), net.func if inspect.isclass(net.func) else None)
    if inspect.isclass(net) and issubclass(net, nn.Module):
        return Builder(net, {}, net)
    if callable(net):
        return Builder(net, {}, None)
    raise UserError(f"net must be a torch.nn.Module, a class of one or a callable that builds one, got {net!r}")


def object_config(net: nn.Module) -> dict[str, Any]:
    """How a checkpoint builds a network given as an object again (see the module).

    Raises:
        UserError: why no checkpoint could, and what would.
    """
    if isinstance(net, KeepsArguments):
        return net.init_config()
    cls = type(net)
    path, init_args = class_path(cls), {}
    for name, parameter in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise UserError(f"{path} takes *{name}, whose values cannot be read back from the network: {FIX}")
        if name in vars(net):
            init_args[name] = vars(net)[name]
        elif parameter.default is parameter.empty:
            raise UserError(f"{path} keeps no attribute {name!r} for its argument of that name: {FIX}")
    config = {"class_path": path, "init_args": plain(init_args)}  # tuples as lists, as YAML and the CLI write them
    refuse_unsaveable(config)
    try:
        with torch.device("meta"):  # no memory: only the parameters' names and shapes are compared
            rebuilt = build_from_config(config)
    except Exception as error:
        raise UserError(f"{path}({_arguments(init_args)}) cannot be built again ({error}): {FIX}") from error
    if _shapes(rebuilt) != _shapes(net):
        raise UserError(f"{path}({_arguments(init_args)}) builds another network than the one given: {FIX}")
    return config


def refuse_unsaveable(config: dict[str, Any]) -> None:
    """Refuses a config no checkpoint could build again: a class inside a function, arguments that are not data."""
    path = config["class_path"]
    if "<locals>" in path:
        raise UserError(f"{path} is defined in a function, where no checkpoint can import it: define it in a module")
    for name, value in config["init_args"].items():
        if not _plain(value):
            raise UserError(f"{path}'s {name} is a {type(value).__name__}, not plain data a checkpoint holds: {FIX}")


def of_main(config: dict[str, Any] | None) -> bool:
    """Whether a config's class lives in `__main__`: a script or notebook, which another program cannot import."""
    return config is not None and config["class_path"].startswith("__main__.")


def load_class(path: str) -> Any:
    """The class (or function) a config names; one line when it cannot be imported."""
    try:
        return import_class(path)
    except (ImportError, AttributeError, ValueError) as error:
        if path.startswith("__main__."):
            raise UserError(
                f"the network is {path}, a class of the script or notebook that trained it: define it (or import it) "
                "before loading, or move it into a module (my_nets.py) and train again to load it anywhere"
            ) from error
        raise UserError(f"the network's class {path} does not import ({error}): install its module") from error


def build_from_config(config: dict[str, Any]) -> nn.Module:
    """A network from its config, as a checkpoint holds it."""
    return load_class(config["class_path"])(**(config.get("init_args") or {}))


def _function_path(make: Callable[..., nn.Module]) -> str:
    module, name = getattr(make, "__module__", None), getattr(make, "__qualname__", None)
    if not module or not name:
        raise UserError(f"the network's builder {make!r} has no import path a checkpoint could keep: {FIX}")
    return f"{module}.{name}"


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return isinstance(value, PLAIN)


def _shapes(net: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(tensor.shape)) for name, tensor in net.state_dict().items()]


def _arguments(init_args: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in init_args.items())
