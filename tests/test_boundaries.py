"""The paths between features, one test each: a run taken anywhere from its checkpoint alone.

Trained from Python then used from the command line; a table whose training file moved; every logger (and
none) twice in one folder; `--ckpt_path last` beside another table's run; wrong checkpoints in every
subcommand; a notebook that continues after an interrupt; the Tuner on a table; a script's own callbacks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch
from conftest import EXAMPLES, QUIET, VAL_SIZE, in_another_process
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.tuner import Tuner
from own_nets import TinyConvNet  # a network of one's own, in a module

from datamodules import MNISTDataModule, TabularDataModule
from nnmodules import Classifier, MLPClassifier, load_run
from nnmodules.cli import make_trainer

ROOT = Path(__file__).resolve().parents[1]
QUIET_CLI = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.accelerator=cpu"]
QUIET_FIT = [*QUIET_CLI, "--trainer.logger.init_args.log_graph=false", "--test_after_fit=false"]


def files(folder: Path) -> dict[str, int]:
    """Every file under `folder`, with its modification time: what a command wrote or changed shows up."""
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def one_error(code: int, output: str) -> str:
    assert code != 0, output
    assert "Traceback" not in output, output
    (line,) = errors(output)
    return line


def checkpoint_of(folder: Path) -> Path:
    (path,) = folder.rglob("last.ckpt")
    return path


def mnist_mlp_run(console, mnist_dir: Path, *more: str) -> Path:
    code, output = console(
        "fit", "--config", "mnist_mlp", f"--data.data_dir={mnist_dir}", f"--data.val_size={VAL_SIZE}",
        "--model.init_args.hidden_dims=[16]", "--trainer.max_epochs=1", "--trainer.callbacks=[]", *QUIET_FIT, *more,
    )  # fmt: skip
    assert code == 0, output
    return checkpoint_of(Path("lightning_logs/mnist_mlp"))


# -- a run trained from Python, used from the command line --


MODELS = {  # as docs/models.md and the README write them: no widths given
    "preset": lambda: MLPClassifier(hidden_dims=[16]),
    "own network object": lambda: Classifier(TinyConvNet(), num_classes=10),
    "own network class": lambda: Classifier(net=TinyConvNet),
}


@pytest.mark.parametrize("network", list(MODELS))
def test_a_run_trained_from_python_is_tested_predicted_and_exported_from_the_command_line(
    network, mnist_dir, tmp_path, monkeypatch, console
):
    monkeypatch.chdir(tmp_path)
    data = MNISTDataModule(mnist_dir, batch_size=32, val_size=VAL_SIZE, download=False, flatten=network == "preset")
    model = MODELS[network]()
    make_trainer("script", max_epochs=1, **QUIET).fit(model, datamodule=data)
    checkpoint = checkpoint_of(tmp_path / "lightning_logs" / "script")
    run = checkpoint.parent.parent
    for subcommand in ("test", "predict", "export"):
        code, output = console(subcommand, "--ckpt_path", checkpoint, *QUIET_CLI[:2] * (subcommand != "export"))
        assert code == 0, output
    assert "test/acc" in json.loads((run / "test_metrics.json").read_text())["last.ckpt"]
    assert len(pd.read_csv(run / "predictions" / "test.csv")) == 80
    assert (run / "export" / "last.onnx").is_file()


@in_another_process
def test_a_network_class_of_a_script_is_refused_in_one_line_where_it_cannot_be_loaded(mnist_dir, tmp_path, console):
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from torch import nn
            from datamodules import MNISTDataModule
            from nnmodules import Classifier
            from nnmodules.cli import make_trainer

            class MyNet(nn.Module):
                def __init__(self, num_classes: int = 10, width: int = 8):
                    super().__init__()
                    self.num_classes, self.width = num_classes, width
                    self.layers = nn.Sequential(nn.Flatten(), nn.Linear(784, width), nn.Linear(width, num_classes))

                def forward(self, images):
                    return self.layers(images)

            data = MNISTDataModule({str(mnist_dir)!r}, batch_size=32, val_size={VAL_SIZE}, download=False)
            trainer = make_trainer("script", max_epochs=1, enable_progress_bar=False, accelerator="cpu")
            trainer.fit(Classifier(MyNet(), num_classes=10), datamodule=data)
            """
        )
    )
    trained = subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert "the network __main__.MyNet is defined in this script or notebook (__main__)" in trained.stderr
    checkpoint = checkpoint_of(tmp_path / "lightning_logs")
    os.chdir(tmp_path)
    line = one_error(*console("test", "--ckpt_path", checkpoint))
    assert "__main__" in line and "module" in line, line
    with pytest.raises(ValueError, match="__main__.MyNet") as refused:
        Classifier.load_from_checkpoint(checkpoint)
    assert "\n" not in str(refused.value)


