"""Networks of k members in one (`nets.Ensemble`, `nets.TabM`): trained member by member, answering together."""

from __future__ import annotations

import json

import lightning as L
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import EXAMPLES
from test_runs import Crash, CrashAtEpoch, trainer_in, weights
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from datamodules import TabularDataModule
from datamodules.contract import DataFacts
from nnmodules import Classifier, Regressor, TabM, load_run
from nnmodules.nets import Ensemble
from nnmodules.nets.configs import object_config

PEOPLE = EXAMPLES / "people.csv"


class LinearMembers(Ensemble):
    """k linear maps of the same inputs: member j gives `inputs @ weight[j]`."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.k = weight.shape[0]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ni,kio->nko", inputs, self.weight)


def members_of(weight: torch.Tensor, inputs: torch.Tensor) -> list[torch.Tensor]:
    """Each member's outputs, one member at a time: the second route to what the model computes at once."""
    return [inputs @ weight[j] for j in range(weight.shape[0])]


INPUTS = torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25], [2.0, 2.0]])


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_the_model_answers_with_the_mean_of_its_members_probabilities_or_numbers(task):
    outputs = {"multiclass": 3, "binary": 1, "regression": 1}[task]
    weight = torch.randn(3, 2, outputs, generator=torch.Generator().manual_seed(0))
    if task == "regression":
        model = Regressor(LinearMembers(weight), target_mean=10.0, target_std=2.0)
        expected = sum(out.squeeze(1) for out in members_of(weight, INPUTS)) / 3 * 2.0 + 10.0
        torch.testing.assert_close(model.predict_step(INPUTS, 0), expected)
        return
    model = Classifier(LinearMembers(weight), task=task)
    if task == "binary":
        positive = sum(torch.sigmoid(out.squeeze(1)) for out in members_of(weight, INPUTS)) / 3
        expected = torch.stack([1 - positive, positive], dim=1)
    else:
        expected = sum(out.softmax(dim=1) for out in members_of(weight, INPUTS)) / 3
    torch.testing.assert_close(model.predict_step(INPUTS, 0), expected)  # failed: the mean of the logits
    assert not torch.allclose(expected, model.probabilities(sum(members_of(weight, INPUTS)).squeeze(-1) / 3))


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_each_member_learns_from_its_own_outputs_the_loss_is_the_mean_of_theirs(task):
    weight = torch.randn(2, 2, 3 if task == "multiclass" else 1, generator=torch.Generator().manual_seed(1))
    if task == "multiclass":
        model, targets = Classifier(LinearMembers(weight), num_classes=3), torch.tensor([0, 2, 1, 2])
        losses = [F.cross_entropy(out, targets) for out in members_of(weight, INPUTS)]
    else:
        model, targets = Regressor(LinearMembers(weight)), torch.tensor([1.0, -1.0, 0.5, 2.0])
        losses = [F.mse_loss(out.squeeze(1), targets) for out in members_of(weight, INPUTS)]
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, log_every_n_steps=1, limit_val_batches=0)  # fmt: skip
    batch = DataLoader(TensorDataset(INPUTS, targets), batch_size=len(targets))
    trainer.fit(model, batch, batch)  # not validated (limit_val_batches=0)
    # the loss of the first step, before its update: each row's target beside each member's output of that row
    torch.testing.assert_close(trainer.callback_metrics["train/loss"], sum(losses) / 2)


