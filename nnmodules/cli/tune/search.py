"""A search file of `litmodules tune`: the settings to try, what to optimise, how to prune and sample.

```yaml
space:  # any key of a config, as `--<key>` takes it on the command line
  model.init_args.lr: {low: 1.0e-4, high: 1.0e-2, log: true}  # a number between two bounds (ints: a whole number)
  model.init_args.dropout: {low: 0.0, high: 0.3, step: 0.1}
  model.init_args.hidden_dims: [[128, 128], [256, 128]]       # one of these values
metric: val/acc_best   # optional: the model's own `objective` (classifiers val/acc_best, regressors val/mse_best)
direction: maximize    # with `metric`: maximize or minimize
pruner:                # optional, any of optuna.pruners (NopPruner: no pruning); MedianPruner by default
  class_path: MedianPruner
  init_args: {n_startup_trials: 5}
sampler:               # optional, any of optuna.samplers; TPESampler by default, seeded with 42 unless told
  class_path: TPESampler
```

`read_search` checks the file's form and Optuna's rules before any trial; whether a key and its values are
what the config takes, `litmodules tune` checks by building the run for each bound and each choice.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from datamodules.errors import MissingFileError, UserError
from nnmodules.runs import SEED

DIRECTIONS = ("maximize", "minimize")
SECTIONS = ("space", "metric", "direction", "pruner", "sampler")
BOUNDS = ("low", "high", "log", "step")
CLASS_KEYS = ("class_path", "init_args")
SCALARS = (type(None), bool, int, float, str)  # what Optuna stores as a choice; other choices go by their text


@dataclass(frozen=True)
class Setting:
    """One key of the space: its Optuna distribution and, for a choice, the values its names stand for."""

    key: str
    distribution: BaseDistribution
    values: dict[Any, Any] = field(default_factory=dict)  # a choice's name in the study -> the value it sets

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value (sampled, or the one an enqueued trial fixed)."""
        known = self.distribution
        if isinstance(known, FloatDistribution):
            return trial.suggest_float(self.key, known.low, known.high, log=known.log, step=known.step)
        if isinstance(known, IntDistribution):
            return trial.suggest_int(self.key, known.low, known.high, log=known.log, step=known.step)
        name = trial.suggest_categorical(self.key, known.choices)
        return self.values.get(name, name)

    def bounds(self) -> list[Any]:
        """The values that show whether the config takes this key: both ends, or every choice."""
        if isinstance(self.distribution, CategoricalDistribution):
            return [self.values.get(name, name) for name in self.distribution.choices]
        return [self.distribution.low, self.distribution.high]


@dataclass(frozen=True)
class Search:
    """A search file, read and checked (see the module)."""

    path: Path
    space: tuple[Setting, ...]
    metric: str | None
    direction: str | None
    pruner: dict[str, Any]
    sampler: dict[str, Any]
    text: str  # the file's settings as JSON: a study remembers what it searched

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Every key's value for a trial."""
        return {setting.key: setting.suggest(trial) for setting in self.space}

    def make_pruner(self) -> optuna.pruners.BasePruner:
        """The search file's pruner."""
        return _build(optuna.pruners, "pruner", self.pruner, self.path)

    def make_sampler(self, trial_number: int) -> optuna.samplers.BaseSampler:
        """The search file's sampler, seeded with its seed plus the number of the trial it samples.

        A search continued later does not draw its first random points again, and two processes sharing a study
        never draw the same: a study numbers each trial once.
        """
        settings = dict(self.sampler)
        init_args = dict(settings.get("init_args") or {})
        if "seed" in inspect.signature(_class(optuna.samplers, "sampler", settings, self.path)).parameters:
            init_args["seed"] = (init_args.get("seed") or SEED) + trial_number
        return _build(optuna.samplers, "sampler", {**settings, "init_args": init_args}, self.path)

    def per_trial_sampler(self) -> SeededPerTrial:
        """The search file's sampler, seeded anew for each trial by its number (`make_sampler`)."""
        return SeededPerTrial(self.make_sampler)


class SeededPerTrial(optuna.samplers.BaseSampler):
    """A sampler made anew for each trial, seeded by the trial's number, when the trial is created.

    Optuna calls `before_trial` once a trial has its number and before anything is sampled for it; the rest is
    the made sampler's. Seeding by the number rather than by the trials a process has seen keeps two workers that
    start together from drawing the same values.
    """

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler]) -> None:
        self._make = make
        self._sampler = make(0)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler = self._make(trial.number)
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()


