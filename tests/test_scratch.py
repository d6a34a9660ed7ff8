"""ScratchDeepNet: the tutorials' functions, the hand-written step, what it logs."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from conftest import CONFIGS, QUIET, VAL_SIZE
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from datamodules import MNISTDataModule
from datamodules.batches import TensorTable, batch_loader
from nnmodules import ScratchDeepNet
from nnmodules.cli import make_trainer, run
from nnmodules.presets import TutorialSGD


def test_parameters_are_one_weight_matrix_and_bias_per_layer():
    model = ScratchDeepNet(input_dim=12, hidden_dims=[10, 10], num_classes=2, task="binary", init="tutorial")
    assert [tuple(w.shape) for w in model.net.weights] == [(12, 10), (10, 10), (10, 1)]
    assert [tuple(b.shape) for b in model.net.biases] == [(), (), ()]  # the tutorial's one constant per layer
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    for weight in model.net.weights:  # (rand - 0.3) / n_out * 4
        n_out = weight.shape[1]
        assert weight.min() >= -0.3 / n_out * 4 and weight.max() < 0.7 / n_out * 4
    kaiming = ScratchDeepNet(input_dim=784, hidden_dims=[64], num_classes=10)
    assert [tuple(b.shape) for b in kaiming.net.biases] == [(64,), (10,)]
    assert kaiming.net.weights[0].std().item() == pytest.approx((2 / 784) ** 0.5, rel=0.1)


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")  # one step alone
def test_one_step_is_p_minus_lr_times_grad(mnist):
    L.seed_everything(0)
    model = ScratchDeepNet(input_dim=784, hidden_dims=[16], num_classes=10, lr=0.3)  # no data module: its widths
    mnist.setup("fit")
    images, labels = next(iter(mnist.train_dataloader()))
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.nll_loss(model.net.calc_preds(images), labels)  # what calc_loss should compute
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected = [p - 0.3 * g for p, g in zip(before, grads, strict=True)]

    trainer = L.Trainer(max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False, **QUIET)
    trainer.fit(model, train_dataloaders=batch_loader(TensorTable(images, labels), batch_size=len(labels)))
    for got, want in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(got.detach(), want)
    assert isinstance(trainer.optimizers[0], TutorialSGD) and trainer.global_step == 1  # a step Lightning counts


@pytest.mark.parametrize("loss", ["mae", "bce"])
def test_binary_losses(loss):
    model = ScratchDeepNet(input_dim=3, hidden_dims=[4], num_classes=2, task="binary", loss=loss)
    preds, targets = torch.tensor([0.9, 0.2]), torch.tensor([1, 1])
    want = (preds - 1).abs().mean() if loss == "mae" else -torch.log(preds).mean()
    torch.testing.assert_close(model.calc_loss(preds, targets), want)


def test_logs_histograms_and_gradient_norm_each_epoch(mnist, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # lightning_logs/ goes there
    L.seed_everything(0)
    trainer = make_trainer(max_epochs=2, **QUIET)
    trainer.fit(ScratchDeepNet(hidden_dims=[16]), mnist)
    events = EventAccumulator(trainer.log_dir, size_guidance={"histograms": 0}).Reload()
    tags = events.Tags()
    layers = {f"net.{kind}.{i}" for kind in ("weights", "biases") for i in (0, 1)}
    assert {f"parameters/{name}" for name in layers} | {f"gradients/{name}" for name in layers} <= set(
        tags["histograms"]
    )
    assert [event.step for event in events.Histograms("parameters/net.weights.0")] == [0, 1]
    assert [event.step for event in events.Histograms("gradients/net.weights.0")] == [0, 1]
    gradient = events.Histograms("gradients/net.weights.0")[-1].histogram_value
    assert gradient.max > gradient.min  # a real gradient, not the zeros update_coeffs leaves behind
    assert "train/grad_norm" in tags["scalars"] and "train/acc" in tags["scalars"]


def test_an_ordinary_optimizer_replaces_update_coeffs(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data_args = [f"--data.data_dir={mnist_dir}", f"--data.val_size={VAL_SIZE}", "--data.download=false"]
    args = ["fit", "--config", str(CONFIGS / "mnist_scratch.yaml"), *data_args, "--trainer.fast_dev_run=true"]
    with pytest.warns(UserWarning, match="will be overridden by `LitCLI.configure_optimizers`"):
        cli = run([*args, "--optimizer=Adam", "--optimizer.lr=0.01"])
    assert isinstance(cli.trainer.optimizers[0], torch.optim.Adam)
    assert cli.model.hparams.input_dim == 784 and cli.model.hparams.num_classes == 10  # from the data
    assert cli.trainer.global_step == 1


def test_learns_the_fake_digits(mnist_dir):
    L.seed_everything(0)
    data = MNISTDataModule(mnist_dir, batch_size=16, val_size=VAL_SIZE, download=False)
    model = ScratchDeepNet(hidden_dims=[32], lr=0.2)
    trainer = L.Trainer(max_epochs=5, logger=False, enable_checkpointing=False, **QUIET)
    trainer.fit(model, data)
    assert trainer.test(model, datamodule=data, verbose=False)[0]["test/acc"] >= 0.9
