"""Your own network: `Classifier` and `Regressor` with a network defined here, from Python and from YAML."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch
from conftest import CONFIGS, EXAMPLES, VAL_SIZE
from own_nets import TinyConvNet, TinyRegressionNet, Unrecorded
from test_runs import LOGS_OFTEN, Crash, CrashAtEpoch, trainer_in, weights
from torch import nn

from datamodules import DataFacts, MNISTDataModule, TabularDataModule, ToyRegressionDataModule
from nnmodules import MLP, Classifier, MLPClassifier, MLPRegressor, Regressor, ScratchDeepNet, SmallCNN, TableMLP
from nnmodules.cli import stages
from nnmodules.nets.configs import object_config

PEOPLE = EXAMPLES / "people.csv"
NAMES = {
    Classifier: {"train/loss", "train/loss_epoch", "train/acc", "val/loss", "val/acc", "val/acc_best"},
    Regressor: {"train/loss", "train/loss_epoch", "val/loss", "val/mse", "val/mae", "val/r2", "val/mse_best"},
}


class Misrecorded(nn.Module):
    """Keeps an attribute for its argument, but not of the argument's type: it cannot be built from it again."""

    def __init__(self, width: int = 2) -> None:
        super().__init__()
        self.width = f"{width} units"
        self.layer = nn.Linear(1, width)


class Keyed(nn.Module):
    """Keeps a dictionary whose keys are numbers: no config (and no checkpoint's hyperparameters) holds it."""

    def __init__(self, names: dict | None = None) -> None:
        super().__init__()
        self.names = names


def images(mnist_dir: Path) -> MNISTDataModule:
    return MNISTDataModule(mnist_dir, batch_size=32, val_size=VAL_SIZE, download=False, flatten=False)


def build(kind: str, mnist_dir: Path) -> tuple[L.LightningModule, L.LightningDataModule]:
    L.seed_everything(0, verbose=False)
    if kind == "classifier":
        return Classifier(TinyConvNet(), num_classes=10, lr=3e-3), images(mnist_dir)
    data = ToyRegressionDataModule(n_samples=200, batch_size=10)
    data.setup("fit")  # a table's widths are known once it is read
    return Regressor(TinyRegressionNet(data.num_features), lr=0.05), data


