"""What a person sees in TensorBoard: the event files of each model, and a real TensorBoard server reading them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
from conftest import QUIET, in_another_process
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from datamodules import ToyRegressionDataModule
from nnmodules import MLPClassifier, ScratchDeepNet, ToyRegressor
from nnmodules.callbacks import ClassificationFigures, HParamsMetrics, LearningCurves, RegressionFigures
from nnmodules.cli import make_trainer

LOGS_EVERY_2 = {**QUIET, "log_every_n_steps": 2}


class ValAccuracy(L.Callback):
    """What the model logged as val/acc, epoch by epoch, as the trainer saw it."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_epoch_end(self, trainer, module):
        self.values.append(float(trainer.callback_metrics["val/acc"]))


def fit(model, data, callbacks, epochs=2):
    L.seed_everything(0)
    trainer = make_trainer(max_epochs=epochs, **LOGS_EVERY_2)
    trainer.callbacks += callbacks
    trainer.fit(model, data)
    trainer.test(model, datamodule=data, verbose=False)
    return trainer


@pytest.fixture(scope="module")
def runs(mnist_dir, tmp_path_factory):
    """One short run of each model, with the figures its config draws, under one logs folder."""
    from datamodules import MNISTDataModule

    folder = tmp_path_factory.mktemp("tensorboard")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        mnist = MNISTDataModule(mnist_dir, batch_size=32, val_size=64, download=False)
        val_acc = ValAccuracy()
        trainers = {
            "mlp": fit(MLPClassifier(hidden_dims=(16,)), mnist, [ClassificationFigures(every_n_epochs=1), val_acc]),
            "scratch": fit(ScratchDeepNet(hidden_dims=[16]), mnist, [LearningCurves(), ClassificationFigures()]),
            "toy": fit(ToyRegressor(), ToyRegressionDataModule(), [RegressionFigures()]),
        }
    return folder, trainers, val_acc.values


EXPECTED = {
    "mlp": {
        "scalars": {"train/loss", "train/loss_epoch", "train/acc", "val/loss", "val/acc", "val/acc_best", "test/acc"},
        "images": {"classification/confusion", "classification/misclassified"},
        "hparams": ["val/acc_best", "test/acc"],
    },
    "scratch": {
        "scalars": {"train/loss", "train/acc", "train/grad_norm", "val/acc", "val/acc_best", "test/acc"},
        "images": {"curves/learning", "classification/confusion"},  # no grid: it gets every fake digit right
        "histograms": {
            f"{kind}/net.{tensor}" for kind in ("parameters", "gradients") for tensor in ("weights.0", "biases.1")
        },
        "hparams": ["val/acc_best", "test/acc"],
    },
    "toy": {
        "scalars": {"train/loss_epoch", "val/mse", "val/mae", "val/r2", "val/mse_best", "test/mse", "lr-LBFGS"},
        "images": {"regression/fit", "regression/residuals"},
        "hparams": ["val/mse_best", "test/mse"],
    },
}


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_event_files_hold_scalars_hparams_figures_histograms_and_graph(runs, model):
    folder, trainers, _ = runs
    events = EventAccumulator(str(folder / trainers[model].log_dir), size_guidance={"tensors": 0}).Reload()
    tags, expected = events.Tags(), EXPECTED[model]
    assert expected["scalars"] <= set(tags["scalars"])
    assert expected["images"] <= set(tags["images"])
    assert expected.get("histograms", set()) <= set(tags["histograms"])
    assert tags["graph"]  # from the model's example_input_array
    experiment = HParamsPluginData.FromString(events.SummaryMetadata("_hparams_/experiment").plugin_data.content)
    assert [info.name.tag for info in experiment.experiment.metric_infos] == expected["hparams"]


def hparams_tab(folder: str | Path) -> list[HParamsPluginData]:
    """Every HParams summary (experiment, session start, session end) in the event files of a run folder."""
    files = sorted(Path(folder).glob("events.out.tfevents.*"))
    values = [value for path in files for event in EventFileLoader(str(path)).Load() for value in event.summary.value]
    return [
        HParamsPluginData.FromString(value.metadata.plugin_data.content)
        for value in values
        if value.tag.startswith("_hparams_/")
    ]


