"""Two processes under Lightning's DDP (gloo, CPU): disjoint shards, one set of files, one-process metrics."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import CONFIGS, EXAMPLES, NO_LOGGER, VAL_SIZE, python_path
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from datamodules import MNISTDataModule, TabularDataModule
from datamodules.batches import device_loader
from nnmodules import MLPClassifier, ScratchDeepNet
from nnmodules.callbacks import ClassificationFigures

PEOPLE = EXAMPLES / "people.csv"


def data_modules(mnist_dir: Path) -> dict:
    return {
        "mnist": MNISTDataModule(mnist_dir, batch_size=32, eval_batch_size=16, val_size=VAL_SIZE, download=False),
        "tabular": TabularDataModule(PEOPLE, target="renewed", drop=["id"], batch_size=16, eval_batch_size=16),
    }


def one_rank(rank: int, port: int, mnist_dir: Path, out: Path) -> None:
    """What one of two processes is handed: training rows per epoch (both batch paths), evaluation batches."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    seen = {}
    for name, data in data_modules(mnist_dir).items():
        data.setup("fit")
        for epoch in (0, 1):
            host = data.train_dataloader()  # no Trainer: the DataLoader path
            host.sampler.set_epoch(epoch)
            resident = device_loader(data.table("train"), data.batch_size, train=True, seed=data.seed)
            resident.sampler.set_epoch(epoch)
            seen[name, "train", epoch] = list(host.sampler)
            seen[name, "train resident", epoch] = torch.cat(list(resident.sampler)).tolist()
        seen[name, "val"] = [batch[-1].tolist() for batch in data.val_dataloader()]  # targets, batch by batch
        seen[name, "val table"] = [t.sum().item() for t in data.table("val").tensors]
    torch.save(seen, out / f"{rank}.pt")
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_each_rank_gets_a_disjoint_share_and_the_same_split(mnist_dir, tmp_path):
    mp.spawn(one_rank, args=(free_port(), mnist_dir, tmp_path), nprocs=2)
    ranks = [torch.load(tmp_path / f"{rank}.pt") for rank in (0, 1)]
    for name, data in data_modules(mnist_dir).items():
        data.setup("fit")
        rows = len(data.table("train"))
        for epoch in (0, 1):
            shares = [seen[name, "train", epoch] for seen in ranks]
            assert set(shares[0]).isdisjoint(shares[1]) and sorted(shares[0] + shares[1]) == list(range(rows))
            assert [seen[name, "train resident", epoch] for seen in ranks] == shares  # both batch paths alike
        assert ranks[0][name, "train", 0] != ranks[0][name, "train", 1]  # shuffled anew each epoch
        assert ranks[0][name, "val table"] == ranks[1][name, "val table"]  # the same seeded split everywhere
        one_process = [batch[-1].tolist() for batch in data.val_dataloader()]
        assert ranks[0][name, "val"] == one_process[0::2] and ranks[1][name, "val"] == one_process[1::2]


def scalars(run: Path) -> dict[str, float]:
    """The last value of every scalar the run logged, as TensorBoard stores it (float32)."""
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"]}