@pytest.fixture(scope="module")
def fitted(mnist_dir, tmp_path_factory) -> dict:
    """Each task with its own network, fitted for 3 epochs: trainer, model, data and final weights."""
    runs = {}
    for kind in ("classifier", "regressor"):
        model, data = build(kind, mnist_dir)
        trainer = trainer_in(tmp_path_factory.mktemp(kind), kind, max_epochs=3)
        trainer.fit(model, data)
        runs[kind] = trainer, model, data, weights(model)
    return runs


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_your_own_network_trains_and_logs_the_tasks_metric_names(kind, fitted):
    trainer, model, data, _ = fitted[kind]
    assert NAMES[type(model)] <= set(trainer.callback_metrics)
    if kind == "classifier":  # chance is 0.1 on the fake digits
        assert trainer.callback_metrics["val/acc_best"] >= 0.5
    else:  # the line's variance is about 4 + 0.09
        assert trainer.callback_metrics["val/mse_best"] < 1.0


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_a_checkpoint_alone_builds_your_own_network_again(kind, fitted):
    trainer, model, data, _ = fitted[kind]
    path = trainer.checkpoint_callback.last_model_path
    checkpoint = torch.load(path, weights_only=True)  # plain data: the network as its config
    assert checkpoint["hyper_parameters"]["net"]["class_path"] == f"own_nets.{type(model.net).__name__}"
    restored = type(model).load_from_checkpoint(path)
    assert type(restored.net) is type(model.net) and restored.net is not model.net
    inputs, _ = next(iter(data.val_dataloader()))
    with torch.no_grad():
        torch.testing.assert_close(restored.eval()(inputs), model.eval()(inputs), rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_your_own_network_resumes_bitwise(kind, fitted, mnist_dir, tmp_path):
    full_trainer, _, _, full_weights = fitted[kind]
    model, data = build(kind, mnist_dir)
    trainer = trainer_in(tmp_path, kind, max_epochs=3)
    trainer.callbacks.append(CrashAtEpoch(2))
    with pytest.raises(Crash):
        trainer.fit(model, data)
    model, data = build(kind, mnist_dir)
    resumed = trainer_in(tmp_path, kind, "last", max_epochs=3)
    resumed.fit(model, data, ckpt_path="last")
    assert resumed.global_step == full_trainer.global_step
    assert all(torch.equal(full_weights[name], tensor) for name, tensor in weights(model).items())


def test_a_network_from_yaml_is_built_with_the_datas_widths_and_again_from_its_checkpoint(
    mnist_dir, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # lightning_logs/ goes there
    config = tmp_path / "own.yaml"
    config.write_text(
        "model:\n"
        "  class_path: nnmodules.Classifier\n"
        "  init_args:\n"
        "    net:\n"
        "      class_path: own_nets.TinyConvNet\n"
        "      init_args: {width: 3}\n"
        "data:\n"
        "  class_path: datamodules.MNISTDataModule\n"
        f"  init_args: {{data_dir: {mnist_dir}, val_size: {VAL_SIZE}, download: false, flatten: false}}\n"
        "trainer: {max_epochs: 1, enable_progress_bar: false}\n"
    )
    cli = stages.fit(["--config", str(config), "--data.init_args.batch_size=64"])
    assert isinstance(cli.model.net, TinyConvNet) and (cli.model.net.width, cli.model.num_classes) == (3, 10)
    assert cli.model.hparams["net"] == {
        "class_path": "own_nets.TinyConvNet",
        "init_args": {"num_classes": 10, "width": 3, "dropout": 0.2},  # only what it takes: no input_dim
    }
    restored = Classifier.load_from_checkpoint(cli.trainer.checkpoint_callback.last_model_path)
    assert restored.net.width == 3 and torch.equal(restored.net.layers[0].weight, cli.model.net.layers[0].weight)


def test_the_small_cnn_gets_channels_size_and_classes_from_the_data(mnist_dir, tmp_path):
    cli = stages.fit(
        [
            "--config",
            str(CONFIGS / "mnist_cnn.yaml"),
            f"--data.data_dir={mnist_dir}",
            f"--data.val_size={VAL_SIZE}",
            "--data.download=false",
            "--trainer.fast_dev_run=true",
        ]
    )
    net = cli.model.net
    assert isinstance(net, SmallCNN) and (net.in_channels, net.image_size, net.num_classes) == (1, 28, 10)
    assert cli.model.example_input_array.shape == (1, 1, 28, 28)  # the data's, for TensorBoard's graph


def test_a_binary_table_through_a_one_logit_network_from_the_command_line(tmp_path):
    args = [f"--data.csv={PEOPLE}", "--data.target=renewed", "--data.drop=[id]", "--data.batch_size=32"]
    net = ["--model.net=nnmodules.MLP", "--model.net.init_args.hidden_dims=[8]"]
    cli = stages.fit(["--data=TabularDataModule", *args, "--model=Classifier", *net,
                       "--trainer.fast_dev_run=true"])  # fmt: skip
    assert (cli.model.task, cli.model.num_classes, cli.model.net.output_dim) == ("binary", 2, 1)  # linked
    assert cli.model.net.input_dim == cli.datamodule.num_features
    probabilities = cli.model.predict_step(torch.zeros(3, cli.model.net.input_dim), 0)
    assert probabilities.shape == (3, 2)


def passed_through(init):
    """A decorator, as a user (or a mutation tester) may put on an __init__."""

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        return init(self, *args, **kwargs)

    return wrapper


class WrappedBase(Classifier):
    @passed_through
    def __init__(self, net: nn.Module, classes: int = 10) -> None:
        super().__init__(net, num_classes=classes)


class OnAWrappedBase(WrappedBase):
    def __init__(self, width: int = 2, note: str = "") -> None:
        super().__init__(TinyConvNet(width=width))


def test_the_arguments_of_a_subclass_of_an_init_behind_a_decorator_are_its_hyperparameters():
    # Lightning's save_hyperparameters stops at the decorator's frame, and would miss width and note
    assert dict(OnAWrappedBase(width=3, note="kept").hparams) == {"width": 3, "note": "kept"}


class PassesOptionsOn(Classifier):
    """A subclass with keyword-only arguments that passes the rest on to `Classifier`."""

    def __init__(self, *notes: str, width: int = 2, **options) -> None:
        super().__init__(TinyConvNet(width=width), num_classes=10, **options)


def test_a_subclass_that_passes_keywords_on_keeps_what_it_was_given_not_its_bases_objects():
    model = PassesOptionsOn("a note", width=3, lr=0.01)
    # failed: the network and the metrics of Classifier's and TaskModule's frames were hyperparameters too
    assert dict(model.hparams) == {"width": 3, "lr": 0.01}
    assert PassesOptionsOn(**model.hparams).net.width == 3


def test_the_scratch_net_for_a_binary_task_needs_no_class_count():
    model = ScratchDeepNet(input_dim=5, task="binary")  # failed: "got 'binary', 10"
    assert model.num_classes == 2 and model.net.output_dim == 1


def test_a_network_a_checkpoint_cannot_build_again_is_refused_before_training(mnist, tmp_path):
    model = Classifier(Unrecorded(10), num_classes=10)
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, max_epochs=1, **LOGS_OFTEN)
    message = "no checkpoint could build this network again: own_nets.Unrecorded keeps no attribute 'width'"
    with pytest.raises(ValueError, match=re.escape(message)):
        trainer.fit(model, mnist)
    assert trainer.global_step == 0 and not list(tmp_path.rglob("*.ckpt"))
    trainer = L.Trainer(logger=False, max_epochs=1, enable_checkpointing=False, **LOGS_OFTEN)
    trainer.fit(model, mnist)  # without checkpoints it trains
    assert trainer.global_step > 0
    with pytest.raises(ValueError, match=re.escape(message)):
        trainer.save_checkpoint(tmp_path / "by-hand.ckpt")
    assert not (tmp_path / "by-hand.ckpt").exists()


def local_network() -> nn.Module:
    class Local(nn.Linear):
        def __init__(self) -> None:
            super().__init__(2, 2)

    return Local()


@pytest.mark.parametrize(
    ("net", "reason"),
    [
        (Unrecorded(3), "own_nets.Unrecorded keeps no attribute 'width' for its argument of that name"),
        (nn.Sequential(nn.Linear(2, 2)), "torch.nn.Sequential takes *args, whose values"),
        (
            local_network(),
            "test_networks.local_network.<locals>.Local is defined in a function, where no checkpoint can import",
        ),
        (TinyRegressionNet(3, output_dim=1).requires_grad_(False), None),
    ],
)
def test_a_network_is_written_as_its_class_and_arguments_or_refused_saying_why(net, reason):
    if reason is None:
        config = object_config(net)
        assert config == {
            "class_path": "own_nets.TinyRegressionNet",
            "init_args": {"input_dim": 3, "output_dim": 1},
        }
        return
    with pytest.raises(ValueError, match=re.escape(reason)):
        object_config(net)


FIX = (
    "give the network's class instead, Classifier(net=MyNet) (the data fills its widths), or "
    "functools.partial(MyNet, width=64); or keep each argument as an attribute of the same name (self.width = width)"
)


@pytest.mark.parametrize(
    ("net", "reason"),
    [
        (
            Misrecorded(2),
            "test_networks.Misrecorded(width='2 units') cannot be built again (empty(): argument 'size'",
        ),
        (Keyed({1: "one"}), "test_networks.Keyed's names is a dict, not plain data a checkpoint holds: "),
    ],
)
def test_a_refusal_names_the_argument_and_the_three_ways_out(net, reason):
    with pytest.raises(ValueError, match=f"^{re.escape(reason)}.*{re.escape(FIX)}$"):
        object_config(net)


class Shaped(nn.Module):
    """Keeps its argument as the tuple it was given."""

    def __init__(self, sizes: tuple[int, ...] = (2, 3)) -> None:
        super().__init__()
        self.sizes = tuple(sizes)
        self.layer = nn.Linear(*self.sizes)


def test_a_tuple_argument_is_written_as_a_list_as_yaml_and_the_cli_write_it():
    config = object_config(Shaped((4, 5)))
    assert config["init_args"]["sizes"] == [4, 5] and type(config["init_args"]["sizes"]) is list


def test_a_network_without_arguments_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # lightning_logs/ goes there
    arguments = ["--model", "nnmodules.Regressor", "--model.init_args.net", "own_nets.NoArguments"]
    arguments += ["--data", "datamodules.ToyRegressionDataModule", "--trainer.max_steps=2", "--trainer.logger=false"]
    arguments += [f"--trainer.default_root_dir={tmp_path}"]  # without a logger, checkpoints go there
    cli = stages.fit([*arguments])  # failed: "Expected key net.init_args.output_dim to be in data"
    assert cli.model.hparams["net"] == {"class_path": "own_nets.NoArguments", "init_args": {}}
    restored = Regressor.load_from_checkpoint(cli.trainer.checkpoint_callback.last_model_path)
    assert torch.equal(restored.net.layer.weight, cli.model.net.layer.weight)


def test_a_table_mlp_embeds_the_numbers_and_passes_the_rest_on_as_they_are():
    net = TableMLP(input_dim=5, hidden_dims=[8], output_dim=2, numeric_features=2, embedding_dim=4)
    assert net.mlp[1].in_features == 2 * 4 + 3  # two numbers of 4 values each, then three inputs as they were
    inputs = torch.zeros(3, 5)
    embedded = torch.cat([net.numbers(inputs[:, :2]).flatten(1), inputs[:, 2:]], dim=1)
    assert torch.equal(net(inputs), net.mlp(embedded))
    inputs[:, 2:] = torch.eye(3)  # one-hot inputs reach the MLP unchanged
    assert torch.equal(net(inputs), net.mlp(torch.cat([embedded[:, :8], torch.eye(3)], dim=1)))
    assert object_config(net)["init_args"]["numeric_features"] == 2  # a checkpoint builds it again
    with pytest.raises(ValueError, match=r"numeric_features must be from 0 to input_dim \(5\), got 6"):
        TableMLP(input_dim=5, hidden_dims=[8], output_dim=2, numeric_features=6)
    preset = MLPClassifier(5, [8], num_classes=2, numeric_features=2)  # the CLI links numeric_features
    assert isinstance(preset.net, TableMLP)
    MLPClassifier(**preset.hparams).load_state_dict(preset.state_dict())  # its checkpoint's arguments build it


def test_a_network_whose_attributes_build_another_is_refused():
    net = TinyConvNet(width=4)
    net.width = 5  # the attribute says 5, the layers were built with 4
    with pytest.raises(ValueError, match=r"TinyConvNet\(num_classes=10, width=5, dropout=0.2\) builds another"):
        object_config(net)


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        (
            lambda: Classifier(TinyConvNet(num_classes=3), num_classes=10),
            images,
            "the network (TinyConvNet) gives outputs of shape (3,) per example, where a Classifier needs (10,)",
        ),
        (
            lambda: Classifier(MLP(100, [], 10), num_classes=10),
            images,
            "the network (MLP) takes input_dim=100 but MNISTDataModule gives 784: build it with input_dim=784",
        ),
        (
            lambda: Classifier(TinyRegressionNet(784, output_dim=10), num_classes=10),
            images,
            "the network (TinyRegressionNet) cannot take the inputs of MNISTDataModule, of shape (1, 28, 28)",
        ),
        (
            lambda: Regressor(TinyRegressionNet(784)),
            images,
            "MNISTDataModule is a multiclass task, which a Regressor does not learn: use a Classifier "
            "(e.g. MLPClassifier)",
        ),
        (
            lambda: Classifier(MLP(1, [], 2), num_classes=2),
            lambda _: ToyRegressionDataModule(),
            "ToyRegressionDataModule is a regression task, which a Classifier does not learn: use a Regressor",
        ),
    ],
    ids=["outputs", "input-width", "input-shape", "regressor-for-classes", "classifier-for-numbers"],
)
def test_a_network_that_does_not_fit_the_data_is_refused_before_the_first_step(model, data, message, mnist_dir):
    trainer = L.Trainer(logger=False, enable_checkpointing=False, max_epochs=1, **LOGS_OFTEN)
    with pytest.raises(ValueError, match=re.escape(message)):
        trainer.fit(model(), data(mnist_dir))
    assert trainer.global_step == 0


