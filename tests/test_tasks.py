"""The task logic every model shares (nnmodules/tasks.py): losses, the loss check, best-so-far metrics."""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path
from typing import Literal

import lightning as L
import pytest
import torch
from conftest import VAL_SIZE
from test_runs import LOGS_OFTEN, Crash, CrashAtEpoch

from datamodules import MNISTDataModule, ToyRegressionDataModule
from datamodules.batches import TensorDataModule, TensorTable
from datamodules.choices import check_choice
from datamodules.contract import DataFacts
from nnmodules import MLP, Classifier, MLPClassifier, Regressor, ScratchDeepNet, ToyRegressor
from nnmodules.runs import make_trainer

SCORES = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 0.0, 3.0], [1.0, 2.0, 0.5]])
TARGETS = torch.tensor([0, 2, 2, 1])
WEIGHTS = [1.0, 2.0, 0.5]


def cross_entropy_by_hand(scores: torch.Tensor, targets: torch.Tensor, weights: list[float] | None) -> float:
    """-sum(w_y log softmax(s)_y) / sum(w_y), written out."""
    total = weight_sum = 0.0
    for row, target in zip(scores.tolist(), targets.tolist(), strict=True):
        log_probability = row[target] - math.log(sum(math.exp(s) for s in row))
        weight = 1.0 if weights is None else weights[target]
        total, weight_sum = total - weight * log_probability, weight_sum + weight
    return total / weight_sum


@pytest.mark.parametrize("weights", [None, WEIGHTS], ids=["plain", "weighted"])
def test_the_mlps_loss_is_cross_entropy_weighted_by_class(weights):
    model = MLPClassifier(input_dim=3, hidden_dims=[], num_classes=3, class_weights=weights)
    assert model.compute_loss(SCORES, TARGETS).item() == pytest.approx(cross_entropy_by_hand(SCORES, TARGETS, weights))


def logit(probability: float) -> float:
    return math.log(probability / (1 - probability))


def test_the_binary_loss_is_cross_entropy_of_the_logit_weighted_by_class():
    model = Classifier(MLP(3, [], 1), task="binary", class_weights=[1.0, 3.0])
    logits, targets = torch.tensor([logit(0.9), logit(0.2), logit(0.6)]), torch.tensor([1, 0, 0])
    # -(3 log 0.9 + 1 log 0.8 + 1 log 0.4) / 3: torch's binary cross-entropy takes the mean, weights and all
    expected = -(3 * math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3
    assert model.compute_loss(logits, targets).item() == pytest.approx(expected)


def test_label_smoothing_spreads_a_share_of_each_target_over_the_classes_in_training_only():
    model = MLPClassifier(input_dim=3, hidden_dims=[], num_classes=3, label_smoothing=0.3)
    log_p = SCORES.log_softmax(dim=1).tolist()
    # the target class gets 1 - 0.3 + 0.3 / 3, the others 0.3 / 3 each
    rows = zip(log_p, TARGETS.tolist(), strict=True)
    by_hand = -sum(sum((0.8 if c == t else 0.1) * row[c] for c in range(3)) for row, t in rows)
    assert model.train().compute_loss(SCORES, TARGETS).item() == pytest.approx(by_hand / 4)
    plain = cross_entropy_by_hand(SCORES, TARGETS, None)
    assert model.eval().compute_loss(SCORES, TARGETS).item() == pytest.approx(plain)  # validation's and test's loss
    binary = Classifier(MLP(3, [], 1), task="binary", label_smoothing=0.2).train()
    logits, targets = torch.tensor([logit(0.9), logit(0.2)]), torch.tensor([1, 0])
    expected = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1) + 0.1 * math.log(0.2) + 0.9 * math.log(0.8)) / 2
    assert binary.compute_loss(logits, targets).item() == pytest.approx(expected)


