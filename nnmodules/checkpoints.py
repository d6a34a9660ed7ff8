"""Checkpoints that hold plain data: read without pickle, carry the random state, and rebuild the network.

- `read_checkpoint` loads with `torch.load(weights_only=True)` and turns an unreadable
  file into one error naming it; `CheckpointIO` makes the Trainer read that way. Saving is
  Lightning's own: the bytes go to a temporary file that replaces the old checkpoint only
  once complete, so a crash mid-write leaves the previous one.
- `Resumable`, mixed into every model here: its checkpoints carry the random state (an
  exact resume), and `load_from_checkpoint` reads without pickle.
- `hyperparameters`: what a model's checkpoint keeps of its arguments, among them its network
  as LightningCLI writes one from YAML (`class_path` and `init_args`: `net_config` for a network
  given as an object), so that `load_from_checkpoint(path)` builds it again.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import lightning as L
import torch
from jsonargparse import ArgumentParser
from lightning.fabric.plugins import TorchCheckpointIO
from torch import nn

from nnmodules._lightning import built_as_the_cli_builds, cli_hyperparameters

PLAIN = (bool, int, float, str, type(None))  # what an argument read back from a network may be


def read_checkpoint(path: str | Path, map_location: Any = None) -> dict[str, Any]:
    """A checkpoint's contents, loaded without pickle (`weights_only=True`); a clear error for anything else."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist: pass the path of a .ckpt file")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError... depending on the damage
        reason = type(error).__name__ + (f": {str(error).strip().splitlines()[0]}" if str(error).strip() else "")
        raise ValueError(
            f"{path} is not a readable checkpoint ({reason}): it may be truncated (a copy cut short) or not "
            f"written by Lightning; use another checkpoint of the run, e.g. its last.ckpt"
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path} is not a Lightning checkpoint: it holds no state_dict")
    return checkpoint


class CheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint reading and writing, with loads through `read_checkpoint`."""

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return read_checkpoint(path, map_location=map_location or (lambda storage, _: storage))


class Resumable:
    """What a LightningModule adds for runs that survive: a mixin, before `LightningModule` among the bases.

    Its random state travels in its checkpoints, and `load_from_checkpoint` reads without pickle and names a file that
    is no checkpoint of this class.
    """

    _rng_to_restore: dict[str, Any] | None = None  # from a checkpoint, for the first training step after it

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, *args: Any, **kwargs: Any) -> Any:
        if isinstance(checkpoint_path, (str, Path)):
            read_checkpoint(checkpoint_path)  # loads without pickle too: raises naming the file
        try:
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)
        except (RuntimeError, TypeError, ValueError) as error:  # its hyperparameters or weights do not fit
            reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
            raise ValueError(
                f"{checkpoint_path} does not load as a {cls.__name__} ({reason}): is it a checkpoint of another "
                f"model? Load it with the class that wrote it"
            ) from error

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
        checkpoint["rng_states"] = {"torch": torch.get_rng_state(), "cuda": cuda}  # tensors: no pickle needed

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_to_restore = checkpoint.get("rng_states")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # restored where the interrupted run went on from this state: after the resumed run's sanity check
        # and data loader set-up, which draw nothing from the global generator (loaders have their own)
        if self._rng_to_restore is not None:
            torch.set_rng_state(self._rng_to_restore["torch"])
            if self._rng_to_restore["cuda"]:
                torch.cuda.set_rng_state_all(self._rng_to_restore["cuda"])
            self._rng_to_restore = None


def hyperparameters(model: L.LightningModule, net: nn.Module) -> tuple[dict[str, Any], str | None]:
    """What `model.save_hyperparameters` keeps, and why no checkpoint could build its network, or None.

    The arguments of its class's `__init__` (as LightningCLI gave them, or as passed), a network given as `net` as its
    config (`net_config`); and why no checkpoint could build that network again, or None. Arguments the class does not
    take (links of the CLI it lacks) are left out. Call it from the model's `__init__`: it reads the arguments from
    the calls under way.
    """
    accepted = inspect.signature(type(model).__init__).parameters
    settings = cli_hyperparameters()
    if settings is None:  # built from Python
        settings = _arguments_under_way(model)
    settings = {k: v for k, v in settings.items() if k.startswith("_") or _takes(accepted, k)}
    if "net" not in accepted:  # a preset: its own arguments build its network
        return settings, None
    if isinstance(settings["net"], dict):  # the CLI's config: only the arguments the network's class takes
        parameters = inspect.signature(type(net).__init__).parameters
        init_args = settings["net"].get("init_args", {})
        return {
            **settings,
            "net": {**settings["net"], "init_args": {k: v for k, v in init_args.items() if _takes(parameters, k)}},
        }, None
    try:
        return built_as_the_cli_builds({**settings, "net": net_config(net)}), None
    except ValueError as reason:
        return {name: value for name, value in settings.items() if name != "net"}, str(reason)


def _arguments_under_way(model: L.LightningModule) -> dict[str, Any]:
    """The arguments of the `__init__` call under way of the class that defines the model's `__init__`.

    Like Lightning's `save_hyperparameters`, from the call's frame; but the frame is known by its `self` and
    its class, not by its function's name, so that an `__init__` behind a wrapper (a decorator, a mutation
    tester's) counts too; and the base classes' frames are left out, so a subclass that passes `**kwargs` on
    keeps what it was given, not its bases' networks and metrics. Without a `super()` call (no `__class__` in
    the frame), the outermost `__init__` of the model.
    """
    defining = next(cls for cls in type(model).__mro__ if "__init__" in vars(cls))
    arguments: dict[str, Any] = {}
    frame = inspect.currentframe()
    while frame is not None:
        code, values = frame.f_code, frame.f_locals
        if code.co_argcount and values.get(code.co_varnames[0]) is model:
            named = code.co_argcount + code.co_kwonlyargcount
            arguments = {name: values[name] for name in code.co_varnames[1:named]}
            if code.co_flags & inspect.CO_VARKEYWORDS:
                arguments |= values[code.co_varnames[named + bool(code.co_flags & inspect.CO_VARARGS)]]
            if values.get("__class__") is defining:
                break
        frame = frame.f_back
    return arguments


def _takes(parameters: Any, name: str) -> bool:
    """Whether a signature's parameters take an argument of that name."""
    return name in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def net_config(net: nn.Module) -> dict[str, Any]:
    """How to build `net` again, as LightningCLI writes a network: `{"class_path": ..., "init_args": {...}}`.

    Each argument of its class's `__init__` is read from the attribute of the same name
    (`self.channels = channels`), or left at its default when there is none; then the
    network is built again from that, as `load_from_checkpoint` would (on the meta device:
    no memory), and must come out the same: the same layers and parameter shapes.

    Raises:
        ValueError: naming why a checkpoint could not rebuild it, and what would.
    """
    cls = type(net)
    path = f"{cls.__module__}.{cls.__qualname__}"
    fix = (
        "write the network as a class at the top level of a module whose __init__ keeps each argument as an "
        "attribute of the same name (self.width = width), give it in a config (class_path and init_args), or "
        "train without checkpoints (Trainer(enable_checkpointing=False))"
    )
    if "<locals>" in cls.__qualname__:
        raise ValueError(f"{path} is defined inside a function, where a checkpoint cannot import it: {fix}")
    init_args = {}
    for name, parameter in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ValueError(f"{path} takes *{name}, whose values cannot be read back from the network: {fix}")
        if not hasattr(net, name):
            if parameter.default is parameter.empty:
                raise ValueError(f"{path} keeps no attribute {name!r} for its argument of that name: {fix}")
            continue
        value = getattr(net, name)
        if not _plain(value):
            raise ValueError(f"{path}.{name} is a {type(value).__name__}, not plain data a checkpoint holds: {fix}")
        init_args[name] = list(value) if isinstance(value, tuple) else value
    config = {"class_path": path, "init_args": init_args}
    try:
        with torch.device("meta"):
            rebuilt = build_net(config)
    except Exception as error:
        raise ValueError(f"{path}({_arguments(init_args)}) cannot be built again ({_cause(error)}): {fix}") from error
    if repr(rebuilt) != repr(net) or _shapes(rebuilt) != _shapes(net):
        raise ValueError(f"{path}({_arguments(init_args)}) builds another network than the one given: {fix}")
    return config


def build_net(config: dict[str, Any]) -> nn.Module:
    """A network from its config, as `load_from_checkpoint` builds it (jsonargparse, as LightningCLI does)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(nn.Module, "net", fail_untyped=False)
    return parser.instantiate(parser.parse_object({"net": config})).net


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return isinstance(value, PLAIN)


def _shapes(net: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(tensor.shape)) for name, tensor in net.state_dict().items()]


def _cause(error: Exception) -> str:
    """The innermost line of an error: jsonargparse indents each cause under the one it explains."""
    lines = [line for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    return max(lines, key=lambda line: len(line) - len(line.lstrip())).strip()


def _arguments(init_args: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in init_args.items())