class Unset(Ensemble):
    """An ensemble that forgot its k."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 3)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.layer(inputs).unsqueeze(1).expand(-1, 2, -1)


class Miscounted(Unset):
    """An ensemble of 2 that says 3."""

    k = 3


@pytest.mark.parametrize(
    ("net", "message"),
    [
        (Unset, r"the network \(Unset\) is an Ensemble, whose k \(members per example\) is not set: set self.k"),
        (Miscounted, r"the network \(Miscounted\) has k=3 members but gives outputs of shape \(2, 3\) per example"),
    ],
)
def test_an_ensemble_that_miscounts_its_members_is_refused_before_training(net, message):
    model = Classifier(net(), num_classes=3)
    facts = DataFacts(task="multiclass", input_shape=(2,), class_names=("a", "b", "c"))
    with pytest.raises(ValueError, match=message):
        model.check_data(facts, "the data")


def test_tabm_embeds_the_numbers_passes_the_rest_on_and_is_rebuilt_from_its_config():
    net = TabM(input_dim=5, output_dim=2, numeric_features=2, k=4, d_block=8, embedding_dim=3)
    assert net.backbone.blocks[0][0].in_features == 2 * 3 + 3  # two numbers of 3 values each, three other inputs
    assert len(net.backbone.blocks) == 2  # the authors' depth with embedded numbers (3 without)
    outputs = net.eval()(torch.randn(6, 5))
    assert outputs.shape == (6, 4, 2) and not torch.allclose(outputs[:, 0], outputs[:, 1])  # four members, not one
    config = object_config(net)
    assert config["class_path"] == "nnmodules.TabM" and config["init_args"]["numeric_features"] == 2
    with pytest.raises(ValueError, match=r"numeric_features must be from 0 to input_dim \(5\), got 6"):
        TabM(input_dim=5, output_dim=2, numeric_features=6)
    with pytest.raises(ValueError, match=r"arch_type must be 'tabm', 'tabm-mini' or 'tabm-packed', got 'tabm-big'"):
        TabM(input_dim=5, output_dim=2, arch_type="tabm-big")


def tabm_fit(tmp_path, *extra: str) -> list[str]:
    return ["fit", "--model=Classifier", "--model.net=nnmodules.TabM", "--model.net.init_args.k=4",
            "--model.net.init_args.d_block=16", "--data=TabularDataModule", f"--data.csv={PEOPLE}",
            "--data.target=renewed", "--data.drop=[id]", "--trainer.max_epochs=2", *extra]  # fmt: skip


def test_tabm_from_the_command_line_is_tested_predicted_and_exported_from_its_checkpoint(
    tmp_path, monkeypatch, console
):
    monkeypatch.chdir(tmp_path)
    assert console(*tabm_fit(tmp_path))[0] == 0
    (checkpoint,) = tmp_path.rglob("last.ckpt")
    model, data = load_run(checkpoint)
    assert isinstance(model.net, TabM) and model.net.numeric_features == 3  # age, income, visits: from the data
    data.setup("test")
    inputs, targets = data.table("test").tensors
    with torch.no_grad():
        probabilities = model.eval().predict_step(inputs, 0)
    accuracy = float(((probabilities[:, 1] > 0.5).long() == targets).float().mean())
    assert console("test", "--ckpt_path", checkpoint)[0] == 0
    (written,) = tmp_path.rglob("test_metrics.json")
    assert json.loads(written.read_text())["last.ckpt"]["test/acc"] == pytest.approx(accuracy, abs=1e-6)
    assert console("export", "--ckpt_path", checkpoint)[0] == 0  # checked there against the model, as any export
    assert console("predict", "--ckpt_path", checkpoint)[0] == 0
    (predicted,) = tmp_path.rglob("predictions/test.csv")
    written = torch.tensor(pd.read_csv(predicted).iloc[:, -2:].to_numpy(), dtype=torch.float32)
    torch.testing.assert_close(written, probabilities, atol=1e-5, rtol=0)  # the members' mean, as written (6 digits)


def test_tabm_resumes_bitwise(tmp_path):
    def build():
        L.seed_everything(0, verbose=False)
        data = TabularDataModule(PEOPLE, target="renewed", drop=["id"], batch_size=64)
        return Classifier(net=TabM, lr=3e-3), data  # the class: the data fills its widths

    model, data = build()
    full = trainer_in(tmp_path / "full", "tabm", max_epochs=3)
    full.fit(model, data)
    full_weights = weights(model)
    model, data = build()
    stopped = trainer_in(tmp_path / "stopped", "tabm", max_epochs=3, callbacks=[CrashAtEpoch(2)])
    with pytest.raises(Crash):
        stopped.fit(model, data)
    model, data = build()
    resumed = trainer_in(tmp_path / "stopped", "tabm", "last", max_epochs=3)
    resumed.fit(model, data, ckpt_path="last")
    assert resumed.global_step == full.global_step
    assert all(torch.equal(full_weights[name], tensor) for name, tensor in weights(model).items())