def test_the_default_optimizer_takes_the_betas_given(tmp_path):
    model = Classifier(MLP(2, [], 3), num_classes=3, betas=(0.9, 0.95), lr_schedule="constant")
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        default_root_dir=tmp_path, limit_val_batches=0, enable_model_summary=False)  # fmt: skip
    rows = torch.utils.data.TensorDataset(torch.randn(8, 2), torch.randint(0, 3, (8,)))
    trainer.fit(model, torch.utils.data.DataLoader(rows, batch_size=4), torch.utils.data.DataLoader(rows))
    assert trainer.optimizers[0].param_groups[0]["betas"] == (0.9, 0.95)


@pytest.mark.parametrize("weights", [None, WEIGHTS], ids=["plain", "weighted"])
def test_the_scratch_nets_multiclass_loss_is_weighted_nll_of_its_log_probabilities(weights):
    model = ScratchDeepNet(input_dim=3, hidden_dims=[2], num_classes=3, class_weights=weights)
    log_probabilities = SCORES.log_softmax(dim=1)
    expected = cross_entropy_by_hand(SCORES, TARGETS, weights)
    assert model.calc_loss(log_probabilities, TARGETS).item() == pytest.approx(expected)


@pytest.mark.parametrize(("weights", "expected"), [(None, (0.1 + 0.2 + 0.6) / 3), ([1.0, 3.0], (0.3 + 0.2 + 0.6) / 5)])
def test_the_scratch_nets_binary_loss_is_the_tutorials_mean_absolute_error_weighted_by_class(weights, expected):
    model = ScratchDeepNet(
        input_dim=3, hidden_dims=[2], num_classes=2, task="binary", loss="mae", class_weights=weights
    )
    probabilities, targets = torch.tensor([0.9, 0.2, 0.6]), torch.tensor([1, 0, 0])
    assert model.calc_loss(probabilities, targets).item() == pytest.approx(expected)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_loss_that_is_not_finite_stops_training_naming_its_batch(bad):
    model = MLPClassifier(input_dim=3, hidden_dims=[], num_classes=3)
    finite = (torch.tensor(0.5), None, TARGETS, 6)
    model._pending = [finite, (torch.tensor(bad), None, TARGETS, 7), (torch.tensor(bad), None, TARGETS, 8), finite]
    with pytest.raises(FloatingPointError, match=rf"^the training loss became {bad} at epoch 0, batch 7: training"):
        model.update_training_metrics()


class WorseFrom(L.Callback):
    """Scrambles the weights at the start of one epoch: its validation is worse than any before."""

    def __init__(self, epoch: int) -> None:
        self.epoch, self.seen = epoch, []

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                for parameter in module.parameters():
                    parameter.copy_(torch.randn_like(parameter) * 5)

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.seen.append({name: float(value) for name, value in trainer.callback_metrics.items()})


def classifier_run(mnist_dir: Path) -> tuple[L.LightningModule, L.LightningDataModule, str, str, type]:
    data = MNISTDataModule(mnist_dir, batch_size=32, val_size=VAL_SIZE, download=False)
    return MLPClassifier(hidden_dims=[32], lr_schedule="constant"), data, "val/acc", "val/acc_best", max


def regressor_run(mnist_dir: Path) -> tuple[L.LightningModule, L.LightningDataModule, str, str, type]:
    data = ToyRegressionDataModule(n_samples=200, batch_size=20)
    return ToyRegressor(hidden_dims=[8], optimizer="adam", lr=0.05), data, "val/mse", "val/mse_best", min


@pytest.mark.parametrize("resumed", [False, True], ids=["straight", "resumed-before-it"])
@pytest.mark.parametrize("kind", [classifier_run, regressor_run], ids=["classifier", "regressor"])
def test_the_best_so_far_keeps_the_best_epoch_through_a_worse_one_and_a_resume(kind, resumed, mnist_dir, tmp_path):
    L.seed_everything(0)
    model, data, metric, best, better = kind(mnist_dir)
    worse = WorseFrom(epoch=2)
    trainer = make_trainer(save_dir=tmp_path, max_epochs=3, **LOGS_OFTEN)
    trainer.callbacks.append(worse)
    seen = []
    if resumed:  # stopped at the start of the worse epoch: the best so far must come back from the checkpoint
        trainer.callbacks.append(CrashAtEpoch(2))
        with pytest.raises(Crash):
            trainer.fit(model, data)
        seen = worse.seen
        model, data, *_ = kind(mnist_dir)
        trainer = make_trainer(version="last", save_dir=tmp_path, max_epochs=3, **LOGS_OFTEN)
        worse = WorseFrom(epoch=2)
        trainer.callbacks.append(worse)
        trainer.fit(model, data, ckpt_path="last")
    else:
        trainer.fit(model, data)
    epochs = seen + worse.seen
    values = [epoch[metric] for epoch in epochs]
    assert len(values) == 3 and better(values) == better(values[:2]) != values[2]  # the scrambled epoch is worse
    assert [epoch[best] for epoch in epochs] == pytest.approx([better(values[: i + 1]) for i in range(3)])


