"""MLPClassifier through the Lightning Trainer, on tiny MNIST files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import QUIET
from lightning.pytorch.tuner import Tuner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from nnmodules import MLPClassifier, ScratchDeepNet
from nnmodules.cli import make_trainer
from nnmodules.figures import ClassificationFigures
from nnmodules.tasks import task as tasks


class FirstBatches(L.Callback):
    """Records the sampler's epoch and the first batch's labels of every training epoch."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, torch.Tensor]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == 0:
            self.seen.append((trainer.train_dataloader.sampler.epoch, batch[1]))


@pytest.fixture(scope="module", autouse=True)
def in_tmp_dir(tmp_path_factory):
    """Runs this module's tests in a temporary folder: their lightning_logs/ go there, not into the repo."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("run"))
        yield


@pytest.fixture(scope="module")
def fitted(mnist_dir):
    """One short run shared by the tests below: fit 3 epochs, then test the best checkpoint."""
    from datamodules import MNISTDataModule

    L.seed_everything(0)
    data = MNISTDataModule(mnist_dir, batch_size=32, val_size=64, download=False)
    model = MLPClassifier(hidden_dims=(32,), lr=3e-3)
    trainer = make_trainer(max_epochs=3, log_every_n_steps=4, **QUIET)
    trainer.callbacks.append(FirstBatches())
    trainer.fit(model, data)
    metrics = dict(trainer.callback_metrics)
    metrics |= trainer.test(ckpt_path="best", datamodule=data, verbose=False)[0]
    return trainer, model, data, metrics


def test_fit_logs_the_design_metric_names_and_learns(fitted):
    *_, metrics = fitted
    names = {
        "train/loss",
        "train/loss_epoch",
        "train/acc",
        "val/loss",
        "val/acc",
        "val/acc_best",
        "test/loss",
        "test/acc",
    }
    assert names <= set(metrics)
    assert metrics["test/acc"] >= 0.9  # the fake digits are easy; chance is 0.1
    assert metrics["val/acc_best"] >= metrics["val/acc"]


def test_every_epoch_is_shuffled_anew(fitted):
    trainer, *_ = fitted
    (first_batches,) = (c for c in trainer.callbacks if isinstance(c, FirstBatches))
    assert [epoch for epoch, _ in first_batches.seen] == [0, 1, 2]
    labels = [labels for _, labels in first_batches.seen]
    assert not torch.equal(labels[0], labels[1]) and not torch.equal(labels[1], labels[2])


def test_checkpoint_alone_rebuilds_the_model(fitted):
    trainer, model, data, _ = fitted
    path = trainer.checkpoint_callback.last_model_path
    restored = MLPClassifier.load_from_checkpoint(path)
    assert restored.hparams == model.hparams
    images, _ = next(iter(data.test_dataloader()))
    model.eval()
    restored.eval()
    with torch.no_grad():
        assert torch.equal(restored(images), model(images))


def test_checkpoint_and_event_files_are_written(fitted):
    trainer, *_ = fitted
    assert trainer.checkpoint_callback.best_model_path.endswith(".ckpt")
    assert trainer.checkpoint_callback.last_model_path.endswith("last.ckpt")
    assert list(Path(trainer.log_dir).glob("events.out.tfevents.*"))


def test_predict_returns_class_probabilities(fitted):
    trainer, model, data, _ = fitted
    batches = trainer.predict(model, datamodule=data)
    probabilities = torch.cat(batches)
    assert probabilities.shape == (len(data.tables["test"]), 10)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(len(probabilities)))


def test_fast_dev_run_takes_one_step_and_one_validation_batch(mnist, tmp_path):
    model = MLPClassifier(input_dim=784, num_classes=10)  # given its widths: built now
    before = [parameter.clone() for parameter in model.parameters()]
    trainer = L.Trainer(fast_dev_run=True, default_root_dir=tmp_path, **QUIET)
    trainer.fit(model, mnist)
    assert trainer.global_step == 1 and trainer.num_val_batches == [1]
    assert all(not torch.equal(b, a) for b, a in zip(before, model.parameters(), strict=True))  # it stepped
    assert {"train/loss_epoch", "train/acc", "val/loss", "val/acc"} <= set(trainer.callback_metrics)
    assert list(tmp_path.iterdir()) == []  # a dry run writes no checkpoint and no log


def test_overfits_one_batch(mnist):
    L.seed_everything(0)
    model = MLPClassifier(hidden_dims=(64,), lr=1e-2)
    trainer = L.Trainer(overfit_batches=1, max_epochs=40, logger=False, enable_checkpointing=False, **QUIET)
    trainer.fit(model, mnist)
    assert trainer.callback_metrics["train/acc"] == 1.0
    assert trainer.callback_metrics["train/loss_epoch"] < 0.05


def test_takes_1x28x28_images(mnist_dir):
    from datamodules import MNISTDataModule

    data = MNISTDataModule(mnist_dir, batch_size=16, val_size=64, download=False, flatten=False)
    model, shapes = MLPClassifier(), []
    model.register_forward_hook(
        lambda module, inputs, output: shapes.append((inputs[0].shape, output.shape)) if module.training else None
    )
    trainer = L.Trainer(fast_dev_run=True, **QUIET)
    trainer.fit(model, data)
    assert shapes == [((16, 1, 28, 28), (16, 10))]  # the training step: images in, one score per class out
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])


def test_batch_size_finder_sets_the_data_modules_batch_size(mnist):
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, **QUIET)
    Tuner(trainer).scale_batch_size(MLPClassifier(), datamodule=mnist, init_val=8, max_trials=3, steps_per_trial=1)
    assert mnist.batch_size > 8  # doubled while nothing ran out of memory
    _, labels = next(iter(mnist.train_dataloader()))
    assert len(labels) == mnist.batch_size


def test_classification_figures_each_epoch(mnist):
    L.seed_everything(0)
    trainer = make_trainer(max_epochs=2, **QUIET)
    trainer.callbacks.append(ClassificationFigures(every_n_epochs=1, misclassified=4))
    trainer.fit(MLPClassifier(hidden_dims=(8,)), mnist)  # too small to be right about everything
    events = EventAccumulator(trainer.log_dir, size_guidance={"images": 0}).Reload()
    steps = [image.step for image in events.Images("classification/confusion")]
    assert steps == [trainer.global_step // 2, trainer.global_step]  # each epoch; the end of fit is the last
    assert ClassificationFigures().every_n_epochs == 2  # the default: see python -m benchmarks --only summaries
    assert "classification/misclassified" in events.Tags()["images"]  # MNIST says its inputs are 1x28x28 images


def test_hparams_tab_has_real_metrics_and_no_placeholder(fitted):
    trainer, *_ = fitted
    events = EventAccumulator(trainer.log_dir, size_guidance={"tensors": 0}).Reload()
    content = events.SummaryMetadata("_hparams_/experiment").plugin_data.content
    experiment = HParamsPluginData.FromString(content).experiment
    assert [info.name.tag for info in experiment.metric_infos] == ["val/acc_best", "test/acc"]
    assert {"hidden_dims", "lr", "batch_size", "val_size"} <= {info.name for info in experiment.hparam_infos}
    scalars = events.Tags()["scalars"]
    assert {"val/acc_best", "test/acc"} <= set(scalars) and "hp_metric" not in scalars  # values come from these


def test_figures_leave_training_unchanged(mnist):
    def weights(with_figures: bool) -> list[torch.Tensor]:
        L.seed_everything(0)
        model = MLPClassifier(hidden_dims=(8,))
        trainer = make_trainer(max_epochs=2, **QUIET)
        trainer.callbacks += [ClassificationFigures(every_n_epochs=1)] if with_figures else []
        trainer.fit(model, mnist)  # dropout draws from the global generator that a figure's DataLoader also uses
        return [p.detach().clone() for p in model.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(weights(False), weights(True), strict=True))


def test_epoch_training_metrics_count_every_step_once(mnist, monkeypatch):
    """The training metrics take a few steps per update (tasks.PENDING_STEPS); the epoch's values miss none."""
    monkeypatch.setattr(tasks, "PENDING_STEPS", 3)  # 8 steps an epoch: two full updates and a remainder
    steps: list[tuple[float, int, int]] = []

    class Recording(MLPClassifier):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            inputs, targets = batch
            correct = int((self(inputs).argmax(dim=1) == targets).sum())  # no dropout: the same outputs
            steps.append((loss.item(), correct, len(targets)))
            return loss

    L.seed_everything(0)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, **QUIET)
    trainer.fit(Recording(hidden_dims=(16,), dropout=0.0), mnist)
    rows = sum(n for *_, n in steps)
    assert len(steps) == 8 and rows == 256
    assert float(trainer.callback_metrics["train/acc"]) == pytest.approx(sum(c for _, c, _ in steps) / rows)
    mean_loss = sum(loss * n for loss, _, n in steps) / rows
    assert float(trainer.callback_metrics["train/loss_epoch"]) == pytest.approx(mean_loss, rel=1e-5)