def one_process(model: L.LightningModule, data: L.LightningDataModule, stage: str, exact: bool = False) -> dict:
    """The metrics one process computes, with one thread as each DDP process had: a matrix product run on
    more threads splits its sums differently, and its last bits change."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = getattr(L.Trainer(devices=1, **NO_LOGGER), stage)
        metrics = run(model, datamodule=data, verbose=False)[0]
        return metrics if exact else {name: np.float32(value) for name, value in metrics.items()}
    finally:
        torch.set_num_threads(threads)


DDP_RUNS = {
    "mlp": (
        "mnist_mlp.yaml",
        ["--data.batch_size=16", "--data.eval_batch_size=16", f"--data.val_size={VAL_SIZE}", "--data.download=false"],
        MLPClassifier,
    ),
    "tabular": ("tabular_scratch.yaml", ["--data.eval_batch_size=16"], ScratchDeepNet),
}
TWO_PROCESSES = ["--trainer.strategy", "ddp", "--trainer.devices", "2"]
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # Lightning's own choice on a 2-core machine; fixed here


def fit_command(kind: str, mnist_dir: Path, epochs: int = 2) -> list[str]:
    config, data_args, _ = DDP_RUNS[kind]
    command = [sys.executable, "-m", "nnmodules", "fit", "--config", str(CONFIGS / config), *data_args]
    command.append(f"--data.data_dir={mnist_dir}" if kind == "mlp" else f"--data.csv={PEOPLE}")
    return command + [f"--trainer.max_epochs={epochs}", "--trainer.enable_progress_bar=false"]


def run_cli(command: list[str], cwd: Path, expected: int = 0, env: dict | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env or ONE_THREAD, capture_output=True, text=True, timeout=300)
    assert result.returncode == expected, result.stderr[-3000:]
    return result.stderr


@pytest.fixture(scope="module")
def ddp_fit(mnist_dir, tmp_path_factory):
    """`litmodules fit ... --trainer.strategy ddp --trainer.devices 2` of each kind, run once: its run folder."""
    folders = {}

    def fit(kind: str) -> Path:
        if kind not in folders:
            folder = tmp_path_factory.mktemp(f"ddp_{kind}")
            output = run_cli([*fit_command(kind, mnist_dir), *TWO_PROCESSES], folder)  # the two flags, nothing else
            assert "distributed_backend=gloo" in output and "All distributed processes registered" in output
            (folders[kind],) = list((folder / "lightning_logs").glob("*/version_*"))  # rank 1 writes none
        return folders[kind]

    return fit


@pytest.mark.parametrize("kind", ["mlp", "tabular"])
def test_two_process_fit_from_the_command_line(kind, ddp_fit, mnist_dir):
    _, _, model_class = DDP_RUNS[kind]
    run = ddp_fit(kind)
    pids = {re.search(r"\.(\d+)\.\d+$", p.name).group(1) for p in run.glob("events.out.tfevents.*")}
    assert len(pids) == 1  # every event file from one process, rank 0
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and checkpoints[1] == "last.ckpt"

    logged = scalars(run)
    data = ddp_data(kind, mnist_dir, run)
    last = one_process(model_class.load_from_checkpoint(run / "checkpoints" / "last.ckpt"), data, "validate")
    best_model = model_class.load_from_checkpoint(run / "checkpoints" / checkpoints[0])
    best = one_process(best_model, data, "test")
    assert {name: logged[name] for name in last} == last  # exactly: the float32 TensorBoard holds
    assert {name: logged[name] for name in best} == best
    # and to the last bit of the float64 sums: the val/loss that made the best checkpoint the best
    states = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    best_score = next(state["best_model_score"] for key, state in states.items() if key.startswith("ModelCheckpoint"))
    assert one_process(best_model, data, "validate", exact=True)["val/loss"] == best_score.item()


def ddp_data(kind: str, mnist_dir: Path, run: Path) -> L.LightningDataModule:
    """The data of a DDP run: its split and, for the table, its preprocessing, from the checkpoint."""
    if kind == "mlp":
        return MNISTDataModule(mnist_dir, batch_size=16, eval_batch_size=16, val_size=VAL_SIZE, download=False)
    return TabularDataModule.load_from_checkpoint(run / "checkpoints" / "last.ckpt", csv=str(PEOPLE))


@pytest.mark.parametrize("kind", ["mlp", "tabular"])
def test_two_process_predict_writes_every_row_once_in_order(kind, ddp_fit, mnist_dir, tmp_path):
    run, model_class = ddp_fit(kind), DDP_RUNS[kind][2]
    best = next((run / "checkpoints").glob("epoch*.ckpt"))
    output = run_cli([sys.executable, "-m", "nnmodules", "predict", f"--ckpt_path={best}", *TWO_PROCESSES], tmp_path)
    written = pd.read_csv(run / "predictions" / "test.csv")
    assert f"predictions of {len(written)} examples written to {run / 'predictions' / 'test.csv'}" in output
    data = ddp_data(kind, mnist_dir, run)
    data.setup("test")
    expected_rows = data.prediction_rows()["row"].tolist()
    assert written["row"].tolist() == expected_rows and len(set(expected_rows)) == len(data.table("test")) > 16
    inputs = data.table("test")[torch.arange(len(data.table("test")))][0]
    with torch.no_grad():
        probabilities = model_class.load_from_checkpoint(best).eval().predict_step(inputs, 0)
    labels = [data.class_names[index] for index in probabilities.argmax(dim=1).tolist()]
    assert written["prediction"].astype(str).tolist() == labels
    assert list(written.columns) == ["row", "prediction", *(f"p_{name}" for name in data.class_names)]


SIGTERM_AT = """
import os
import signal
import lightning as L

