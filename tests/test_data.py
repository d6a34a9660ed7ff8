"""MNISTDataModule and the batch path, on tiny IDX files read by the real torchvision code."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from conftest import TEST_IMAGES, TRAIN_IMAGES, VAL_SIZE, fake_digits, write_idx
from torch.utils.data import DataLoader
from torchvision.datasets import MNIST

from datamodules import MNISTDataModule
from datamodules.batches import (
    BatchShards,
    DeviceBatches,
    DeviceLoader,
    Resumption,
    TensorTable,
    TrainSampler,
    batch_loader,
    device_loader,
    epoch_order,
    evaluation_rows,
)
from datamodules.pixels import pixel_statistics


def epoch_batches(loader, epoch: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.sampler.set_epoch(epoch)  # what Lightning does at the start of every epoch
    return list(loader)


def rows(images: torch.Tensor) -> set[bytes]:
    return {bytes(row.numpy()) for row in images.reshape(len(images), -1)}


def test_splits_shapes_dtypes_and_normalisation(mnist):
    mnist.prepare_data()
    mnist.setup("fit")
    mnist.setup("test")
    assert {split: len(table) for split, table in mnist.tables.items()} == {
        "train": TRAIN_IMAGES - VAL_SIZE,
        "val": VAL_SIZE,
        "test": TEST_IMAGES,
    }
    images, labels = next(iter(mnist.train_dataloader()))
    assert images.shape == (32, 784) and images.dtype == torch.float32
    assert labels.shape == (32,) and labels.dtype == torch.int64
    raw = mnist.tables["train"].tensors[0][:1].float()  # uint8 pixels as stored
    expected = (raw / 255 - 0.1307) / 0.3081  # ToTensor + Normalize((0.1307,), (0.3081,)): MNIST's own figures
    first = mnist.tables["train"][0][0]
    torch.testing.assert_close(first, expected[0])
    assert first.min().item() == pytest.approx(-0.1307 / 0.3081, abs=1e-5)  # a black pixel


def test_train_and_val_split_the_training_images(mnist, mnist_dir):
    mnist.setup("fit")
    train, val = mnist.tables["train"].tensors[0], mnist.tables["val"].tensors[0]
    assert rows(train).isdisjoint(rows(val))
    assert rows(train) | rows(val) == rows(MNIST(mnist_dir, train=True).data)


def test_every_epoch_hands_out_every_row_once_including_a_short_last_batch(mnist_dir):
    data = MNISTDataModule(mnist_dir, batch_size=100, val_size=VAL_SIZE, download=False)
    data.setup("fit")
    batches = epoch_batches(data.train_dataloader())
    assert [len(labels) for _, labels in batches] == [100, 100, 56]
    assert sorted(torch.cat([labels for _, labels in batches]).tolist()) == sorted(
        data.tables["train"].tensors[1].tolist()
    )


def test_order_depends_on_seed_and_epoch_only(mnist_dir):
    def first_epochs(seed: int) -> list[torch.Tensor]:
        data = MNISTDataModule(mnist_dir, batch_size=32, val_size=VAL_SIZE, download=False, seed=seed)
        data.setup("fit")
        loader = data.train_dataloader()
        return [torch.cat([labels for _, labels in epoch_batches(loader, epoch)]) for epoch in (0, 1, 0)]

    epoch0, epoch1, epoch0_again = first_epochs(seed=7)
    assert torch.equal(epoch0, epoch0_again)
    assert not torch.equal(epoch0, epoch1)
    assert all(torch.equal(a, b) for a, b in zip(first_epochs(seed=7), (epoch0, epoch1, epoch0), strict=True))
    assert not torch.equal(first_epochs(seed=8)[0], epoch0)


def test_evaluation_keeps_order(mnist):
    mnist.setup("test")
    labels = torch.cat([labels for _, labels in epoch_batches(mnist.test_dataloader(), epoch=3)])
    assert torch.equal(labels, mnist.tables["test"].tensors[1])


def test_images_kept_as_1x28x28_when_not_flattened(mnist_dir):
    data = MNISTDataModule(mnist_dir, batch_size=8, val_size=VAL_SIZE, download=False, flatten=False)
    data.setup("fit")
    images, _ = next(iter(data.train_dataloader()))
    assert images.shape == (8, 1, 28, 28)


def test_batches_never_go_through_per_sample_pil(mnist, monkeypatch):
    def per_sample(*args):
        raise AssertionError("MNIST.__getitem__ (one PIL image per sample) was called")

    monkeypatch.setattr(MNIST, "__getitem__", per_sample)
    mnist.setup(None)
    for loader in (mnist.train_dataloader(), mnist.val_dataloader(), mnist.test_dataloader()):
        assert sum(len(labels) for _, labels in loader) == len(loader.dataset)


def test_workers_hand_out_the_same_batches(mnist_dir):
    def batches(num_workers: int) -> list[torch.Tensor]:
        data = MNISTDataModule(mnist_dir, batch_size=64, val_size=VAL_SIZE, download=False, num_workers=num_workers)
        data.setup("fit")
        return [images for images, _ in epoch_batches(data.train_dataloader(), epoch=2)]

    assert all(torch.equal(a, b) for a, b in zip(batches(0), batches(1), strict=True))


def test_missing_files_and_failed_download_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # refused at once, with or without a network
    data = MNISTDataModule(tmp_path / "nothing_here", batch_size=32)
    expected = r"(?s)MNIST not found under \S*nothing_here/MNIST/raw and the download failed \(.*127.0.0.1.*\): "
    files = "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"
    with pytest.raises(FileNotFoundError, match=expected + f"put {files} there or pass --data.data_dir"):
        data.prepare_data()


def test_evaluation_batches_are_four_training_batches_unless_set(mnist_dir):
    data = MNISTDataModule(mnist_dir, batch_size=10, val_size=VAL_SIZE, download=False)
    data.setup(None)
    assert [len(labels) for _, labels in data.val_dataloader()] == [40, 24]
    assert next(iter(data.train_dataloader()))[1].shape == (10,)
    data.eval_batch_size = 50
    assert [len(labels) for _, labels in data.test_dataloader()] == [50, 30]


def test_device_batches_are_the_host_order_as_index_tensors(mnist_dir):
    """On the CPU, the device path's permutation is the host path's `DistributedSampler` order, epoch by epoch."""
    data = MNISTDataModule(mnist_dir, batch_size=48, val_size=VAL_SIZE, download=False, seed=3)
    data.setup("fit")
    host = data.train_dataloader()
    device = device_loader(data.tables["train"], 48, train=True, seed=3)
    for epoch in (0, 1):
        device.sampler.set_epoch(epoch)
        pairs = list(zip(epoch_batches(host, epoch), device, strict=True))
        assert [len(labels) for _, labels in host] == [48] * 5 + [16]
        assert all(torch.equal(a, b) for pair in pairs for a, b in zip(*pair, strict=True))


def test_device_batches_shard_like_ddp():
    """Two ranks: training shards are disjoint, equally long and padded; evaluation gives every batch once."""
    table = TensorTable(torch.arange(11))
    shards = [list(DeviceBatches(table, 4, train=True, seed=0, num_replicas=2, rank=rank)) for rank in (0, 1)]
    rows = [torch.cat(batches).tolist() for batches in shards]
    assert [len(batches) for batches in shards] == [2, 2] and [len(r) for r in rows] == [6, 6]
    assert set(rows[0]) | set(rows[1]) == set(range(11)) and len(set(rows[0]) & set(rows[1])) <= 1
    # evaluation: the one-process batches [0-3] [4-7] [8-10], dealt out whole, each row once; the host path alike
    evaluation = [[b.tolist() for b in DeviceBatches(table, 4, False, 0, 2, rank)] for rank in (0, 1)]
    assert evaluation == [[[0, 1, 2, 3], [8, 9, 10]], [[4, 5, 6, 7]]]
    assert [list(BatchShards(table, 4, 2, rank)) for rank in (0, 1)] == [[0, 1, 2, 3, 8, 9, 10], [4, 5, 6, 7]]
    # fewer batches than ranks: dealt out row by row, so that no rank goes without
    assert [list(BatchShards(table, 16, 2, rank)) for rank in (0, 1)] == [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9]]


def test_an_interrupted_epoch_goes_on_with_the_rows_after_those_done():
    """Both samplers, rank 1 of 2, 4 rows of epoch 1 done: that epoch's global order without them; epoch 2 whole."""
    table, resumption = TensorTable(torch.arange(10)), Resumption()
    resumption.set(epoch=1, rows=4)
    host = TrainSampler(table, num_replicas=2, rank=1, seed=7, resumption=resumption)
    device = DeviceBatches(table, 2, train=True, seed=7, num_replicas=2, rank=1, resumption=resumption)
    for epoch, done in ((1, 4), (2, 0)):
        host.set_epoch(epoch)
        device.set_epoch(epoch)
        order = torch.randperm(10, generator=torch.Generator().manual_seed(7 + epoch))  # seeded by seed + epoch
        assert list(host) == torch.cat(list(device)).tolist() == order[done + 1 :: 2].tolist()
    # 11 rows for 2 ranks: the order is padded with its own first row, as DistributedSampler pads
    first = torch.randperm(11, generator=torch.Generator().manual_seed(7))
    assert torch.equal(epoch_order(11, seed=7, epoch=0, total=12), torch.cat([first, first[:1]]))


