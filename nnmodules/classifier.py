"""Classification with any network: `Classifier(net, num_classes, task=...)`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MaxMetric
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy

from nnmodules.tasks import Schedule, Task, TaskModule, inputs_of, one_per_example


class Classifier(TaskModule):
    """Classification with any network.

    Cross-entropy, accuracy per stage, the best validation accuracy so far, class probabilities as predictions.

    Args:
        net: any `torch.nn.Module`; for "multiclass" it gives one score (logit) per class,
            shape (N, num_classes), for "binary" one logit of class 1 per example, shape (N,) or
            (N, 1). From YAML: `class_path` and `init_args`, where the CLI fills its `input_dim`,
            `num_classes` and `output_dim` from the data.
        num_classes: classes to tell apart (linked from the data module by the CLI); None: 2 for "binary".
        task: "multiclass" or "binary" (linked from the data module by the CLI).
        class_weights: one weight per class for the loss (e.g. a data module's
            "balanced" weights); None weighs every example alike.
        lr: peak learning rate of the default optimizer (Adam, one-cycle schedule), or its rate when "constant".
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" (warm up to `lr`, then anneal to almost 0 by the run's last step) or "constant".
    """

    hparams_metrics = ("val/acc_best", "test/acc")  # what TensorBoard's HParams tab compares runs by
    objective = ("val/acc_best", "maximize")  # what `litmodules tune` optimises unless its search file says otherwise
    data_tasks = ("multiclass", "binary")

    def __init__(
        self,
        net: nn.Module,
        num_classes: int | None = None,
        task: Task = "multiclass",
        class_weights: Sequence[float] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "one_cycle",
    ) -> None:
        if task == "binary" and num_classes in (None, 2):
            num_classes = 2
        elif task == "binary":
            raise ValueError(f"task='binary' has 2 classes, got num_classes={num_classes}: leave num_classes out")
        elif task != "multiclass":
            raise ValueError(f"task must be 'multiclass' or 'binary' (a regression needs a Regressor), got {task!r}")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes} (a classifier needs classes)")
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(f"class_weights needs one weight per class ({num_classes}), got {list(class_weights)}")
        if task == "binary":
            accuracy = BinaryAccuracy(validate_args=False)
        else:
            accuracy = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        super().__init__(net, {"acc": accuracy}, ["acc"], lr, weight_decay, lr_schedule)
        self.task, self.num_classes = task, num_classes
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)  # rebuilt from the hyperparameters
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # a resumed run keeps its best so far

    @property
    def output_shape(self) -> tuple[int, ...]:
        return () if self.task == "binary" else (self.num_classes,)

    @property
    def output_hint(self) -> str:
        width = 1 if self.task == "binary" else self.num_classes
        return f"build it with {width} output(s) (output_dim or num_classes={width}), or leave that to the CLI"

    def forward(self, inputs: Tensor) -> Tensor:
        outputs = self.net(inputs)
        return one_per_example(outputs) if self.task == "binary" else outputs

    def compute_loss(self, scores: Tensor, targets: Tensor) -> Tensor:
        """Cross-entropy of the scores (binary: of the logit), weighted by `class_weights`."""
        if self.task == "binary":
            weight = None if self.class_weights is None else self.class_weights[targets]
            return F.binary_cross_entropy_with_logits(scores, targets.to(scores.dtype), weight=weight)
        return F.cross_entropy(scores, targets, weight=self.class_weights)

    def probabilities(self, scores: Tensor) -> Tensor:
        """Class probabilities, one row per example and one column per class."""
        if self.task == "binary":
            positive = torch.sigmoid(scores)
            return torch.stack([1 - positive, positive], dim=1)
        return scores.softmax(dim=-1)

    def metric_inputs(self, scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        # binary accuracy thresholds probabilities at 0.5 (torchmetrics takes values within [0, 1] as such)
        return (torch.sigmoid(scores) if self.task == "binary" else scores), targets

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:  # the sanity check's few batches say nothing about "best"
            self.val_acc_best.update(self.val_metrics["acc"].compute())
            # the same on every rank (val_metrics are gathered): "max" keeps it exact under DDP
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True, reduce_fx="max")
        super().on_validation_epoch_end()

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Class probabilities, one row per example and one column per class."""
        return self.probabilities(self(inputs_of(batch)))