class SigtermAt(L.Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.is_global_zero and (trainer.current_epoch, batch_idx) == (1, 2):
            os.kill(os.getpid(), signal.SIGTERM)  # to rank 0 alone, as a scheduler's preemption of the main process
"""


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_sigterm_stops_both_processes_and_last_continues_to_the_uninterrupted_weights(ddp_fit, mnist_dir, tmp_path):
    (tmp_path / "sigterm_at.py").write_text(SIGTERM_AT)
    command = [*fit_command("mlp", mnist_dir), *TWO_PROCESSES, "--test_after_fit=false"]
    env = {**ONE_THREAD, "PYTHONPATH": python_path(tmp_path)}
    output = run_cli([*command, "--trainer.callbacks+=sigterm_at.SigtermAt"], tmp_path, expected=143, env=env)
    folder = tmp_path / "lightning_logs" / "mnist_mlp" / "version_0"
    assert f"SIGTERM at epoch 1, step 11: saved {folder.relative_to(tmp_path)}/checkpoints/interrupted.ckpt" in output

    checkpoints = {path: path.read_bytes() for path in (folder / "checkpoints").iterdir()}
    one_process = [arg for arg in command if arg not in TWO_PROCESSES]  # mid-epoch: refused, named, untouched
    output = run_cli([*one_process, "--trainer.devices=1", "--ckpt_path=last"], tmp_path, expected=1)
    assert "in the middle of epoch 1, after 3 steps of 32 rows (batch_size x processes), and this run takes 16 x 1" in (
        output
    )
    assert {path: path.read_bytes() for path in (folder / "checkpoints").iterdir()} == checkpoints

    output = run_cli([*command, "--ckpt_path=last"], tmp_path)
    assert "continuing the run in lightning_logs/mnist_mlp/version_0 from interrupted.ckpt" in output
    uninterrupted, resumed = final_weights(ddp_fit("mlp")), final_weights(folder)
    assert uninterrupted.keys() == resumed.keys()
    assert all(torch.equal(uninterrupted[name], resumed[name]) for name in uninterrupted)


def test_the_documented_multi_node_command_as_two_nodes_of_one_process(ddp_fit, mnist_dir, tmp_path):
    """The torchrun line of docs/runs.md, run as 2 "machines" of 1 process each on this one, with c10d on 127.0.0.1."""
    port = free_port()
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1"]
            + ["--node_rank", str(node), "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}"]
            + ["--rdzv_id", "readme", "-m", "nnmodules", *fit_command("mlp", mnist_dir)[3:], "--test_after_fit=false"]
            + ["--trainer.strategy", "ddp", "--trainer.devices", "1", "--trainer.num_nodes", "2"],
            cwd=tmp_path,
            env=ONE_THREAD,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for node in (0, 1)
    ]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert any("All distributed processes registered. Starting with 2 processes" in out for out in outputs)
    (folder,) = list((tmp_path / "lightning_logs").glob("*/version_*"))  # one run, written by global rank 0
    two_nodes, one_node = final_weights(folder), final_weights(ddp_fit("mlp"))
    assert all(torch.equal(two_nodes[name], one_node[name]) for name in one_node)  # 2 nodes x 1 = 1 node x 2


def test_figures_under_ddp_draw_the_whole_validation_split(mnist_dir, monkeypatch):
    data = data_modules(mnist_dir)["mnist"]
    data.setup("fit")
    share = [next(iter(data.val_dataloader()))]  # what rank 0's loader holds: a share
    trainer = SimpleNamespace(world_size=2, datamodule=data, val_dataloaders=share)
    drawn = []
    monkeypatch.setattr(
        ClassificationFigures, "_confusion", staticmethod(lambda predicted, targets, names: drawn.append(targets))
    )
    ClassificationFigures().figures(trainer, MLPClassifier(input_dim=784, num_classes=10).eval())
    assert torch.equal(drawn[0], data.table("val").tensors[1])  # every validation row, in order
