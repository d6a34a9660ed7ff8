"""How a model is built for its data: what it was not given, taken from the data's facts; what it was, checked.

A model is built (network, metrics) as soon as what it needs is known: in `__init__` from its arguments, or
when the Trainer sets it up, from its data's facts (`datamodules.contract.DataFacts`). What the data filled is
kept in its hyperparameters, with its network as a config, so that a checkpoint builds it again alone.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import nn

from datamodules.arguments import plain
from datamodules.batches import TensorDataModule
from datamodules.contract import DataFacts
from datamodules.errors import UserError
from nnmodules.nets.configs import Builder, object_config, of_main, refuse_unsaveable
from nnmodules.nets.ensemble import Ensemble

INPUT_WIDTHS = ("input_dim", "in_channels", "image_size")  # a network's widths of the data's inputs, by name


class BuiltForData(abc.ABC):
    """A model's building for its data: a mixin of `TaskModule`, before its LightningModule base.

    The model gives the task's arguments from the facts (`take_facts`), the widths its task decides
    (`task_widths`), its metrics (`make_metrics`), its outputs per example (`output_shape`) and the tasks of
    data it learns (`data_tasks`).
    """

    data_tasks: tuple[str, ...] = ()  # the data facts' tasks this model learns
    output_hint = ""  # how to build a network that gives `output_shape`
    builder: Builder | None  # a network to build; None: one given, or the model's own (`make_network`)
    net_config: dict[str, Any] | None  # how a checkpoint builds the network again
    from_data: dict[str, Any]  # the arguments the data filled
    init_args: dict[str, Any]
    net_given: bool  # a network given built already (an nn.Module), not one to build
    built: bool

    def take(self, name: str, given: Any, known: Any, default: Any = None) -> Any:
        """An argument the data knows: `given` (checked against the data's value `known`), else the data's.

        Without either, `default`. What the data filled is kept, for the hyperparameters.
        """
        if given is not None and known is not None and not _same(given, known):
            raise UserError(
                f"the model's {name}={_shown(given)} but the data gives {_shown(known)}: leave {name} out, "
                f"and the data fills it, or give {name}={_shown(known)}"
            )
        if given is None and known is not None:
            self.from_data[name] = known
            return known
        return given if given is not None else default

    def input_width(self, given: int | None, facts: DataFacts | None) -> int:
        """A network's `input_dim`: as given (checked against the data's features), else the data's."""
        input_dim = self.take("input_dim", given, None if facts is None else facts.num_features)
        if input_dim is None:
            raise UserError(
                f"{type(self).__name__} needs input_dim: give it, or train it on a data module of datamodules"
            )
        return input_dim

    def build_when_known(self) -> None:
        """Builds the model now if its arguments say all it needs (`can_build`); else the Trainer's setup will."""
        if self.can_build(None):
            self.build(None)

    def can_build(self, facts: DataFacts | None) -> bool:
        """Whether the model can be built with these facts (None: from its arguments alone)."""
        return self.builder is None or not self.builder.missing_widths() or facts is not None

    def build(self, facts: DataFacts | None) -> None:
        """Builds the task's arguments, network and metrics from the arguments and `facts`; records the result.

        Once: a model built already is left as it is (the Trainer's setup checks it against its data).
        """
        if self.built:
            return
        self.take_facts(facts)
        if not self.net_given:
            self.net = self.make_network(facts)
        self.net_config = self.net_config or self.network_config()
        self.make_metrics()
        self.record_hyperparameters()
        self.built = True

    def make_network(self, facts: DataFacts | None) -> nn.Module:
        """The network, from the builder given and the data's widths (presets build their own)."""
        widths = {} if facts is None else facts.widths()
        net, self.net_config = self.builder.build({**widths, **self.task_widths()})
        return net

    def task_widths(self) -> dict[str, int]:
        """The widths the task decides (outputs per example): they override the data's."""
        return {}

    def network_config(self) -> dict[str, Any] | None:
        """How a checkpoint builds the network given as an object; None for a preset (its arguments build it)."""
        if "net" not in self.init_args:
            return None
        try:
            return object_config(self.net)
        except UserError as why:
            self.unsaveable = str(why)
            return None

    unsaveable: str | None = None  # why no checkpoint could build the network, if so

    def record_hyperparameters(self) -> None:
        """The arguments as given, with what the data filled, and the network's config."""
        settings = {**self.init_args, **{k: v for k, v in self.from_data.items() if k in self.init_args}}
        if "net" in settings:
            if self.net_config is None:
                settings.pop("net")
            else:
                refuse_unsaveable(self.net_config)
                settings["net"] = self.net_config
        self.save_hyperparameters(plain(settings))

    @abc.abstractmethod
    def take_facts(self, facts: DataFacts | None) -> None:
        """The task's arguments (classes, the target's scale...): as given, else from the data's facts."""

    @abc.abstractmethod
    def make_metrics(self) -> None:
        """The losses and the task's metrics per stage, once."""

    def refuse_an_unsaveable_network(self) -> None:
        """Refuses a fit that would write checkpoints of a network no checkpoint could build; warns of `__main__`."""
        if self.unsaveable:
            raise UserError(f"no checkpoint could build this network again: {self.unsaveable}")
        if of_main(self.net_config):
            rank_zero_warn(
                f"the network {self.net_config['class_path']} is defined in this script or notebook (__main__): only "
                "code that defines it too can load these checkpoints; put it in a module (my_nets.py) to load them "
                "anywhere, from the command line too"
            )

    def check_task(self, facts: DataFacts, data: Any) -> None:
        """Refuses data of another task, naming the model that learns it, and how to tell the data the other task."""
        if facts.task in self.data_tasks:
            return
        other = "a Regressor (e.g. MLPRegressor)" if facts.task == "regression" else "a Classifier (e.g. MLPClassifier)"
        message = (
            f"{type(data).__name__} is a {facts.task} task, which a {type(self).__name__} does not learn: use {other}"
        )
        if isinstance(data, TensorDataModule) and "task" in data.init_args:  # the data module takes the task
            wanted, what = ("regression", "a number") if "regression" in self.data_tasks else ("multiclass", "classes")
            message += f"; or, if the target is {what}, tell the data: --data.task {wanted} (task='{wanted}')"
        raise UserError(message)

    def check_data(self, facts: DataFacts, name: str) -> None:
        """Refuses a network that does not fit the data's inputs or the task's outputs.

        Two rows of zeros of the data's input shape go through the network. Sets `example_input_array`
        (TensorBoard's graph) from that shape when the model has none.
        """
        given = (self.net_config or {}).get("init_args", {})
        for width in INPUT_WIDTHS:  # a network built already, for inputs of another width
            known = facts.widths().get(width)
            if given.get(width) is not None and known is not None and given[width] != known:
                raise UserError(
                    f"the network ({type(self.net).__name__}) takes {width}={given[width]} but {name} gives {known}: "
                    f"build it with {width}={known}, or give its class and the data fills its widths"
                )
        example = torch.zeros(2, *facts.input_shape, device=self.device)
        if self.example_input_array is None:
            self.example_input_array = example[:1]
        k = getattr(self.net, "k", None) if isinstance(self.net, Ensemble) else None  # the contract's one attribute
        if isinstance(self.net, Ensemble) and not (isinstance(k, int) and k >= 1):
            raise UserError(
                f"the network ({type(self.net).__name__}) is an Ensemble, whose k (members per example) is not set: "
                "set self.k in its __init__"
            )
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                if k is not None and (members := self(example, members=True)).shape[:2] != (2, k):
                    raise UserError(
                        f"the network ({type(self.net).__name__}) has k={k} members but gives outputs of shape "
                        f"{tuple(members.shape[1:])} per example: an Ensemble gives (k, outputs)"
                    )
                outputs = self(example)
        except RuntimeError as error:
            raise UserError(
                f"the network ({type(self.net).__name__}) cannot take the inputs of {name}, of shape "
                f"{facts.input_shape} per example ({str(error).splitlines()[0]}): build it for them, or leave its "
                "widths to the data"
            ) from error
        finally:
            self.train(was_training)
        if tuple(outputs.shape) != (2, *self.output_shape):
            raise UserError(
                f"the network ({type(self.net).__name__}) gives outputs of shape {tuple(outputs.shape[1:])} per "
                f"example, where a {type(self).__name__} needs {self.output_shape}: {self.output_hint}"
            )

    @property
    @abc.abstractmethod
    def output_shape(self) -> tuple[int, ...]:
        """What `forward` gives per example."""


def _same(given: Any, known: Any) -> bool:
    if isinstance(given, float) or isinstance(known, float):
        return math.isclose(float(given), float(known), rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(given, (list, tuple)) and isinstance(known, (list, tuple)):
        return len(given) == len(known) and all(map(_same, given, known))
    return given == known


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(list(value) if isinstance(value, tuple) else value)
