"""The presets train as they did before they became `Classifier`/`Regressor` over `nnmodules.nets`.

The numbers were recorded with the code before that change (commit 436c08b): the same seed, data and
settings, two epochs each; per weight tensor, its sum and the sum of its absolute values. The presets
then held their layers themselves, so a few names moved (the scratch net's under `net.`, the toy
net's one place on, behind the MLP's `Flatten`); the values did not.
"""

from __future__ import annotations

import lightning as L
import pytest

from datamodules import MNISTDataModule, ToyRegressionDataModule
from nnmodules import MLPClassifier, ScratchDeepNet, ToyRegressor
from nnmodules.cli import make_trainer

RECORDED = {
    "mlp": {
        "net.1.weight": (-2.190187494, 1801.786735098),
        "net.1.bias": (-0.005259703, 2.253472787),
        "net.4.weight": (1.457985047, 723.410495135),
        "net.4.bias": (-1.251895437, 5.624931048),
        "net.7.weight": (-2.940356577, 55.652672539),
        "net.7.bias": (0.103581131, 0.39779084),
    },
    "scratch": {
        "net.weights.0": (19.216944658, 652.761637705),
        "net.weights.1": (-0.419358315, 50.541464835),
        "net.biases.0": (0.162373712, 0.265253039),
        "net.biases.1": (5e-09, 0.100976597),
    },
    "toy": {
        "net.1.weight": (2.568869002, 3.088878386),
        "net.1.bias": (14.785920382, 14.785920382),
        "net.3.weight": (0.573087215, 3.268340945),
        "net.3.bias": (-0.28635329, 0.28635329),
    },
}
BEST = {"mlp": ("val_acc_best.max_value", 1.0), "scratch": ("val_acc_best.max_value", 1.0)}
BEST["toy"] = ("val_mse_best.min_value", 0.10445208847522736)


def recipe(kind: str, mnist_dir) -> tuple[L.LightningModule, L.LightningDataModule]:
    """Each preset with the recipe of its config, as recorded."""
    if kind == "mlp":
        model = MLPClassifier(hidden_dims=[128, 128], dropout=0.1, lr=0.003)
        return model, MNISTDataModule(mnist_dir, batch_size=128, val_size=64, download=False)
    if kind == "scratch":
        model = ScratchDeepNet(hidden_dims=[20], lr=0.2, lr_schedule="cosine")
        return model, MNISTDataModule(mnist_dir, batch_size=32, val_size=64, download=False)
    return ToyRegressor(hidden_dims=[5], init="active", optimizer="lbfgs", lr=1.0), ToyRegressionDataModule()


@pytest.mark.parametrize("kind", sorted(RECORDED))
def test_a_preset_trains_to_the_weights_the_code_before_it_did(kind, mnist_dir):
    L.seed_everything(42, verbose=False)
    model, data = recipe(kind, mnist_dir)
    quiet = {"enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}
    trainer = make_trainer(max_epochs=2, logger=False, enable_checkpointing=False, callbacks=[], **quiet)
    trainer.fit(model, data)
    state = model.state_dict()
    weights = {name: tensor for name, tensor in state.items() if "best" not in name}
    assert weights.keys() == RECORDED[kind].keys()
    for name, (total, absolute) in RECORDED[kind].items():
        tensor = weights[name].double()
        assert (float(tensor.sum()), float(tensor.abs().sum())) == pytest.approx((total, absolute), rel=1e-5, abs=1e-7)
    best, value = BEST[kind]
    assert float(state[best]) == pytest.approx(value, rel=1e-6)