@pytest.mark.parametrize("model_class", [MLPClassifier, ScratchDeepNet])
def test_the_host_reads_device_values_only_on_logging_and_metric_update_steps(model_class, mnist, monkeypatch):
    """Every read of a tensor's value on the host (`.item()`, `bool()`, ...) waits for a GPU to finish its
    work; a training step does none, except where the logger writes and where the pending steps enter
    the metrics. Counted on the CPU, where the same calls are made."""
    monkeypatch.setattr(tasks, "PENDING_STEPS", 4)
    reads: dict[int, int] = {}
    step: list[int | None] = [None]

    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        read = getattr(torch.Tensor, name)

        def counted(tensor, *args, read=read, **kwargs):
            if step[0] is not None:
                reads[step[0]] = reads.get(step[0], 0) + 1
            return read(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)

    class Steps(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            step[0] = batch_idx  # until the next step starts: Lightning's own bookkeeping after the step counts

        def on_train_epoch_end(self, trainer, module):
            step[0] = None

    trainer = make_trainer(max_epochs=1, log_every_n_steps=3, limit_val_batches=0, callbacks=[Steps()], **QUIET)
    trainer.fit(model_class(hidden_dims=[16]), mnist)  # 8 steps
    assert sorted(reads) == [2, 3, 5, 7]  # logged after steps 2 and 5; pending steps entered at steps 3 and 7


@pytest.mark.parametrize(("drop_last", "graphs"), [(True, 2), (False, 3)])
def test_compiled_training_compiles_once_per_mode_with_drop_last(mnist_dir, drop_last, graphs):
    """256 training rows in batches of 48: the short last batch compiles a second training graph unless dropped."""
    from datamodules import MNISTDataModule
    from nnmodules.callbacks import Compile

    compiled: list[torch.fx.GraphModule] = []

    def backend(graph: torch.fx.GraphModule, example_inputs: list) -> Callable:
        compiled.append(graph)
        return graph.forward  # runs the traced graph as it is

    L.seed_everything(0)
    data = MNISTDataModule(mnist_dir, batch_size=48, val_size=64, download=False, drop_last=drop_last)
    model = MLPClassifier(hidden_dims=(16,))
    trainer = make_trainer(max_epochs=2, callbacks=[Compile(backend=backend)], **QUIET)
    torch._dynamo.reset()  # no graphs from earlier tests
    trainer.fit(model, data)
    assert len(compiled) == graphs  # training (48 rows, and 16 without drop_last) and validation (64 rows)
    assert "forward" not in vars(model)  # plain again after fit: testing and tracing need no compilation
    assert trainer.test(model, datamodule=data, verbose=False)[0]["test/acc"] > 0.5


def test_compile_by_default_is_torch_compile_by_default():
    from nnmodules.callbacks import Compile

    assert Compile().options == {"mode": None, "dynamic": None, "backend": "inductor"}  # torch.compile's defaults


class StopAtStep(L.Callback):
    def on_train_batch_end(self, trainer, module, *args):
        raise RuntimeError("stopped")


def test_a_compiled_fit_that_fails_leaves_the_model_plain():
    from datamodules import ToyRegressionDataModule
    from nnmodules import ToyRegressor
    from nnmodules.callbacks import Compile

    model = ToyRegressor(optimizer="adam")
    trainer = make_trainer(max_steps=2, logger=False, callbacks=[Compile(backend="eager"), StopAtStep()], **QUIET)
    with pytest.raises(RuntimeError, match="stopped"):
        trainer.fit(model, ToyRegressionDataModule())
    assert "forward" not in vars(model)  # the class's forward again, not the compiled one
