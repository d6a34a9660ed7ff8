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
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import ROOT, VAL_SIZE
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from datamodules import MNISTDataModule, TabularDataModule
from datamodules.batches import device_loader
from nnmodules import MLPClassifier, ScratchDeepNet
from nnmodules.figures import ClassificationFigures

PEOPLE = ROOT / "examples" / "people.csv"
QUIET = {"enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu", "logger": False}


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
        run = getattr(L.Trainer(devices=1, **QUIET), stage)
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


@pytest.mark.parametrize("kind", ["mlp", "tabular"])
def test_two_process_fit_from_the_command_line(kind, mnist_dir, tmp_path):
    config, data_args, model_class = DDP_RUNS[kind]
    command = [sys.executable, "-m", "nnmodules", "fit", "--config", str(ROOT / "configs" / config), *data_args]
    if kind == "mlp":
        command.append(f"--data.data_dir={mnist_dir}")
    else:
        command.append(f"--data.csv={PEOPLE}")
    command += ["--trainer.max_epochs=2", "--trainer.enable_progress_bar=false"]
    result = subprocess.run(
        [*command, "--trainer.strategy", "ddp", "--trainer.devices", "2"],  # the two flags, nothing else
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # Lightning's own choice on a 2-core machine; fixed here
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr and "All distributed processes registered" in result.stderr

    runs = list((tmp_path / "lightning_logs").glob("*/version_*"))
    assert len(runs) == 1  # one run folder: rank 1 writes nothing of its own
    run = runs[0]
    pids = {re.search(r"\.(\d+)\.\d+$", p.name).group(1) for p in run.glob("events.out.tfevents.*")}
    assert len(pids) == 1  # every event file from one process, rank 0
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and checkpoints[1] == "last.ckpt"

    logged = scalars(run)
    if kind == "mlp":
        data = MNISTDataModule(mnist_dir, batch_size=16, eval_batch_size=16, val_size=VAL_SIZE, download=False)
    else:  # the same split and preprocessing, from the checkpoint
        data = TabularDataModule.load_from_checkpoint(run / "checkpoints" / "last.ckpt", csv=str(PEOPLE))
    last = one_process(model_class.load_from_checkpoint(run / "checkpoints" / "last.ckpt"), data, "validate")
    best_model = model_class.load_from_checkpoint(run / "checkpoints" / checkpoints[0])
    best = one_process(best_model, data, "test")
    assert {name: logged[name] for name in last} == last  # exactly: the float32 TensorBoard holds
    assert {name: logged[name] for name in best} == best
    # and to the last bit of the float64 sums: the val/loss that made the best checkpoint the best
    states = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    best_score = next(state["best_model_score"] for key, state in states.items() if key.startswith("ModelCheckpoint"))
    assert one_process(best_model, data, "validate", exact=True)["val/loss"] == best_score.item()
    if kind == "mlp":  # predict under DDP: each rank a share, one file in the data's order
        predict = [sys.executable, "-m", "nnmodules", "predict", "--config", str(ROOT / "configs" / config)]
        predict += [*data_args, f"--data.data_dir={mnist_dir}", f"--ckpt_path={run / 'checkpoints' / checkpoints[0]}"]
        predict += ["--trainer.enable_progress_bar=false", "--trainer.strategy", "ddp", "--trainer.devices", "2"]
        result = subprocess.run(predict, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        written = (run.parent / "version_1" / "predictions.csv").read_text().splitlines()
        data.setup("test")
        inputs, _ = data.table("test")[torch.arange(len(data.table("test")))]
        with torch.no_grad():
            expected = best_model.eval()(inputs).argmax(dim=1).tolist()
        assert [int(line.split(",")[0]) for line in written[1:]] == expected


def test_figures_under_ddp_draw_the_whole_validation_split(mnist_dir, monkeypatch):
    data = data_modules(mnist_dir)["mnist"]
    data.setup("fit")
    share = [next(iter(data.val_dataloader()))]  # what rank 0's loader holds: a share
    trainer = SimpleNamespace(world_size=2, datamodule=data, val_dataloaders=share)
    drawn = []
    monkeypatch.setattr(
        ClassificationFigures, "_confusion", staticmethod(lambda predicted, targets, names: drawn.append(targets))
    )
    ClassificationFigures().figures(trainer, MLPClassifier().eval())
    assert torch.equal(drawn[0], data.table("val").tensors[1])  # every validation row, in order