def test_device_batches_count_their_batches_as_they_hand_them_out():
    table = TensorTable(torch.arange(10))
    for train in (True, False):
        for drop_last in (False, True):
            batches = DeviceBatches(table, 3, train, seed=0, num_replicas=1, rank=0, drop_last_batch=drop_last)
            batches.set_epoch(0)
            expected = [3, 3, 3] if train and drop_last else [3, 3, 3, 1]  # evaluation never drops a row
            assert [len(batch) for batch in batches] == expected and len(batches) == len(expected)
    whole = DeviceBatches(TensorTable(torch.arange(9)), 3, True, seed=0, num_replicas=1, rank=0, drop_last_batch=True)
    assert [len(batch) for batch in whole] == [3, 3, 3]  # a last batch of full size stays
    # as many batches as ranks: each rank one whole batch (not dealt out row by row)
    assert [evaluation_rows(8, 4, 2, rank).tolist() for rank in (0, 1)] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_tensor_tables_rows_and_mistakes(mnist_dir):
    table = TensorTable(torch.arange(4), torch.arange(4) * 10, transform=lambda t: t + 100)
    assert table[2] == (102, 20) and len(table) == 4 and table.to("cpu") is table
    moved = table.to("meta")  # another device, as a GPU would be: every tensor goes, the transform stays
    assert [t.device.type for t in moved.tensors] == ["meta", "meta"] and moved.transform is table.transform
    with pytest.raises(ValueError, match=r"^TensorTable needs tensors of equal length, got \[3, 2\]$"):
        TensorTable(torch.zeros(3), torch.zeros(2))
    assert MNISTDataModule(mnist_dir, batch_size=1, eval_batch_size=1).batch_size == 1  # the smallest allowed
    with pytest.raises(RuntimeError, match=r"^MNISTDataModule has no 'train' split yet: call setup\(\) first$"):
        MNISTDataModule(mnist_dir, download=False).train_dataloader()


