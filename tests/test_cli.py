"""The command line: LightningCLI with the project's config, links and defaults; and the plain script."""

from __future__ import annotations

import functools
import json
import re
import runpy
import shutil
import signal
import subprocess
import sys
import time
import warnings
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest
import torch
import yaml
from conftest import CONFIGS, EXAMPLES, ROOT, TEST_IMAGES, VAL_SIZE, fake_digits, in_another_process, write_idx
from test_images import image_tree

import datamodules
from datamodules import MNISTDataModule
from nnmodules import MLP, MLPClassifier, TableMLP
from nnmodules.cli import LitCLI, main
from nnmodules.cli import run as litmodules

CONFIG = str(CONFIGS / "mnist_mlp.yaml")


class ThreeClassMNIST(MNISTDataModule):
    """Stands for any data module whose classes differ from the model's defaults: the digits modulo 3."""

    @property
    def class_names(self) -> list[str]:
        return ["0 3 6 9", "1 4 7", "2 5 8"]

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        for table in self.tables.values():
            table.tensors = (table.tensors[0], table.tensors[1] % 3)


def fake_data_args(mnist_dir: Path) -> list[str]:
    return [f"--data.data_dir={mnist_dir}", f"--data.val_size={VAL_SIZE}", "--data.download=false"]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # lightning_logs/ goes there, not into the repo
    return tmp_path


@pytest.fixture(scope="module")
def cli_run(mnist_dir, tmp_path_factory):
    """`python -m nnmodules fit` with the main config, in a subprocess, as a person runs it: (folder, output)."""
    folder = tmp_path_factory.mktemp("cli")
    command = [sys.executable, "-m", "nnmodules", "fit", "--config", CONFIG, *fake_data_args(mnist_dir)]
    command += ["--data.batch_size=16", "--trainer.max_epochs=3", "--trainer.enable_progress_bar=false"]
    command += ["--trainer.log_every_n_steps=4"]  # Lightning warns of an epoch shorter than its logging interval
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result.stdout + result.stderr


def test_version(capsys):
    main(["--version"])
    assert capsys.readouterr().out == f"litmodules {version('litmodules')}\n"


ENDING = ("`Trainer.fit` stopped: ", "val/", "best checkpoint: ", "last checkpoint: ", "TensorBoard: ", "test/")
ENDING += (
    "Restoring states from the checkpoint",
    "Loaded model weights from the checkpoint",
    "(tested ",
    "test metrics",
)
MODEL_SUMMARY = ("  | Name ", "-----", "0 | net ")  # the table (Lightning's plain one), then its totals:
TOTALS = [("118 K", "Trainable params"), ("0", "Non-trainable params"), ("118 K", "Total params"),
          ("0.473", "Total estimated model params size (MB)"), ("19", "Modules in train mode"),
          ("0", "Modules in eval mode"), ("236 K", "Total Flops")]  # fmt: skip
MODEL_SUMMARY += tuple(f"{figure:<10}{what}" for figure, what in TOTALS)


def test_a_fit_prints_the_model_summary_and_its_results_and_nothing_else(cli_run):
    """No third-party warning or tip: every line is the summary of the network or what the run ended with."""
    _, output = cli_run
    others = [line for line in output.splitlines() if line.strip() and not line.startswith(ENDING + MODEL_SUMMARY)]
    assert others == []
    assert "0 | net  | MLP  | 118 K" in output and "MeanMetric" not in output  # the network, not the metric objects


def test_fit_leaves_checkpoints_tensorboard_events_and_its_config(cli_run):
    folder, _ = cli_run
    run = folder / "lightning_logs" / "mnist_mlp" / "version_0"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "checkpoints").glob("epoch*-val_loss*.ckpt"))) == 1
    assert list(run.glob("events.out.tfevents.*"))
    assert (run / "config.yaml").is_file()  # the full config of the run, for repeating it