def test_task_binary_has_two_classes_and_a_regression_task_is_not_classification():
    assert Classifier(MLP(2, [], 1), task="binary").num_classes == 2
    with pytest.raises(ValueError, match=re.escape("task='binary' has 2 classes, got num_classes=3")):
        Classifier(MLP(2, [], 1), num_classes=3, task="binary")
    with pytest.raises(ValueError, match=re.escape("task='regression' is a Regressor's (e.g. MLPRegressor)")):
        Classifier(MLP(2, [], 1), num_classes=2, task="regression")


def test_tables_of_numbers_have_an_mlp_regressor(tmp_path):
    data = TabularDataModule(PEOPLE, target="income", drop=["id"], standardize_target=True, batch_size=32)
    with pytest.warns(UserWarning, match=r"^dropped 45 rows of data file .* whose target is missing$"):
        data.setup("fit")
    facts = data.facts
    model = MLPRegressor(data.num_features, target_mean=facts.target_mean, target_std=facts.target_std)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, max_epochs=2, **LOGS_OFTEN)
    trainer.fit(model, data)
    assert NAMES[Regressor] <= set(trainer.callback_metrics)


@pytest.mark.parametrize(
    ("model", "target", "message"),
    [
        (
            MLPRegressor,
            [1, 2, 3] * 20,  # three whole numbers: classes, as the data sees them
            "TabularDataModule is a multiclass task, which a MLPRegressor does not learn: use a Classifier (e.g. "
            "MLPClassifier); or, if the target is a number, tell the data: --data.task regression (task='regression')",
        ),
        (
            MLPClassifier,
            [i / 7 for i in range(60)],
            "TabularDataModule is a regression task, which a MLPClassifier does not learn: use a Regressor (e.g. "
            "MLPRegressor); or, if the target is classes, tell the data: --data.task multiclass (task='multiclass')",
        ),
    ],
    ids=["regressor-on-classes", "classifier-on-numbers"],
)
def test_a_model_of_another_task_is_refused_naming_both_fixes(model, target, message):
    frame = pd.DataFrame({"a": [i % 7 for i in range(60)], "y": target})
    trainer = L.Trainer(logger=False, enable_checkpointing=False, max_epochs=1, **LOGS_OFTEN)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):  # failed: "layer widths must be positive"
        trainer.fit(model(), TabularDataModule(frame, target="y", batch_size=8))
    assert trainer.global_step == 0


def test_a_tables_mlp_keeps_its_dropout_and_takes_its_numbers_as_the_datas_first_part():
    facts = DataFacts(task="binary", input_shape=(5,), class_names=("no", "yes"), numeric_features=2)
    assert facts.parts == {"numbers": 2, "others": 3}
    model = MLPClassifier(hidden_dims=[8], dropout=0.3, embed_numbers=True)
    model.build(facts)
    assert isinstance(model.net, TableMLP) and model.net.numeric_features == 2
    rates = [module.p for module in model.net.modules() if isinstance(module, nn.Dropout)]
    assert rates and set(rates) == {0.3}  # failed: the embeddings' MLP without its dropout


def test_an_mlps_dropout_follows_each_hidden_layer_and_one_is_refused():
    layers = [type(layer).__name__ for layer in MLP(4, [8, 8], 2, dropout=0.5)]
    assert layers == ["Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    with pytest.raises(ValueError, match=re.escape("dropout must be in [0, 1), got 1.0")):
        MLP(4, [8], 2, dropout=1.0)  # every unit dropped: the outputs would be the last bias alone
