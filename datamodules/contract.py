"""What a model may know of its data: `DataFacts`, one typed object, beside the task kinds it names.

Every data module here publishes its facts as `facts` once `setup` has read its data (or once
`load_state_dict` has given it a checkpoint's state), and a checkpoint keeps them as plain data. Models,
callbacks, figures and exports read them through `facts_of`; nothing else asks a data module what it holds.

The widths a network may take from its data go by the names of `DataFacts.widths`: `input_dim`,
`num_classes`, `output_dim`, `in_channels`, `image_size`, `numeric_features`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, get_args

from datamodules.errors import UserError

Task = Literal["multiclass", "binary", "regression"]
TASKS: tuple[str, ...] = get_args(Task)
CLASSES = ("multiclass", "binary")  # the tasks of classes, a Classifier's; "regression" is a Regressor's


@dataclasses.dataclass(frozen=True)
class DataFacts:
    """What a data module tells a model about its data.

    Args:
        task: "multiclass", "binary" or "regression".
        input_shape: one example's inputs, as the model gets them (after the data's per-batch transform).
        class_names: the classes in label order (classification), as the data names them.
        class_weights: a loss weight per class, when the data asks for them ("balanced"), else None.
        target_mean, target_std: regression targets are fed as (target - mean) / std.
        numeric_features: a table's numbers: the first this many of its features, before the others
            (one-hot categories, missing-value flags); `parts` names both.
        image_shape: (channels, height, width) of image data, flat or not.
        training_rows: examples in the training split.
        true_line: (intercept, slope) of the line synthetic data was drawn around, where there is one.
    """

    task: Task
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...] | None = None
    class_weights: tuple[float, ...] | None = None
    target_mean: float = 0.0
    target_std: float = 1.0
    numeric_features: int = 0
    image_shape: tuple[int, int, int] | None = None
    training_rows: int | None = None
    true_line: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise UserError(f"task must be one of {TASKS}, got {self.task!r}")
        if (self.task in CLASSES) != (self.class_names is not None):
            raise UserError(f"a {self.task} task {'needs' if self.task in CLASSES else 'has no'} class names")
        if self.class_names is not None and len(self.class_names) < 2:
            raise UserError(f"classification needs two classes or more, got {list(self.class_names)}")
        if self.task == "binary" and len(self.class_names or ()) != 2:
            raise UserError(f"a binary task has 2 classes, got {list(self.class_names or ())}")
        if self.class_weights is not None and len(self.class_weights) != len(self.class_names or ()):
            raise UserError(f"class_weights needs one weight per class, got {list(self.class_weights)}")
        if not 0 <= self.numeric_features <= self.num_features:
            raise UserError(f"numeric_features must be from 0 to {self.num_features}, got {self.numeric_features}")
        if not self.target_std > 0:
            raise UserError(f"target_std must be positive, got {self.target_std}")

    @property
    def num_features(self) -> int:
        """Input values per example: the product of `input_shape`."""
        return math.prod(self.input_shape)

    @property
    def num_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    @property
    def output_width(self) -> int:
        """Outputs per example a network gives: one score per class, or one number (a binary logit, a regression)."""
        return self.num_classes if self.task == "multiclass" else 1

    @property
    def parts(self) -> dict[str, int]:
        """A table's features by part, in their order: its `numbers`, then the `others`."""
        return {"numbers": self.numeric_features, "others": self.num_features - self.numeric_features}

    def widths(self) -> dict[str, int]:
        """The widths a network may take from the data, by the names networks give them."""
        widths = {
            "input_dim": self.num_features,
            "output_dim": self.output_width,
            "numeric_features": self.numeric_features,
        }
        if self.num_classes is not None:
            widths["num_classes"] = self.num_classes
        if self.image_shape is not None:
            widths["in_channels"], widths["image_size"] = self.image_shape[0], self.image_shape[-1]
        return widths

    def state_dict(self) -> dict[str, Any]:
        """The facts as plain data (lists, numbers, text), as a checkpoint keeps them."""
        return {
            name: list(value) if isinstance(value, tuple) else value for name, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> DataFacts:
        return cls(**{name: tuple(value) if isinstance(value, list) else value for name, value in state.items()})


def facts_of(data: Any) -> DataFacts | None:
    """What a data module publishes (its `facts`, once set up), or None: none yet, or a data module of another kind."""
    facts = getattr(data, "facts", None)
    return facts if isinstance(facts, DataFacts) else None