def test_fit_ends_saying_where_things_are_then_tests_the_best_checkpoint(cli_run, mnist_dir, monkeypatch):
    folder, output = cli_run
    run = "lightning_logs/mnist_mlp/version_0"
    summary = re.search(
        rf"^val/acc_best: [01]\.\d{{4}}\nbest checkpoint: ({run}/checkpoints/epoch\d\d-val_loss[0-9.]+\.ckpt) "
        rf"\(val/loss ([0-9.]+)\)\nlast checkpoint: {run}/checkpoints/last\.ckpt\n"
        rf"TensorBoard: tensorboard --logdir {run}$",
        output,
        re.MULTILINE,
    )
    assert summary, output[-2000:]
    best, best_loss = summary.groups()
    assert f"val_loss{best_loss}.ckpt" in best  # the score printed is the checkpoint's
    test_acc = float(re.search(r"^test/acc: ([0-9.]+)\n", output, re.MULTILINE).group(1))
    assert f"(tested {best})" in output
    assert test_acc >= 0.9  # the fake digits are easy; chance is 0.1
    recorded = json.loads((folder / run / "test_metrics.json").read_text())
    assert list(recorded) == [Path(best).name]
    assert recorded[Path(best).name]["test/acc"] == pytest.approx(test_acc, abs=1e-4)

    monkeypatch.chdir(folder)  # `litmodules test` on that checkpoint gives the same figure
    cli = litmodules(["test", "--config", CONFIG, *fake_data_args(mnist_dir), f"--ckpt_path={best}"])
    assert cli.trainer.callback_metrics["test/acc"].item() == pytest.approx(test_acc, abs=1e-4)


def test_predict_writes_labels_and_probabilities_into_the_checkpoints_run(cli_run, mnist_dir, monkeypatch):
    folder, _ = cli_run
    monkeypatch.chdir(folder)
    run = folder / "lightning_logs" / "mnist_mlp" / "version_0"
    checkpoint = "lightning_logs/mnist_mlp/version_0/checkpoints/last.ckpt"
    litmodules(["predict", "--config", CONFIG, *fake_data_args(mnist_dir), f"--ckpt_path={checkpoint}"])
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]  # no new run folder
    lines = (run / "predictions" / "test.csv").read_text().splitlines()
    assert lines[0] == "row,prediction," + ",".join(f"p_{digit}" for digit in range(10))
    assert len(lines) == 1 + TEST_IMAGES
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(TEST_IMAGES))
    _, label, *probabilities = lines[1].split(",")
    assert int(label) == max(range(10), key=lambda digit: float(probabilities[digit]))
    assert sum(map(float, probabilities)) == pytest.approx(1, abs=1e-4)


def test_console_script_is_the_cli():
    (script,) = entry_points(group="console_scripts", name="litmodules")
    assert script.value == "nnmodules.cli.main:main"


QUICK = ["--trainer.fast_dev_run=true"]  # one step: the model is set up for its data, and trains


def test_a_model_takes_the_widths_of_its_data(mnist_dir, in_tmp):
    args = ["--config", CONFIG, *fake_data_args(mnist_dir), f"--data.class_path={__name__}.ThreeClassMNIST"]
    cli = litmodules(["fit", *args, *QUICK])
    assert cli.model.hparams.input_dim == 784 and cli.model.hparams.num_classes == 3
    assert cli.model(torch.zeros(2, 784)).shape == (2, 3)
    assert cli.model.hparams.numeric_features == 0 and type(cli.model.net) is MLP  # pixels: no embeddings


def test_an_mlp_embeds_a_tables_numbers_as_it_is_told_or_by_the_tables_size(in_tmp):
    people = EXAMPLES / "people.csv"
    args = ["fit", "--model", "MLPClassifier", "--data", "TabularDataModule", f"--data.csv={people}", *QUICK]
    args += ["--data.target=renewed"]
    cli = litmodules([*args, "--model.embed_numbers=true"])
    assert cli.datamodule.feature_names[:3] == ["age", "income", "visits"]  # the numbers first (id: an id, dropped)
    assert cli.datamodule.facts.parts == {"numbers": 3, "others": 13}
    assert cli.model.hparams.numeric_features == 3 and isinstance(cli.model.net, TableMLP)
    assert cli.model.net.numeric_features == 3
    cli = litmodules(args)  # 360 training rows: too few to embed by default
    assert cli.model.hparams.embed_numbers is False and cli.model.hparams.numeric_features == 0
    assert type(cli.model.net) is MLP