def test_the_host_loader_keeps_a_short_last_batch_and_predictions_take_it(mnist_dir):
    assert [len(rows) for (rows,) in batch_loader(TensorTable(torch.arange(10)), 4)] == [4, 4, 2]
    assert [rows.tolist() for (rows,) in device_loader(TensorTable(torch.arange(6)), 4)] == [[0, 1, 2, 3], [4, 5]]
    data = MNISTDataModule(mnist_dir, 32, VAL_SIZE, download=False)
    data.trainer = L.Trainer(accelerator="cpu", logger=False)
    data.setup(None)
    assert isinstance(data.val_dataloader(), DeviceLoader)  # resident on the CPU, by default
    assert isinstance(data.predict_dataloader(), DataLoader)  # Lightning tracks each batch's rows through it


def test_resident_training_matches_the_host_path(mnist_dir, tmp_path):
    """On the CPU, the resident path (`DeviceBatches`, the default) trains to the host path's very weights."""
    from nnmodules import MLPClassifier

    def fit(device_resident: bool | None) -> tuple[type, torch.Tensor]:
        L.seed_everything(0)
        data = MNISTDataModule(mnist_dir, 32, VAL_SIZE, download=False, device_resident=device_resident)
        model = MLPClassifier(hidden_dims=(16,), dropout=0.5)  # dropout: the data path must leave the global RNG alone
        quiet = {"enable_progress_bar": False, "enable_model_summary": False, "logger": False}
        trainer = L.Trainer(max_epochs=2, accelerator="cpu", enable_checkpointing=False, **quiet)
        trainer.fit(model, data)
        return type(trainer.train_dataloader.sampler), torch.cat([p.flatten() for p in model.parameters()])

    (host_sampler, host), (auto_sampler, auto), (resident_sampler, resident) = fit(False), fit(None), fit(True)
    assert resident_sampler is auto_sampler is DeviceBatches and host_sampler is not DeviceBatches
    assert torch.equal(host, resident) and torch.equal(host, auto)


