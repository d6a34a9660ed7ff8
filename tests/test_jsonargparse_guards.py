"""Guards: what nnmodules/_jsonargparse.py reads of jsonargparse still means what it meant.

One test per function there, on jsonargparse's own parsers and messages; each fails naming the function.
"""

from __future__ import annotations

import pytest
from jsonargparse import ArgumentParser
from torch import nn

from datamodules.errors import UserError
from nnmodules import MLP
from nnmodules._jsonargparse import (
    deferred_class,
    options_of,
    public_subclasses,
    raised_inside,
    read_complaint,
    unrecognized_option,
)
from nnmodules.nets.configs import NetworkBuilder


class Refuses(nn.Module):
    def __init__(self, width: int = 1) -> None:
        super().__init__()
        if width < 1:
            raise UserError("width must be at least 1")


class _Hidden(nn.Module):
    """A private class: jsonargparse does not list it."""


def parser() -> ArgumentParser:
    found = ArgumentParser(exit_on_error=False)
    found.add_argument("--net", type=NetworkBuilder | nn.Module | None)
    found.add_argument("--epochs", type=int, default=1)
    return found


def error_of(args: list[str]) -> Exception:
    with pytest.raises(Exception) as raised:  # noqa: PT011  (jsonargparse's own types, whatever they are)
        parser().parse_args(args)
    return raised.value


def test_guard_deferred_class():
    config = parser().parse_args(["--net", '{"class_path": "nnmodules.MLP", "init_args": {"hidden_dims": [4]}}'])
    factory = parser().instantiate_classes(config).net
    cls, arguments = deferred_class(factory) or (None, {})
    assert cls is MLP and arguments["hidden_dims"] == [4], f"jsonargparse's builder changed: {factory!r}"
    assert deferred_class(MLP) is None and deferred_class(lambda: None) is None


def test_guard_raised_inside():
    modules = ArgumentParser(exit_on_error=False)
    modules.add_argument("--net", type=nn.Module | None)  # as LightningCLI's --model: one of a union
    config = modules.parse_args(["--net", f"{__name__}.Refuses", "--net.width", "0"])
    with pytest.raises(ValueError) as raised:  # noqa: PT011  (jsonargparse's own)
        modules.instantiate_classes(config)
    error = raised.value
    assert isinstance(raised_inside(error), UserError), f"jsonargparse no longer keeps the cause: {error!r}"


def test_guard_options_of():
    assert {"--net", "--epochs", "--help"} <= set(options_of(parser())), "see options_of"


@pytest.mark.parametrize(
    ("args", "kind", "read"),
    [
        (["--net", "nnmodules.MPL"], "unknown class", {"key": "net", "name": "nnmodules.MPL"}),
        (["--net", "nnmodules.MLP", "--net.widht", "3"], "unknown argument", {"key": "net", "name": "widht"}),
        (["--epochs", "many"], "wrong type", {"key": "epochs", "given": "many", "expected": ["int"]}),
    ],
    ids=["unknown class", "unknown argument", "wrong type"],
)
def test_guard_read_complaint(args, kind, read):
    complaint = read_complaint(str(error_of(args)))
    assert complaint.kind == kind, f"jsonargparse's wording changed (see read_complaint): {error_of(args)}"
    assert {name: getattr(complaint, name) for name in read} == read


def test_guard_read_complaint_of_a_class_inside_a_class():
    nested = ArgumentParser(exit_on_error=False)
    nested.add_argument("--model", type=nn.Module)
    error = str(_nested_error(nested))
    complaint = read_complaint(error)
    assert (complaint.key, complaint.class_path) == ("model.net", "__main__.Gone"), f"see read_complaint: {error}"


def _nested_error(nested: ArgumentParser) -> Exception:
    config = {"class_path": "nnmodules.Classifier", "init_args": {"net": {"class_path": "__main__.Gone"}}}
    with pytest.raises(Exception) as raised:  # noqa: PT011
        nested.parse_object({"model": config})
    return raised.value


def test_guard_unrecognized_option():
    assert unrecognized_option(str(error_of(["--epohcs", "3"]))) == "--epohcs", "see unrecognized_option"


def test_guard_public_subclasses():
    found = public_subclasses(nn.Module)
    assert Refuses in found and MLP in found and _Hidden not in found, "see public_subclasses"