def test_settings_of_the_network_and_of_loading_are_options_and_hyperparameters(mnist_dir, in_tmp):
    """The presets' network settings, and the data modules' loading settings passed on through **kwargs."""
    args = ["--config", CONFIG, *fake_data_args(mnist_dir), "--model.dropout=0.3", "--model.embedding_dim=8"]
    cli = litmodules(["fit", *args, "--data.drop_last=true", "--data.eval_batch_size=7", *QUICK])
    assert cli.model.net.dropout == 0.3 and cli.model.hparams.dropout == 0.3 and cli.model.hparams.embedding_dim == 8
    assert cli.datamodule.drop_last and cli.datamodule.eval_batch_size == 7 and cli.datamodule.hparams.drop_last


def test_the_mnist_family_gives_its_classes(mnist_dir, in_tmp):
    raw = in_tmp / "EMNIST" / "raw"
    for split in ("train", "t10k"):
        images, labels = fake_digits(120 if split == "train" else 20, seed=0)
        write_idx(raw, f"emnist-letters-{'train' if split == 'train' else 'test'}", images, labels + 1)
    args = ["--config", CONFIG, *fake_data_args(in_tmp), "--data.dataset=EMNIST", "--data.emnist_split=letters"]
    cli = litmodules(["fit", *args, *QUICK])
    assert cli.model.hparams.num_classes == 26 and cli.model(torch.zeros(2, 784)).shape == (2, 26)


def test_optimizer_and_scheduler_can_be_replaced(mnist_dir, in_tmp):
    args = ["fit", "--config", CONFIG, *fake_data_args(mnist_dir), "--trainer.fast_dev_run=true"]
    args += ["--optimizer=SGD", "--optimizer.lr=0.05", "--lr_scheduler=StepLR", "--lr_scheduler.step_size=1"]
    with pytest.warns(UserWarning, match="will be overridden by `LitCLI.configure_optimizers`"):  # as it says
        cli = litmodules(args)
    (optimizer,) = cli.trainer.optimizers
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["lr"] == 0.05
    assert isinstance(cli.trainer.lr_scheduler_configs[0].scheduler, torch.optim.lr_scheduler.StepLR)


def test_default_optimizer_without_flags(mnist_dir, in_tmp):
    cli = litmodules(["fit", "--config", CONFIG, *fake_data_args(mnist_dir), "--trainer.fast_dev_run=true"])
    (optimizer,) = cli.trainer.optimizers
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["fused"]  # one kernel per step on a CPU
    assert isinstance(cli.trainer.lr_scheduler_configs[0].scheduler, torch.optim.lr_scheduler.OneCycleLR)


def test_scheduler_without_optimizer_is_refused_before_training(mnist_dir, in_tmp):
    args = ["--config", CONFIG, *fake_data_args(mnist_dir), "--lr_scheduler=StepLR", "--lr_scheduler.step_size=1"]
    with pytest.raises(ValueError, match="--lr_scheduler needs --optimizer as well"):
        LitCLI(args)
    assert not (in_tmp / "lightning_logs").exists()


def test_plain_script_trains_tests_and_checks_its_floor(mnist_dir, in_tmp, monkeypatch, capsys):
    script = str(ROOT / "scripts" / "train_mnist.py")
    small_mnist = functools.partial(MNISTDataModule, val_size=VAL_SIZE, download=False)  # 5,000 is the real default
    monkeypatch.setattr(datamodules, "MNISTDataModule", small_mnist)
    monkeypatch.setattr(sys, "argv", [script, f"--data-dir={mnist_dir}", "--max-epochs=1", "--min-test-acc=1.01"])
    with pytest.raises(SystemExit, match=r"test accuracy 0\.\d{4} is below --min-test-acc 1.01"):
        runpy.run_path(script, run_name="__main__")
    assert re.search(
        r"test accuracy: 0\.\d{4} \(best checkpoint: \S+/lightning_logs/mnist_mlp_script/", capsys.readouterr().out
    )