def test_binary_predictions_are_the_probabilities_of_class_0_then_class_1():
    model = Classifier(MLP(3, [], 1), task="binary")
    model.forward = lambda inputs: torch.tensor([logit(0.9), logit(0.25)])  # the logit of class 1
    expected = torch.tensor([[0.1, 0.9], [0.75, 0.25]])
    torch.testing.assert_close(model.predict_step(torch.zeros(2, 3), 0), expected)


def test_binary_accuracy_thresholds_the_probability_not_the_logit():
    model = Classifier(MLP(3, [], 1), task="binary")
    logits, targets = torch.tensor([0.3, 0.9, 0.2]), torch.tensor([1, 1, 1])  # all right: each logit is above 0
    model.val_metrics.update(*model.metric_inputs(logits, targets))
    assert model.val_metrics.compute()["val/acc"] == 1.0  # at 0.5 on the logits, the first and last would be wrong


def test_regression_metrics_and_predictions_are_in_the_targets_units():
    model = ToyRegressor(target_mean=5.0, target_std=2.0)
    torch.testing.assert_close(model.in_target_units(torch.tensor([-1.0, 0.0, 1.5])), torch.tensor([3.0, 5.0, 8.0]))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"target_std": 0.0}, "target_std must be positive, got 0.0"),
        ({"optimizer": "sgd"}, "optimizer must be 'adam' or 'lbfgs', got 'sgd'"),
    ],
)
def test_a_regressors_bad_settings_are_refused_by_name(arguments, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ToyRegressor(**arguments)


def test_the_regressors_lbfgs_takes_line_searched_steps_of_lr():
    model = ToyRegressor(input_dim=1, optimizer="lbfgs", lr=0.5)
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.LBFGS)
    assert (optimizer.defaults["lr"], optimizer.defaults["max_iter"], optimizer.defaults["line_search_fn"]) == (
        0.5,
        20,
        "strong_wolfe",
    )


def test_the_task_bases_defaults_are_the_documented_ones():
    regressor = inspect.signature(Regressor.__init__).parameters
    defaults = {name: parameter.default for name, parameter in regressor.items() if name not in ("self", "net")}
    assert defaults == {
        "target_mean": None,  # the data's
        "target_std": None,
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "lr_schedule": "one_cycle",
        "betas": (0.9, 0.999),  # Adam's own
    }
    classifier = inspect.signature(Classifier.__init__).parameters
    assert {name: p.default for name, p in classifier.items() if name not in ("self", "net")} == {
        "num_classes": None,
        "task": None,  # the data's
        "class_weights": None,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "lr_schedule": "one_cycle",
        "betas": (0.9, 0.999),
        "label_smoothing": 0.0,
    }


def test_class_weights_given_as_whole_numbers_weigh_the_loss_as_floats():
    model = MLPClassifier(input_dim=3, hidden_dims=[], num_classes=3, class_weights=[1, 2, 1])
    expected = cross_entropy_by_hand(SCORES, TARGETS, [1.0, 2.0, 1.0])
    assert model.compute_loss(SCORES, TARGETS).item() == pytest.approx(expected)


def test_the_progress_bar_shows_the_validation_loss_metrics_and_best_so_far(mnist, tmp_path):
    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, logger=False, **LOGS_OFTEN)
    trainer.fit(MLPClassifier(hidden_dims=[8]), mnist)
    assert {"val/loss", "val/acc", "val/acc_best"} <= set(trainer.progress_bar_metrics)
    assert not {name for name in trainer.progress_bar_metrics if name.startswith("train/")}  # read back every step