def test_resident_only_with_a_trainer_no_workers_and_no_overfitting(mnist_dir):
    data = MNISTDataModule(mnist_dir, 32, VAL_SIZE, download=False, device_resident=True)
    assert data.resident_device() is None  # no Trainer: no device to go to
    data.trainer = L.Trainer(accelerator="cpu", logger=False, overfit_batches=2)
    assert data.resident_device() is None  # Lightning replaces the sampler with a sequential one
    data.trainer = L.Trainer(accelerator="cpu", logger=False)
    assert data.resident_device() == torch.device("cpu")
    with_workers = MNISTDataModule(mnist_dir, 32, VAL_SIZE, download=False, num_workers=1)
    with_workers.trainer = data.trainer
    assert with_workers.resident_device() is None  # batches cut in worker processes: the DataLoader's path


def test_resident_on_a_gpu_only_when_the_tables_take_at_most_half_its_free_memory(mnist_dir, monkeypatch):
    data = MNISTDataModule(mnist_dir, 32, VAL_SIZE, download=False)
    data.setup(None)
    gpu = torch.device("cuda", 0)
    data.trainer = SimpleNamespace(overfit_batches=0, strategy=SimpleNamespace(root_device=gpu))
    tables = sum(table.nbytes for table in data.tables.values())
    for free, expected in ((2 * tables, gpu), (2 * tables - 1, None)):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device, free=free: (free, 4 * free))
        assert data.resident_device() == expected


@pytest.mark.parametrize("device_resident", [False, True])
def test_drop_last_leaves_out_the_short_training_batch_only(mnist_dir, device_resident):
    data = MNISTDataModule(mnist_dir, 48, VAL_SIZE, download=False, drop_last=True, device_resident=device_resident)
    data.trainer = L.Trainer(accelerator="cpu", logger=False)
    data.setup(None)
    train, test = data.train_dataloader(), data.test_dataloader()
    assert [len(labels) for _, labels in epoch_batches(train, 1)] == [48] * 5 and len(train) == 5  # 256 rows
    assert sum(len(labels) for _, labels in test) == TEST_IMAGES


def test_prepare_data_reads_nothing_when_the_files_are_there(mnist_dir, monkeypatch):
    def read(*args, **kwargs):
        raise AssertionError("torchvision's MNIST was constructed: it reads the files into memory")

    monkeypatch.setattr(MNIST, "__init__", read)
    MNISTDataModule(mnist_dir, download=True).prepare_data()  # every stage calls it, fit and test alike