@pytest.mark.parametrize("config", sorted(path.stem for path in CONFIGS.glob("*.yaml")))
def test_every_recipe_runs_by_its_name_from_an_empty_folder(config, mnist_dir, in_tmp):
    args = ["fit", "--config", config, "--trainer.fast_dev_run=true"]
    settings = yaml.safe_load((CONFIGS / f"{config}.yaml").read_text())
    if settings["data"]["class_path"].endswith("MNISTDataModule"):  # the fake files, in the data set's own folder
        dataset = settings["data"]["init_args"].get("dataset", "MNIST")
        shutil.copytree(mnist_dir / "MNIST", in_tmp / "fake" / dataset)
        args += fake_data_args(in_tmp / "fake")
    if settings["data"]["class_path"].endswith("ImageFolderDataModule"):
        args += [f"--data.root={image_tree(in_tmp / 'images')}", "--data.workers=1"]
    cli = litmodules(args)
    model = settings["model"]  # built as the recipe says, with every callback it names
    assert f"{type(cli.model).__module__.split('.')[0]}.{type(cli.model).__name__}" == model["class_path"]
    for name, value in model["init_args"].items():
        given = cli.model.hparams[name]
        if name == "net":  # the recipe's network, with the widths the data gave it
            assert (
                given["class_path"] == value["class_path"] and value["init_args"].items() <= given["init_args"].items()
            )
            continue
        assert (list(given) if isinstance(given, (list, tuple)) else given) == value, name
    named = {callback["class_path"].rsplit(".", 1)[1] for callback in settings["trainer"].get("callbacks", [])}
    assert named <= {type(callback).__name__ for callback in cli.trainer.callbacks}
    assert cli.trainer.global_step == 1 and torch.isfinite(cli.trainer.callback_metrics["train/loss_epoch"])


def test_plain_tabular_script(in_tmp, monkeypatch, capsys):
    script = str(ROOT / "scripts" / "train_tabular.py")
    monkeypatch.setattr(sys, "argv", [script, f"--csv={EXAMPLES / 'people.csv'}", "--max-epochs=2"])
    runpy.run_path(script, run_name="__main__")
    assert re.search(
        r"test accuracy: 0\.\d{4} \(best checkpoint: "
        r"\S+/lightning_logs/tabular_scratch_script/",
        capsys.readouterr().out,
    )


class PlainMLP(MLPClassifier):
    """A model of one's own that takes fewer arguments than the preset it builds on (no class_weights)."""

    def __init__(self, input_dim: int | None = None, num_classes: int | None = None) -> None:
        super().__init__(input_dim=input_dim, hidden_dims=(8,), num_classes=num_classes)


def test_a_model_keeps_its_own_arguments_with_what_its_data_gave(mnist_dir, in_tmp):
    args = ["--config", CONFIG, *fake_data_args(mnist_dir), f"--model={__name__}.PlainMLP"]
    fit = litmodules(["fit", *args, "--trainer.max_epochs=1", "--test_after_fit=false"])
    checkpoint = fit.trainer.checkpoint_callback.last_model_path
    assert torch.load(checkpoint, weights_only=True)["hyper_parameters"] == {"input_dim": 784, "num_classes": 10}
    test = litmodules(["test", f"--ckpt_path={checkpoint}"])  # its arguments alone build it again
    assert "test/acc" in test.trainer.callback_metrics