@pytest.mark.parametrize(
    ("model", "name", "reduce"),
    [
        (lambda: MLPClassifier(input_dim=2, hidden_dims=[4], num_classes=3), "val/acc_best", "max"),
        (lambda: ToyRegressor(input_dim=1), "val/mse_best", "min"),
    ],
    ids=["classifier", "regressor"],
)
def test_the_best_so_far_is_the_same_on_every_process(model, name, reduce, monkeypatch):
    module, logged = model(), {}
    module.trainer = L.Trainer(logger=False, **LOGS_OFTEN)
    monkeypatch.setattr(module, "log", lambda name, value, **options: logged.setdefault(name, options))
    module.val_metrics.update(
        *module.metric_inputs(*((SCORES, TARGETS) if isinstance(module, MLPClassifier) else (TARGETS.float(),) * 2))
    )
    module.on_validation_epoch_end()
    assert logged[name]["sync_dist"] is True and logged[name]["reduce_fx"] == reduce  # exact under DDP


def test_the_tasks_default_learning_rate_and_a_network_s_outputs_per_task():
    assert Classifier(MLP(2, [], 3), num_classes=3).lr == Regressor(MLP(2, [], 1)).lr == 1e-3
    classes = DataFacts(task="multiclass", input_shape=(2,), class_names=tuple("abcde"))
    binary = DataFacts(task="binary", input_shape=(2,), class_names=("no", "yes"))
    numbers = DataFacts(task="regression", input_shape=(2,))
    assert [facts.output_width for facts in (classes, binary, numbers)] == [5, 1, 1]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lr": 0.0}, "lr must be positive, got 0.0"),
        ({"lr_schedule": "cosine"}, "lr_schedule must be 'one_cycle' or 'constant', got 'cosine'"),
        ({"weight_decay": -0.1}, "weight_decay must be 0 or more, got -0.1"),
        ({"betas": (0.9, 1.0)}, "betas must be two numbers in [0, 1), got [0.9, 1.0]"),
        ({"label_smoothing": 1.0}, "label_smoothing must be in [0, 1), got 1.0"),
    ],
)
def test_the_default_optimizers_bad_settings_are_refused_by_name(settings, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Classifier(MLP(2, [], 3), num_classes=3, **settings)


def test_evaluation_adds_up_in_float64_on_a_cpu():
    model = MLPClassifier(input_dim=784, hidden_dims=[4], num_classes=10)
    model.trainer = L.Trainer(logger=False, **LOGS_OFTEN)
    model.setup("validate")
    states = [*model.val_loss.metric_state.values(), *model.test_metrics["acc"].metric_state.values()]
    assert {state.dtype for state in states if state.is_floating_point()} == {torch.float64}


def test_a_choice_outside_its_literal_type_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=re.escape("colour must be 'red', 'green' or 'blue', got 'pink'")):
        check_choice("colour", "pink", Literal["red", "green", "blue"])
    check_choice("colour", "green", Literal["red", "green", "blue"])