# -- a table after its training file moved --


def test_a_table_run_predicts_and_exports_new_rows_after_its_training_table_moved(tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    shutil.copy(EXAMPLES / "people.csv", "people.csv")
    pd.read_csv("people.csv").drop(columns="renewed").head(20).to_csv("new.csv", index=False)
    code, output = console("fit", "--config", "tabular_mlp", "--data.csv=people.csv", "--trainer.max_epochs=1",
                           "--trainer.callbacks=[]", *QUIET_FIT)  # fmt: skip
    assert code == 0, output
    checkpoint = checkpoint_of(tmp_path / "lightning_logs")
    Path("moved").mkdir()
    shutil.move("people.csv", "moved/people.csv")
    code, output = console("predict", "--ckpt_path", checkpoint, "--data.init_args.predict_csv=new.csv", *QUIET_CLI)
    assert code == 0, output
    assert "training rows" not in output  # the column report belongs to a fit
    assert len(pd.read_csv(checkpoint.parent.parent / "predictions" / "new.csv")) == 20
    code, output = console("export", "--ckpt_path", checkpoint)
    assert code == 0, output
    assert "training rows" not in output
    assert (checkpoint.parent.parent / "export" / "last.onnx").is_file()
    line = one_error(*console("test", "--ckpt_path", checkpoint, *QUIET_CLI))  # the test split is in that table
    assert "people.csv" in line


def test_load_run_takes_a_tables_new_place_and_predicts_as_before(tmp_path):
    shutil.copy(EXAMPLES / "people.csv", tmp_path / "people.csv")
    data = TabularDataModule(tmp_path / "people.csv", target="renewed", drop=["id"], batch_size=32)
    make_trainer("table", save_dir=tmp_path, max_epochs=1, **QUIET).fit(MLPClassifier(hidden_dims=[8]), data)
    before = torch.cat(L.Trainer(logger=False).predict(MLPClassifier.load_from_checkpoint(
        checkpoint_of(tmp_path / "table")), datamodule=data))  # fmt: skip
    (tmp_path / "moved").mkdir()
    shutil.move(tmp_path / "people.csv", tmp_path / "moved" / "people.csv")
    model, moved = load_run(checkpoint_of(tmp_path / "table"), csv=tmp_path / "moved" / "people.csv")
    assert moved.hparams["csv"] == str(tmp_path / "moved" / "people.csv")  # failed: the recorded place won
    after = torch.cat(L.Trainer(logger=False).predict(model, datamodule=moved))
    assert torch.equal(after, before)  # the checkpoint's preprocessing, on the same rows


# -- every logger, and none, twice in one folder --

LOGGERS = {
    "tensorboard": [],
    "csv": ["--trainer.logger=CSVLogger"],
    "mlflow-files": ["--trainer.logger=MLFlowLogger"],
    "mlflow-sqlite": ["--trainer.logger=MLFlowLogger", "--trainer.logger.tracking_uri=sqlite:///mlflow.db"],
    "wandb": ["--trainer.logger=WandbLogger", "--trainer.logger.offline=true"],
    "none": ["--trainer.logger=false"],
}


@pytest.mark.parametrize("logger", list(LOGGERS))
def test_each_logger_twice_in_one_folder_makes_two_whole_runs(logger, tmp_path, monkeypatch, console):
    pytest.importorskip({"mlflow-files": "mlflow", "mlflow-sqlite": "mlflow", "wandb": "wandb"}.get(logger, "torch"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks file stores to opt in
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for _ in range(2):
        code, output = console("fit", "--config", "toy_regression", "--trainer.max_epochs=2", "--trainer.callbacks=[]",
                               *QUIET_CLI, *LOGGERS[logger], "--test_after_fit=false")  # fmt: skip
        assert code == 0, output
    configs = sorted(tmp_path.glob("lightning_logs/**/config.yaml"))
    assert len(configs) == 2, configs
    assert not list(tmp_path.rglob("last-v*.ckpt"))
    for config in configs:
        checkpoint = config.parent / "checkpoints" / "last.ckpt"
        assert checkpoint.is_file()
        code, output = console("test", "--ckpt_path", checkpoint, *QUIET_CLI)
        assert code == 0, output
        assert "last.ckpt" in json.loads((config.parent / "test_metrics.json").read_text())


# -- `--ckpt_path last` beside the run of another table --


def test_last_continues_this_tables_run_not_the_newest_run_of_another(tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    people = pd.read_csv(EXAMPLES / "people.csv")
    people.to_csv("a.csv", index=False)
    people.assign(extra=range(len(people))).to_csv("b.csv", index=False)  # another width
    table = ["--model=MLPClassifier", "--model.hidden_dims=[8]", "--data=TabularDataModule", "--data.target=renewed"]
    for csv in ("a.csv", "b.csv"):
        code, output = console("fit", *table, f"--data.csv={csv}", "--trainer.max_epochs=1", *QUIET_CLI)
        assert code == 0, output
    (a_run,) = [c.parent for c in tmp_path.rglob("config.yaml") if "a.csv" in c.read_text()]
    (b_run,) = [c.parent for c in tmp_path.rglob("config.yaml") if "b.csv" in c.read_text()]
    b_before = files(b_run)
    code, output = console("fit", *table, "--data.csv=a.csv", "--ckpt_path=last", "--trainer.max_epochs=2", *QUIET_CLI)
    assert code == 0, output
    assert torch.load(a_run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1  # its second epoch
    assert files(b_run) == b_before


# -- a wrong checkpoint, in every subcommand: one line, nothing written --


def foreign_checkpoint(path: Path) -> Path:
    """A Lightning checkpoint of another project: plain data, a model with an argument of its own."""
    state = {"layer.weight": torch.zeros(3, 4), "layer.bias": torch.zeros(3)}
    torch.save({"state_dict": state, "hyper_parameters": {"width": 3}, "pytorch-lightning_version": "2.6.0"}, path)
    return path


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict", "export"])
def test_a_wrong_checkpoint_is_refused_in_one_line_before_anything_is_written(
    subcommand, mnist_dir, tmp_path, monkeypatch, console
):
    monkeypatch.chdir(tmp_path)
    checkpoint = mnist_mlp_run(console, mnist_dir).resolve()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(checkpoint.read_bytes()[:5000])
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    cases = {
        "another model": ["--config=mnist_cnn", f"--ckpt_path={checkpoint}"],
        "another data's widths": ["--config=tabular_mlp", f"--ckpt_path={checkpoint}"],
        "truncated": [f"--ckpt_path={truncated}"],
        "foreign": [f"--ckpt_path={foreign_checkpoint(tmp_path / 'foreign.ckpt')}"],
        "not a checkpoint": [f"--ckpt_path={text}"],
    }
    before = files(tmp_path)
    for case, args in cases.items():
        code, output = console(subcommand, *args)
        assert code != 0, (case, output)
        assert "Traceback" not in output, (case, output)
        assert len(errors(output)) == 1, (case, output)
        assert files(tmp_path) == before, case


def test_predict_refuses_a_model_other_than_its_checkpoints(mnist_dir, tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    checkpoint = mnist_mlp_run(console, mnist_dir)
    before = files(tmp_path)
    line = one_error(*console("predict", "--ckpt_path", checkpoint, "--model=ScratchDeepNet", *QUIET_CLI))
    assert "ScratchDeepNet" in line and "MLPClassifier" in line, line
    assert files(tmp_path) == before


@pytest.mark.parametrize(
    "mistake",
    [["--data.val_size=100000"], ["--model=Classifier", "--model.net=SmallCNN"]],
    ids=["setup of the data", "setup of the model"],
)
def test_a_mistake_found_while_setting_up_leaves_no_run_folder(mistake, mnist_dir, tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    code, output = console("fit", "--config", "mnist_mlp", f"--data.data_dir={mnist_dir}", *mistake, *QUIET_FIT)
    one_error(code, output)
    assert not list(tmp_path.rglob("version_*")), output


# -- scripts: the Tuner on a table, callbacks of one's own --


def test_the_tuner_scales_a_tables_batch_size_and_the_trainer_fits_after(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = TabularDataModule(EXAMPLES / "people.csv", target="renewed")
    model = MLPClassifier(hidden_dims=[8])
    trainer = make_trainer("tuned", max_epochs=1, **QUIET)
    found = Tuner(trainer).scale_batch_size(model, datamodule=data, mode="power", max_trials=2, steps_per_trial=1)
    assert isinstance(found, int) and data.batch_size == found
    trainer.fit(model, datamodule=data)
    assert trainer.state.finished


def test_a_scripts_own_callbacks_join_the_projects(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    class Mine(L.Callback):
        pass

    trainer = make_trainer("mine", callbacks=[Mine()], **QUIET)
    names = {type(callback).__name__ for callback in trainer.callbacks}
    assert {"Mine", "ModelCheckpoint", "Interruption", "RunSummary"} <= names, names
    assert isinstance(trainer.checkpoint_callback, ModelCheckpoint)


# -- a notebook: interrupted, then continued on the same Trainer --

NOTEBOOK = [
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import lightning as L
    import torch
    from conftest import QUIET, VAL_SIZE
    from datamodules import MNISTDataModule
    from nnmodules import MLPClassifier
    from nnmodules.cli import make_trainer

    class InterruptAt(L.Callback):  # as Jupyter's interrupt button does: SIGINT to the kernel
        def __init__(self, step):
            self.step = step
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == self.step:
                os.kill(os.getpid(), signal.SIGINT)

    def data():
        return MNISTDataModule({mnist_dir!r}, batch_size=32, val_size=VAL_SIZE, download=False)
    """,
    """
    L.seed_everything(0)
    model = MLPClassifier(hidden_dims=[16], dropout=0.2)
    trainer = make_trainer("notebook", max_epochs=2, callbacks=[InterruptAt(5)], **QUIET)
    trainer.fit(model, datamodule=data())
    """,
    """
    trainer.fit(model, datamodule=data(), ckpt_path="last")
    """,
    """
    L.seed_everything(0)
    uninterrupted = MLPClassifier(hidden_dims=[16], dropout=0.2)
    make_trainer("uninterrupted", max_epochs=2, **QUIET).fit(uninterrupted, datamodule=data())
    same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), uninterrupted.state_dict().values()))
    print("same weights:", same)
    """,
]


@in_another_process
def test_a_notebook_interrupted_ends_the_cell_in_one_line_and_the_same_trainer_continues_exactly(mnist_dir, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cells = [textwrap.dedent(cell).format(tests=str(ROOT / "tests"), mnist_dir=str(mnist_dir)) for cell in NOTEBOOK]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    resources = {"metadata": {"path": tmp_path}}  # the kernel's working folder
    client = nbclient.NotebookClient(notebook, timeout=300, allow_errors=True, resources=resources)
    client.execute()
    interrupted, continued, compared = (cell.outputs for cell in notebook.cells[1:])
    (error,) = [output for output in interrupted if output.output_type == "error"]
    assert len(error.traceback) == 1, error.traceback
    assert "interrupted.ckpt" in error.traceback[0] and 'ckpt_path="last"' in error.traceback[0], error.traceback
    assert "SIGTERMException" not in str(interrupted)
    assert not [output for output in continued if output.output_type == "error"], continued
    assert "same weights: True" in "".join(output.get("text", "") for output in compared), compared