def test_the_hparams_tab_holds_the_models_and_the_datas_settings_once(runs):
    folder, trainers, _ = runs
    experiment, start, _ = hparams_tab(folder / trainers["mlp"].log_dir)  # the fit declared it; the test did not
    assert [info.name.tag for info in experiment.experiment.metric_infos] == ["val/acc_best", "test/acc"]
    hparams = start.session_start_info.hparams
    assert hparams["lr"].number_value == 0.003 and hparams["hidden_dims"].string_value == "[16]"  # the model's
    assert hparams["batch_size"].number_value == 32 and hparams["val_size"].number_value == 64  # the data's
    assert not {"data_dir", "download", "num_workers", "pin_memory", "device_resident"} & set(hparams)  # plumbing
    columns = [info.name for info in experiment.experiment.hparam_infos]
    assert columns.index("lr") < columns.index("batch_size")  # the model's settings lead


def test_the_hparams_tab_leaves_out_private_settings_and_compares_runs_by_val_loss_by_default(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="tb", version=0)
    module, data = SimpleNamespace(hparams_initial={"lr": 0.1, "_internal": 1}), SimpleNamespace(hparams={})
    HParamsMetrics().on_fit_start(SimpleNamespace(logger=logger, is_global_zero=True, datamodule=data), module)
    logger.experiment.flush()
    experiment, start, _ = hparams_tab(logger.log_dir)
    assert [info.name.tag for info in experiment.experiment.metric_infos] == ["val/loss"]
    assert list(start.session_start_info.hparams) == ["lr"]


def test_the_hparams_tab_shows_a_networks_class_and_arguments_one_column_each(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="tb", version=0)
    net = {"class_path": "my_nets.MyCNN", "init_args": {"channels": 16, "widths": [3, 4]}}
    module = SimpleNamespace(hparams_initial={"net": net, "lr": 0.1, "extra": {"a": 1}})
    HParamsMetrics().on_fit_start(SimpleNamespace(logger=logger, is_global_zero=True, datamodule=None), module)
    logger.experiment.flush()
    _, start, _ = hparams_tab(logger.log_dir)
    hparams = start.session_start_info.hparams
    assert set(hparams) == {"net.class_path", "net.channels", "net.widths", "lr", "extra.a"}
    assert hparams["net.class_path"].string_value == "my_nets.MyCNN" and hparams["net.channels"].number_value == 16
    assert hparams["net.widths"].string_value == "[3, 4]"


def test_the_hparams_tab_is_written_by_rank_zero_and_into_tensorboard_only(tmp_path):
    module = SimpleNamespace(hparams_initial={"lr": 0.1})
    for logger, rank_zero in ((CSVLogger(tmp_path), True), (TensorBoardLogger(tmp_path, name="tb"), False)):
        HParamsMetrics().on_fit_start(SimpleNamespace(logger=logger, is_global_zero=rank_zero, datamodule=None), module)
    assert not list(tmp_path.rglob("events.out.tfevents.*"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@in_another_process
def test_a_real_tensorboard_server_serves_the_logged_values(runs):
    folder, trainers, logged_val_acc = runs
    run = trainers["mlp"].log_dir.removeprefix("lightning_logs/")  # runs are named by their folder under --logdir
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(folder / "lightning_logs")]
        + ["--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        query = urllib.parse.urlencode({"run": run, "tag": "val/acc"})
        url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?{query}"  # what the Scalars page asks for
        deadline, series = time.monotonic() + 60, None
        while series is None and time.monotonic() < deadline:
            try:
                series = get_json(url)
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)  # not listening yet, or the run not loaded yet
        assert series is not None, "TensorBoard did not answer within 60 s"
        assert run in get_json(f"http://127.0.0.1:{port}/data/runs")
        served = [value for _wall_time, _step, value in series]
        assert served == pytest.approx(logged_val_acc, abs=1e-6)  # stored as float32
        assert len(served) == 2  # one per epoch
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