class InMemory(TensorDataModule):
    """Rows of a classification in memory: the first 22 train, the last 10 validate."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, **loading) -> None:
        super().__init__(**loading)
        self.rows = inputs, targets

    def setup(self, stage: str | None = None) -> None:
        inputs, targets = self.rows
        self.tables = {"train": TensorTable(inputs[:22], targets[:22]), "val": TensorTable(inputs[22:], targets[22:])}
        self.facts = DataFacts(task="multiclass", input_shape=(3,), class_names=("no", "yes"))


class StepLosses(L.Callback):
    """Each training step's loss and batch size, as the model computed them."""

    def __init__(self) -> None:
        self.steps: list[tuple[float, int]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.steps.append((float(outputs["loss"]), len(batch[1])))


def short_last_batch() -> TensorDataModule:
    """22 training rows in batches of 8: 8, 8 and 6; 10 validation rows in batches of 4 (eval 4): 4, 4 and 2."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(32, 3, generator=generator)
    targets = (inputs.sum(dim=1) > 0).long()
    return InMemory(inputs, targets, batch_size=8, eval_batch_size=4)


def test_the_epochs_losses_weigh_each_example_once_and_log_without_validation_too(tmp_path):
    data, steps = short_last_batch(), StepLosses()
    L.seed_everything(0)
    model = Classifier(MLP(3, [], 2), num_classes=2, lr=0.1, lr_schedule="constant")
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, callbacks=[steps], **LOGS_OFTEN)
    trainer.fit(model, data)
    assert [size for _, size in steps.steps] == [8, 8, 6]
    by_hand = sum(loss * size for loss, size in steps.steps) / 22  # failed unweighted: the 6 rows counted as 8
    assert float(trainer.callback_metrics["train/loss_epoch"]) == pytest.approx(by_hand, rel=1e-6)
    inputs, targets = data.tables["val"].tensors
    with torch.no_grad():
        val_by_hand = torch.nn.functional.cross_entropy(model.eval()(inputs), targets).item()  # every row at once
    assert float(trainer.callback_metrics["val/loss"]) == pytest.approx(val_by_hand, rel=1e-6)
    quiet = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, limit_val_batches=0, **LOGS_OFTEN)
    quiet.fit(Classifier(MLP(3, [], 2), num_classes=2), short_last_batch())
    assert "train/loss_epoch" in quiet.callback_metrics  # failed: without validation, never logged


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (lambda: MLPClassifier(input_dim=100), "the model's input_dim=100 but the data gives 784: leave input_dim out"),
        (lambda: MLPClassifier(num_classes=3), "the model's num_classes=3 but the data gives 10: leave num_classes"),
    ],
    ids=["input_dim", "num_classes"],
)
def test_a_width_given_that_is_not_the_datas_is_refused_naming_both(model, message, mnist):
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, **LOGS_OFTEN)
    with pytest.raises(ValueError, match=re.escape(message)):
        trainer.fit(model(), mnist)
    assert trainer.global_step == 0


class SanityBest(L.Callback):
    """What the best so far holds when the sanity check ends."""

    def on_sanity_check_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.updates = module.val_acc_best.update_count


def test_the_sanity_checks_batches_never_count_for_the_best_so_far(mnist, tmp_path):
    sanity = SanityBest()
    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, logger=False, callbacks=[sanity], **LOGS_OFTEN)
    trainer.fit(MLPClassifier(hidden_dims=[8]), mnist)
    assert sanity.updates == 0 and trainer.callback_metrics["val/acc_best"] == trainer.callback_metrics["val/acc"]


def test_a_run_without_a_planned_end_trains_at_a_constant_rate(mnist, tmp_path):
    """max_epochs=-1: Lightning's estimate of the steps is infinite; one-cycle needs an end to anneal to."""
    trainer = L.Trainer(max_epochs=-1, max_time={"minutes": 5}, default_root_dir=tmp_path, logger=False, **LOGS_OFTEN)
    trainer.callbacks.append(StopAfterSteps(3))
    model = MLPClassifier(hidden_dims=[8], lr=0.01)
    trainer.fit(model, mnist)
    assert trainer.global_step == 3 and not trainer.lr_scheduler_configs
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.01


class StopAfterSteps(L.Callback):
    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        trainer.should_stop = trainer.global_step >= self.steps


def test_task_binary_on_data_of_three_classes_is_refused_naming_the_fix(mnist_dir):
    facts = DataFacts(task="multiclass", input_shape=(4,), class_names=("a", "b", "c"))
    model = Classifier(MLP, task="binary")
    with pytest.raises(ValueError, match=r"^task='binary' but the data has 3 classes: leave task out$"):
        model.build(facts)


def test_arguments_given_without_data_are_kept_over_the_defaults():
    model = Regressor(MLP(2, [], 1), target_mean=3.0, target_std=2.0)  # no data: nothing to check them against
    assert (model.target_mean, model.target_std) == (3.0, 2.0)
    assert model.predict_step(torch.zeros(1, 2), 0).shape == (1,)
    binary = Classifier(MLP(2, [], 1), task="binary")
    assert (binary.task, binary.num_classes) == ("binary", 2)
