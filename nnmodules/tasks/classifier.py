"""Classification with any network: `Classifier(net)`, its classes and task taken from the data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MaxMetric, Metric
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy

from datamodules.choices import check_choice
from datamodules.contract import CLASSES, DataFacts
from datamodules.errors import UserError
from nnmodules import metrics
from nnmodules.nets.configs import NetworkBuilder
from nnmodules.tasks.task import Schedule, TaskModule, inputs_of, one_per_example

Task = Literal["multiclass", "binary"]


class Classifier(TaskModule):
    """Classification with any network.

    Cross-entropy, accuracy per stage, the best validation accuracy so far, class probabilities as predictions.

    Args:
        net: the network, given as an object, or as its class (or any callable building it), which the model
            calls with the widths it names that the data gives (`num_classes`, `output_dim`, `input_dim`, ...).
            For "multiclass" it gives one score (logit) per class, shape (N, num_classes); for "binary" one
            logit of class 1 per example, shape (N,) or (N, 1). From YAML: `class_path` and `init_args`,
            leaving out the widths the data gives.
        num_classes: classes to tell apart; None: the data's (2 for "binary").
        task: "multiclass" or "binary"; None: the data's, or "multiclass" without data.
        class_weights: one weight per class for the loss; None: the data's (e.g. its "balanced" weights), or
            every example alike.
        lr: peak learning rate of the default optimizer (Adam, one-cycle schedule), or its rate when "constant".
        weight_decay: L2 penalty of the default optimizer.
        lr_schedule: "one_cycle" (warm up to `lr`, then anneal to almost 0 by the run's last step) or "constant".
        betas: Adam's (see `TaskModule`).
        label_smoothing: the share of each example's target spread evenly over the classes (0: none), as
            `torch.nn.functional.cross_entropy` takes it; binary: the target 1 becomes 1 - s/2 and 0 becomes s/2.
            In training only: the validation and test losses are the plain cross-entropy.
    """

    data_tasks = CLASSES

    def __init__(
        self,
        net: nn.Module | NetworkBuilder | None,
        num_classes: int | None = None,
        task: Task | None = None,
        class_weights: Sequence[float] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "one_cycle",
        betas: Sequence[float] = (0.9, 0.999),
        label_smoothing: float = 0.0,
    ) -> None:
        if task == "regression":
            raise UserError("task='regression' is a Regressor's (e.g. MLPRegressor): a Classifier learns classes")
        if task is not None:
            check_choice("task", task, Task)
        if task == "binary" and num_classes not in (None, 2):
            raise UserError(f"task='binary' has 2 classes, got num_classes={num_classes}: leave num_classes out")
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 2):
            raise UserError(f"num_classes must be at least 2, got {num_classes} (a classifier needs classes)")
        if class_weights is not None and num_classes is not None and len(class_weights) != num_classes:
            raise UserError(f"class_weights needs one weight per class ({num_classes}), got {list(class_weights)}")
        if not 0 <= label_smoothing < 1:
            raise UserError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        super().__init__(net, lr, weight_decay, lr_schedule, betas)
        self.label_smoothing = label_smoothing
        self.task: str | None = task
        self.num_classes: int | None = 2 if task == "binary" else num_classes
        self.weights_given = None if class_weights is None else list(class_weights)
        self.register_buffer("class_weights", None, persistent=False)  # from the arguments or the data, at setup
        self.build_when_known()

    def can_build(self, facts: DataFacts | None) -> bool:
        return super().can_build(facts) and (facts is not None or self.num_classes is not None)

    def take_facts(self, facts: DataFacts | None) -> None:
        """The task, classes and class weights: as given (checked against the data's), else the data's."""
        if facts is not None and facts.task not in CLASSES:
            return  # check_data refuses it, naming the model to use
        if self.task is None:  # not given: the data's; without data, one score per class
            self.task = self.take("task", None, None if facts is None else facts.task, "multiclass")
        elif facts is not None and self.task == "binary" and facts.task != "binary":
            raise UserError(f"task='binary' but the data has {facts.num_classes} classes: leave task out")
        self.num_classes = self.take("num_classes", self.num_classes, None if facts is None else facts.num_classes)
        weights = self.weights_given  # a choice: as given, not checked against the data's
        if weights is None:
            weights = self.take("class_weights", None, None if facts is None else facts.class_weights)
        if weights is not None and len(weights) != self.num_classes:
            raise UserError(f"class_weights needs one weight per class ({self.num_classes}), got {list(weights)}")
        self.class_weights = None if weights is None else torch.tensor(weights, dtype=torch.float32, device=self.device)

    def task_widths(self) -> dict[str, int]:
        return {"num_classes": self.num_classes, "output_dim": 1 if self.task == "binary" else self.num_classes}

    def task_metrics(self) -> tuple[dict[str, Metric], Sequence[str]]:
        if self.task == "binary":
            accuracy = BinaryAccuracy(validate_args=False)
        else:
            accuracy = MulticlassAccuracy(self.num_classes, average="micro", validate_args=False)
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # a resumed run keeps its best so far
        return {metrics.ACCURACY: accuracy}, [metrics.ACCURACY]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return () if self.task == "binary" else (self.num_classes,)

    @property
    def output_hint(self) -> str:
        width = 1 if self.task == "binary" else self.num_classes
        return f"build it with {width} output(s) (output_dim or num_classes={width}), or leave that to the data"

    def shaped(self, outputs: Tensor) -> Tensor:
        return one_per_example(outputs, self.of_members) if self.task == "binary" else outputs

    def together(self, members: Tensor) -> Tensor:
        """The scores whose probabilities are the mean of the members': log-mean-exp of their log-probabilities."""
        log_k = math.log(self.net.k)  # the contract says k: a constant to an export, which a shape is not
        if self.task == "binary":  # the logit of the mean probability: log p - log(1 - p)
            positive = F.logsigmoid(members).logsumexp(dim=1) - log_k
            negative = F.logsigmoid(-members).logsumexp(dim=1) - log_k
            return positive - negative
        return members.log_softmax(dim=-1).logsumexp(dim=1) - log_k

    def compute_loss(self, scores: Tensor, targets: Tensor) -> Tensor:
        """Cross-entropy of the scores (binary: of the logit), weighted by `class_weights`; smoothed in training."""
        smoothing = self.label_smoothing if self.training else 0.0
        if self.task == "binary":
            weight = None if self.class_weights is None else self.class_weights[targets]
            smoothed = targets.to(scores.dtype) * (1 - smoothing) + smoothing / 2
            return F.binary_cross_entropy_with_logits(scores, smoothed, weight=weight)
        return F.cross_entropy(scores, targets, weight=self.class_weights, label_smoothing=smoothing)

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
            self.val_acc_best.update(self.val_metrics[metrics.ACCURACY].compute())
            # the same on every rank (val_metrics are gathered): "max" keeps it exact under DDP
            best = metrics.name(metrics.VAL, metrics.ACCURACY) + metrics.BEST
            self.log(best, self.val_acc_best.compute(), prog_bar=True, sync_dist=True, reduce_fx="max")
        super().on_validation_epoch_end()

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Class probabilities, one row per example and one column per class."""
        return self.probabilities(self(inputs_of(batch)))