def test_an_option_typed_that_the_stage_does_not_use_is_named(tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    fit = ["fit", "--config", "toy_regression", "--trainer.max_epochs=1", "--prediction_writer.overwrite=true"]
    with pytest.warns(UserWarning, match=r"^--prediction_writer: not used by `litmodules fit`$"):
        assert console(*fit)[0] == 0
    (checkpoint,) = tmp_path.rglob("last.ckpt")
    with pytest.warns(UserWarning) as said:
        assert console("test", "--ckpt_path", checkpoint, "--test_after_fit=true", "--trainer.max_epochs=3")[0] == 0
    unused = [str(w.message) for w in said if "not used by" in str(w.message)]
    assert unused == ["--test_after_fit: not used by `litmodules test`"]  # a Trainer option is every stage's


def wait_until_torch_is_loading(process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Waits until the process maps torch's library: it is importing Lightning, which only `main` does."""
    maps, deadline = Path(f"/proc/{process.pid}/maps"), time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if "libtorch" in maps.read_text():
            return
        time.sleep(0.01)
    raise AssertionError("the command ended, or did not import torch within a minute")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/PID/maps (Linux)")
@in_another_process
def test_ctrl_c_while_the_command_starts_ends_in_one_line_and_leaves_nothing(tmp_path):
    command = [sys.executable, "-m", "nnmodules", "fit", "--config", "toy_regression"]
    started = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until_torch_is_loading(started)  # inside `main`: before it, Python itself is starting and says nothing
    started.send_signal(signal.SIGINT)
    out, err = started.communicate(timeout=60)
    assert started.returncode == 130, err[-2000:]
    assert err.strip().splitlines() == ["interrupted (Ctrl-C) before training started"]  # failed: a traceback
    assert list(tmp_path.iterdir()) == []


def test_test_and_predict_of_a_checkpoint_from_another_folder_warn_of_nothing_they_do_not_use(
    tmp_path, monkeypatch, console
):
    monkeypatch.chdir(tmp_path)
    assert console("fit", "--config", "toy_regression", "--trainer.max_epochs=2")[0] == 0
    (checkpoint,) = tmp_path.rglob("last.ckpt")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    for stage in ("test", "predict"):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")  # over pyproject's filters of Lightning's notes in tests
            assert console(stage, "--ckpt_path", checkpoint)[0] == 0
        said = [str(w.message) for w in seen if "checkpoint" in str(w.message) or "dirpath" in str(w.message)]
        assert said == [], said  # failed: "The dirpath has changed ... ./checkpoints", "callbacks used to create"
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_test_of_a_csv_logger_run_writes_with_that_loggers_kind(tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    assert console("fit", "--config", "toy_regression", "--trainer.max_epochs=2", "--trainer.logger=CSVLogger")[0] == 0
    (checkpoint,) = tmp_path.rglob("last.ckpt")
    assert console("test", "--ckpt_path", checkpoint)[0] == 0
    written = checkpoint.parents[1] / "test"
    assert (written / "metrics.csv").is_file() and not list(written.glob("events.out.tfevents.*"))


def test_an_unknown_class_unlike_any_known_gets_no_guess(tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    code, output = console("fit", "--model", "Zebra", "--data", "ToyRegressionDataModule")
    line = output.strip().splitlines()[0]
    assert code == 2 and line.startswith("error: --model Zebra: no such class.") and "Did you mean" not in line, line
    code, output = console("fit", "--model", "MLPRegresor", "--data", "ToyRegressionDataModule")
    assert "Did you mean MLPRegressor?" in output


def test_an_older_checkpoint_of_a_run_starts_a_new_run_and_the_newest_goes_on_in_place(tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    every = ["--checkpoint.every_n_epochs=1", "--checkpoint.save_top_k=-1", "--trainer.check_val_every_n_epoch=1"]
    fit = ["fit", "--config", "toy_regression", *every, "--checkpoint.filename=epoch{epoch:02d}"]
    assert console(*fit, "--trainer.max_epochs=2")[0] == 0
    run = tmp_path / "lightning_logs" / "toy_regression" / "version_0"
    before = {path: path.read_bytes() for path in (run / "checkpoints").iterdir()}
    older = run / "checkpoints" / "epoch00.ckpt"
    assert console(*fit, "--trainer.max_epochs=3", f"--ckpt_path={older}")[0] == 0
    assert (run.parent / "version_1" / "checkpoints" / "last.ckpt").is_file()
    assert {path: path.read_bytes() for path in (run / "checkpoints").iterdir()} == before  # failed: overwritten
    assert console(*fit, "--trainer.max_epochs=3", f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}")[0] == 0
    assert not (run.parent / "version_2").exists() and (run / "checkpoints" / "epoch02.ckpt").is_file()