def test_fashion_mnist_has_its_own_folder_classes_and_statistics(tmp_path):
    images, labels = fake_digits(120, seed=3)
    write_idx(tmp_path / "FashionMNIST" / "raw", "train", images // 2, labels)  # darker than the digits
    write_idx(tmp_path / "FashionMNIST" / "raw", "t10k", *fake_digits(20, seed=4))
    data = MNISTDataModule(tmp_path, dataset="FashionMNIST", val_size=20, batch_size=16, download=False)
    data.setup(None)
    assert data.class_names[:2] == ["T-shirt/top", "Trouser"] and data.num_classes == 10
    assert data.statistics == pytest.approx(((images // 2).mean() / 255, (images // 2).std() / 255), rel=1e-9)
    assert {name: len(table) for name, table in data.tables.items()} == {"train": 100, "val": 20, "test": 20}
    batch, _ = next(iter(data.train_dataloader()))
    assert batch.shape == (16, 784) and abs(batch.mean().item()) < 0.5  # normalised by its own statistics


def test_emnist_letters_are_upright_and_labelled_from_zero(tmp_path):
    images, _ = fake_digits(60, seed=5)
    letters = np.arange(60, dtype=np.uint8) % 26 + 1  # EMNIST labels its letters 1 to 26
    raw = tmp_path / "EMNIST" / "raw"
    write_idx(raw, "emnist-letters-train", images.transpose(0, 2, 1), letters)  # the files hold them column by column
    write_idx(raw, "emnist-letters-test", images[:10].transpose(0, 2, 1), letters[:10])
    data = MNISTDataModule(tmp_path, dataset="EMNIST", emnist_split="letters", val_size=10, download=False)
    data.setup("test")
    pixels, targets = data.tables["test"].tensors
    assert np.array_equal(pixels.numpy().reshape(10, 28, 28), images[:10])  # turned upright again
    assert targets.tolist() == (letters[:10] - 1).tolist() and data.class_names[targets[0]] == "a"
    assert data.num_classes == 26 and data.class_names == list("abcdefghijklmnopqrstuvwxyz")


def test_a_failed_download_leaves_the_folder_named_as_it_was(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")

    def cut_short(dataset) -> None:  # as a lost connection leaves it: the folders made, a file begun
        Path(dataset.raw_folder).mkdir(parents=True, exist_ok=True)
        (Path(dataset.raw_folder) / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b cut")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", cut_short)
    typo = tmp_path / "dtaa"  # a mistyped --data.data_dir
    with pytest.raises(FileNotFoundError, match="the download failed"):
        MNISTDataModule(typo, download=True).prepare_data()
    assert not typo.exists()  # failed: dtaa/MNIST/raw stayed behind
    mine = tmp_path / "data"
    mine.mkdir()
    (mine / "notes.txt").write_text("kept")
    with pytest.raises(FileNotFoundError, match="the download failed"):
        MNISTDataModule(mine, download=True).prepare_data()
    assert [path.name for path in mine.iterdir()] == ["notes.txt"]


def test_ctrl_c_during_a_download_leaves_nothing_and_stops(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")

    def interrupted(dataset) -> None:  # Ctrl-C half-way through the first file
        Path(dataset.raw_folder).mkdir(parents=True, exist_ok=True)
        (Path(dataset.raw_folder) / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", interrupted)
    with pytest.raises(KeyboardInterrupt):  # not turned into a missing-file error: the user stopped it
        MNISTDataModule(tmp_path / "data", download=True).prepare_data()
    assert not (tmp_path / "data").exists()


def test_a_validation_split_of_every_training_image_is_refused(mnist_dir):
    data = MNISTDataModule(mnist_dir, val_size=TRAIN_IMAGES, download=False)
    with pytest.raises(ValueError, match=f"val_size {TRAIN_IMAGES} leaves no training images: there are 320"):
        data.setup("fit")
    data = MNISTDataModule(mnist_dir, val_size=TRAIN_IMAGES - 1, download=False)
    data.setup("fit")
    assert len(data.tables["train"]) == 1 and data.facts.training_rows == 1


def test_testing_without_known_statistics_takes_those_of_the_training_images(tmp_path):
    """A checkpoint of 0.1.0 keeps no statistics: testing normalises as training did, not by the test images."""
    train, test = fake_digits(60, seed=6), fake_digits(20, seed=7)
    write_idx(tmp_path / "FashionMNIST" / "raw", "train", train[0] // 3, train[1])
    write_idx(tmp_path / "FashionMNIST" / "raw", "t10k", *test)
    data = MNISTDataModule(tmp_path, dataset="FashionMNIST", val_size=10, download=False)
    data.setup("test")
    pixels = train[0] // 3 / 255
    assert data.statistics == pytest.approx((pixels.mean(), pixels.std()), rel=1e-9)


def test_a_checkpoints_data_state_gives_the_training_rows_and_statistics(mnist_dir):
    data = MNISTDataModule(mnist_dir, val_size=VAL_SIZE, download=False)
    data.setup("fit")
    state = data.state_dict()
    assert state == {"statistics": data.statistics, "training_rows": TRAIN_IMAGES - VAL_SIZE}
    loaded = MNISTDataModule(mnist_dir, download=False)
    loaded.load_state_dict({**state, "statistics": (0.25, 0.5)})
    assert loaded.facts.training_rows == TRAIN_IMAGES - VAL_SIZE and loaded.statistics == (0.25, 0.5)


def test_images_of_one_colour_are_normalised_by_a_deviation_of_one():
    assert pixel_statistics(torch.full((4, 784), 51, dtype=torch.uint8)) == (pytest.approx(0.2), 1.0)