def read_search(path: str | Path) -> Search:
    """Reads and checks a search file; ValueError names the file, the key and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"search file {path} does not exist: pass --search FILE.yaml (docs/tune.md)")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not YAML: {' '.join(str(error).split())}") from error
    if not isinstance(content, dict) or not isinstance(content.get("space"), dict) or not content["space"]:
        raise UserError(f"{path}: a search file needs `space:`, the keys to search and their values (docs/tune.md)")
    for section in content:
        if section not in SECTIONS:
            raise UserError(f"{path}: no section {section!r}{_close(section, SECTIONS)}; a search file has {SECTIONS}")
    metric, direction = content.get("metric"), content.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise UserError(f"{path}: direction {direction!r}: maximize or minimize")
    if metric is not None and direction is None:
        raise UserError(f"{path}: metric {metric} needs its direction too (direction: maximize or minimize)")
    if direction is not None and metric is None:  # the model's own metric has its own direction
        raise UserError(f"{path}: direction goes with a metric of your choice (metric: val/loss, say)")
    search = Search(
        path=path,
        space=tuple(_setting(str(key), value, path) for key, value in content["space"].items()),
        metric=metric,
        direction=direction,
        pruner=_class_spec(content.get("pruner", "MedianPruner"), "pruner", path),
        sampler=_class_spec(content.get("sampler", "TPESampler"), "sampler", path),
        text=json.dumps(content, sort_keys=True, default=str),
    )
    search.make_pruner()  # its class and arguments, checked now
    search.make_sampler(0)
    return search


def _setting(key: str, spec: Any, path: Path) -> Setting:
    where = f"{path}: {key}"
    if isinstance(spec, list):
        return _choice(key, spec, where)
    if not isinstance(spec, dict):
        raise UserError(f"{where}: give a list of choices or {{low: ..., high: ...}}, not {spec!r}")
    return _range(key, spec, where)


def _choice(key: str, spec: list[Any], where: str) -> Setting:
    if not spec:
        raise UserError(f"{where}: an empty list of choices")
    if all(isinstance(value, SCALARS) for value in spec):
        return Setting(key, CategoricalDistribution(spec))
    names = [yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...") for value in spec]
    if len(set(names)) < len(names):
        raise UserError(f"{where}: a choice is listed twice")
    return Setting(key, CategoricalDistribution(names), dict(zip(names, spec, strict=True)))


def _range(key: str, spec: dict[str, Any], where: str) -> Setting:
    unknown = [name for name in spec if name not in BOUNDS]
    if unknown or "low" not in spec or "high" not in spec:
        wrong = f"no {unknown[0]!r}{_close(unknown[0], BOUNDS)}" if unknown else "both low and high are needed"
        raise UserError(f"{where}: {wrong} (a range takes low, high and optionally log or step)")
    low, high = (_number(spec[name], f"{where}: {name}") for name in ("low", "high"))
    step = _number(spec.get("step"), f"{where}: step")
    log = spec.get("log", False)
    problems = {
        "low and high must be numbers": low is None or high is None,
        f"log is true or false, not {log!r}": not isinstance(log, bool),
        f"low ({low}) must be below high ({high})": low is not None and high is not None and not low < high,
        f"a log scale needs low above 0, not {low}": log is True and low is not None and low <= 0,
        "a log scale takes no step": log is True and step is not None,
        f"step must be above 0, not {step}": step is not None and step <= 0,
    }
    for problem, found in problems.items():
        if found:
            raise UserError(f"{where}: {problem}")
    if all(isinstance(value, int) for value in (low, high, 1 if step is None else step)):
        return Setting(key, IntDistribution(low, high, log=log, step=step or 1))
    return Setting(key, FloatDistribution(float(low), float(high), log=log, step=step))


def _number(value: Any, where: str) -> int | float | None:
    """A bound as YAML gives it; `1e-4` (a string to YAML 1.1, which wants `1.0e-4`) read as the number it means."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{where}: {value} is not a finite number")
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"{where}: {value!r} is not a number") from None


def _class_spec(spec: Any, kind: str, path: Path) -> dict[str, Any]:
    """`Name` or {class_path: Name, init_args: {...}} as the latter."""
    spec = {"class_path": spec} if isinstance(spec, str) else spec
    if not isinstance(spec, dict) or not isinstance(spec.get("class_path"), str) or set(spec) - {*CLASS_KEYS}:
        raise UserError(f"{path}: {kind}: a class of optuna.{kind}s (`{kind}: Name`), or class_path and init_args")
    return spec


def _class(module: Any, kind: str, spec: dict[str, Any], path: Path) -> type:
    name = spec["class_path"].removeprefix(f"optuna.{kind}s.")
    known = [n for n, cls in vars(module).items() if isinstance(cls, type) and not n.startswith("_") and n[0].isupper()]
    if name not in known:
        raise UserError(f"{path}: {kind} {name!r} is not in optuna.{kind}s{_close(name, known)}; known: {known}")
    return getattr(module, name)


def _build(module: Any, kind: str, spec: dict[str, Any], path: Path) -> Any:
    cls = _class(module, kind, spec, path)
    try:
        return cls(**(spec.get("init_args") or {}))
    except (TypeError, ValueError) as error:
        raise UserError(f"{path}: {kind} {cls.__name__}: {error}") from None


def _close(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
