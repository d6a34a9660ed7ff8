"""Folders of images: both layouts, grayscale and RGB, the cache and when it is rebuilt, files that are not images."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import NO_LOGGER
from PIL import Image

from datamodules import ImageFolderDataModule
from datamodules.images import ImageFolderDataModule as Module
from datamodules.images.files import decode_file, with_channels
from nnmodules import MLPClassifier
from nnmodules.callbacks import PredictionWriter
from nnmodules.cli import run


def image_tree(root: Path, layout: str = "train_test", size: int = 8, mode: str = "L", per_class: int = 10) -> Path:
    """PNG files of two classes whose brightness tells them apart: `cat` dark, `dog` bright."""
    rng = np.random.default_rng(0)
    splits = {"training": per_class, "testing": per_class // 2} if layout == "train_test" else {".": per_class}
    for split, count in splits.items():
        for label, name in enumerate(("cat", "dog")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                shape = (size, size) if mode == "L" else (size, size, 3)
                pixels = rng.integers(0, 100, shape, dtype=np.uint8) + 150 * label
                Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


def test_the_training_and_testing_folders_are_the_splits_and_the_folder_names_the_classes(tmp_path):
    data = ImageFolderDataModule(image_tree(tmp_path / "digits"), batch_size=4, workers=1)
    data.setup("fit")
    assert data.facts.class_names == ("cat", "dog") and data.facts.num_classes == 2
    assert data.facts.image_shape == data.facts.input_shape == (1, 8, 8)
    assert {split: len(table) for split, table in data.tables.items()} == {"train": 18, "val": 2, "test": 10}
    images, labels = data.tables["test"].tensors
    assert images.dtype == torch.uint8 and labels.tolist() == [0] * 5 + [1] * 5
    assert (images[labels == 1].float().mean() > 150) and (images[labels == 0].float().mean() < 100)  # dog bright
    first = Image.open(tmp_path / "digits" / "testing" / "cat" / "0.png")
    assert np.array_equal(images[0, 0].numpy(), np.asarray(first))
    train = data.tables["train"].tensors[0]
    mean, std = train.double().mean().item() / 255, train.double().std(unbiased=False).item() / 255
    assert data.statistics == pytest.approx((mean, std))
    batch, _ = next(iter(data.train_dataloader()))
    assert batch.shape == (4, 1, 8, 8) and batch.dtype == torch.float32


def test_a_folder_per_class_holds_out_a_seeded_test_share_and_rgb_stays_rgb(tmp_path):
    root = image_tree(tmp_path / "photos", layout="classes", mode="RGB", per_class=20)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "cat" / "gray.png")  # one gray among RGB
    data = ImageFolderDataModule(root, flatten=True, test_fraction=0.25, workers=1)
    data.setup(None)
    assert data.facts.image_shape == (3, 8, 8) and data.facts.input_shape == (192,)
    assert {split: len(table) for split, table in data.tables.items()} == {"train": 28, "val": 3, "test": 10}
    again = ImageFolderDataModule(root, flatten=True, test_fraction=0.25, workers=1)
    again.setup(None)
    assert torch.equal(again.tables["test"].tensors[0], data.tables["test"].tensors[0])  # the same seeded split


def test_several_processes_decode_what_one_does_within_few_file_descriptors(tmp_path):
    """Workers hand back arrays by value: tensors would each hold a file descriptor, 300 of them past the limit."""
    root = image_tree(tmp_path / "photos", layout="classes", mode="RGB", per_class=150)
    serial = ImageFolderDataModule(root, workers=1, cache_dir=tmp_path / "one")._decoded()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))
    try:
        parallel = ImageFolderDataModule(root, workers=2, cache_dir=tmp_path / "two")._decoded()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert serial["images"].shape == (300, 3, 8, 8) and torch.equal(serial["images"], parallel["images"])
    assert serial["files"] == parallel["files"] and torch.equal(serial["labels"], parallel["labels"])


def test_the_cache_is_read_the_second_time_and_rebuilt_when_a_file_changes(tmp_path, monkeypatch):
    root = image_tree(tmp_path / "digits")
    first = ImageFolderDataModule(root, workers=1)
    first.setup("fit")
    (cache,) = first._cache_folder().iterdir()
    monkeypatch.setattr(Module, "_decode", lambda *args: pytest.fail("decoded again, though nothing changed"))
    ImageFolderDataModule(root, workers=1).setup("fit")
    monkeypatch.undo()
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(root / "training" / "cat" / "0.png")
    data = ImageFolderDataModule(root, workers=1)
    data.setup("fit")
    (rebuilt,) = data._cache_folder().iterdir()
    assert rebuilt != cache and not cache.exists()  # the stale cache is gone
    assert (data._decoded()["images"] == 255).all(dim=(1, 2, 3)).sum() == 1  # the new file's pixels


def test_a_file_rewritten_with_the_same_size_is_decoded_again(tmp_path):
    root = image_tree(tmp_path / "digits")
    for path in root.rglob("*.png"):  # BMP: uncompressed, so new pixels keep the file's size
        Image.open(path).save(path.with_suffix(".bmp"))
        path.unlink()
    ImageFolderDataModule(root, workers=1)._decoded()
    target = root / "training" / "cat" / "0.bmp"
    size, stamp = target.stat().st_size, target.stat().st_mtime_ns
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(target)
    os.utime(target, ns=(stamp + 10**9, stamp + 10**9))  # a later write, as a second apart on any file system
    assert target.stat().st_size == size
    images = ImageFolderDataModule(root, workers=1)._decoded()["images"]
    assert (images == 255).all(dim=(1, 2, 3)).sum() == 1  # failed with a key of paths and sizes: the old pixels


@pytest.mark.parametrize(
    ("first", "then", "shape"),
    [({"image_size": 8}, {"image_size": 4}, (1, 4, 4)), ({"channels": 1}, {"channels": 3}, (3, 8, 8))],
    ids=["image_size", "channels"],
)
def test_a_setting_that_changes_the_pixels_is_part_of_the_caches_key(first, then, shape, tmp_path):
    root = image_tree(tmp_path / "digits")
    assert tuple(ImageFolderDataModule(root, workers=1, **first)._decoded()["images"].shape[1:]) != shape
    assert tuple(ImageFolderDataModule(root, workers=1, **then)._decoded()["images"].shape[1:]) == shape


def test_unreadable_files_are_left_out_when_asked_and_refused_again_when_not(tmp_path):
    root = image_tree(tmp_path / "digits")
    (root / "training" / "dog" / "notes.png").write_text("not a picture")
    with pytest.warns(UserWarning, match=r"1 of 31 files under .* are not images Pillow reads: .*notes.png.*left out"):
        skipping = ImageFolderDataModule(root, workers=1, skip_unreadable=True)._decoded()
    assert len(skipping["files"]) == 30 and "training/dog/notes.png" not in skipping["files"]
    with pytest.raises(ValueError, match=r"notes.png .*pass skip_unreadable=True to leave them out"):
        ImageFolderDataModule(root, workers=1)._decoded()  # failed where the key left the option out: cached


def test_nothing_is_written_into_the_image_folder_and_an_old_cache_there_is_removed(tmp_path, caplog):
    torchvision = pytest.importorskip("torchvision")
    root = image_tree(tmp_path / "digits", layout="classes")
    old = root / ".litmodules_cache"
    old.mkdir()
    (old / "images-0123456789abcdef0123.pt").write_bytes(b"0.1.0's")
    before = sorted(path for path in root.rglob("*") if old not in path.parents and path != old)
    with caplog.at_level("INFO"):
        ImageFolderDataModule(root, workers=1).setup("fit")
    assert sorted(root.rglob("*")) == before  # failed: the cache was written beside the images
    assert f"removed {old}, the image cache of litmodules 0.1.0" in caplog.text
    assert torchvision.datasets.ImageFolder(root).classes == ["cat", "dog"]  # failed: ".litmodules_cache" a class


def test_files_that_are_not_images_are_named_in_one_error(tmp_path):
    root = image_tree(tmp_path / "digits")
    (root / "training" / "dog" / "notes.png").write_text("not a picture")
    (root / "training" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(
        ValueError,
        match=r"^2 of 32 files under .* are not images Pillow reads: "
        r"training/cat/broken.png \(.*\); training/dog/notes.png \(.*\); move them out",
    ):
        ImageFolderDataModule(root, workers=1).setup("fit")


def test_images_of_another_size_are_named_unless_resized(tmp_path):
    root = image_tree(tmp_path / "digits")
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(root / "training" / "dog" / "big.png")
    with pytest.raises(
        ValueError,
        match=r"^1 of 31 images differ from the usual 8x8 pixels: "
        r"training/dog/big.png \(10x12\); pass image_size to resize them all$",
    ):
        ImageFolderDataModule(root, workers=1).setup("fit")
    data = ImageFolderDataModule(root, image_size=6, workers=1)
    data.setup("fit")
    assert data.facts.image_shape == (1, 6, 6)


def test_a_model_from_the_command_line_takes_the_images_shape_and_classes_from_the_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = image_tree(tmp_path / "digits")
    args = ["fit", "--model", "MLPClassifier", "--data", "ImageFolderDataModule", f"--data.root={root}"]
    cli = run([*args, "--data.flatten=true", "--trainer.fast_dev_run=true", "--data.workers=1"])
    assert cli.model.hparams.input_dim == 64 and cli.model.hparams.num_classes == 2
    assert cli.trainer.global_step == 1


def test_predict_on_a_folder_writes_each_files_path_and_predicted_class(tmp_path):
    new = tmp_path / "new"
    (new / "more").mkdir(parents=True)
    Image.fromarray(np.full((8, 8), 230, np.uint8)).save(new / "bright.png")
    Image.fromarray(np.full((8, 8), 20, np.uint8)).save(new / "more" / "dark.png")
    data = ImageFolderDataModule(image_tree(tmp_path / "digits"), predict_dir=new, flatten=True, workers=1)
    model = MLPClassifier(hidden_dims=[8], lr=0.05, lr_schedule="constant")
    writer = PredictionWriter(filename=str(tmp_path / "predictions.csv"))
    trainer = L.Trainer(max_epochs=30, callbacks=[writer], **NO_LOGGER, enable_checkpointing=False)
    trainer.fit(model, data)
    trainer.predict(model, datamodule=data, return_predictions=False)
    written = pd.read_csv(tmp_path / "predictions.csv")
    assert list(written.columns) == ["row", "file", "prediction", "p_cat", "p_dog"]
    assert written["file"].tolist() == ["bright.png", "more/dark.png"] and written["prediction"].tolist() == [
        "dog",
        "cat",
    ]


def test_hidden_files_and_folders_in_a_class_folder_are_not_images(tmp_path):
    root = image_tree(tmp_path / "digits")
    hidden = root / "training" / "cat" / ".ipynb_checkpoints"  # what Jupyter leaves beside the files it opens
    hidden.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(hidden / "0-checkpoint.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "training" / "dog" / ".preview.png")
    files = ImageFolderDataModule(root, workers=1)._decoded()["files"]
    assert len(files) == 30 and not [name for name in files if "/." in name]


def test_skipping_unreadable_files_still_refuses_a_folder_without_any_image(tmp_path):
    for name in ("cat", "dog"):
        (tmp_path / "notes" / name).mkdir(parents=True)
        (tmp_path / "notes" / name / "a.png").write_text("not a picture")
    with pytest.raises(ValueError, match=r"^2 of 2 files under .* are not images Pillow reads: .*: none is an image$"):
        ImageFolderDataModule(tmp_path / "notes", workers=1, skip_unreadable=True)._decoded()


def test_a_palette_image_stays_in_colour_and_gray_is_the_luma_of_rgb(tmp_path):
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # colour 1: red
    palette.save(tmp_path / "red.png")
    pixels = decode_file((str(tmp_path / "red.png"), None))
    assert pixels.shape == (3, 4, 4) and pixels[:, 0, 0].tolist() == [255, 0, 0]
    colours = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8).T.reshape(3, 1, 3)
    gray = with_channels(colours, 1)  # ITU-R 601: 0.299 R + 0.587 G + 0.114 B
    assert gray.flatten().tolist() == [round(0.299 * 255), round(0.587 * 255), round(0.114 * 255)]


def test_a_file_of_another_size_with_the_same_time_is_decoded_again(tmp_path):
    """A copy that keeps times (cp -p, rsync -t) or a coarse clock: the size still tells the file changed."""
    root = image_tree(tmp_path / "digits")
    ImageFolderDataModule(root, workers=1)._decoded()
    target = root / "training" / "cat" / "0.png"
    size, stamp = target.stat().st_size, target.stat().st_mtime_ns
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(target)  # one value: a smaller PNG
    os.utime(target, ns=(stamp, stamp))
    assert target.stat().st_size != size
    images = ImageFolderDataModule(root, workers=1)._decoded()["images"]
    assert (images == 255).all(dim=(1, 2, 3)).sum() == 1


def test_two_image_folders_of_one_name_keep_caches_of_their_own(tmp_path, monkeypatch):
    one, two = image_tree(tmp_path / "a" / "digits"), image_tree(tmp_path / "b" / "digits", size=4)
    ImageFolderDataModule(one, workers=1)._decoded()
    ImageFolderDataModule(two, workers=1)._decoded()
    monkeypatch.setattr(Module, "_decode", lambda *args: pytest.fail("decoded again: the other folder's cache won"))
    assert ImageFolderDataModule(one, workers=1)._decoded()["images"].shape[1:] == (1, 8, 8)
    assert ImageFolderDataModule(two, workers=1)._decoded()["images"].shape[1:] == (1, 4, 4)


def test_an_old_cache_folder_holding_files_of_the_users_keeps_them(tmp_path):
    root = image_tree(tmp_path / "digits", layout="classes")
    old = root / ".litmodules_cache"
    old.mkdir()
    (old / "images-0123456789abcdef0123.pt").write_bytes(b"0.1.0's")
    (old / "notes.txt").write_text("the user's")
    ImageFolderDataModule(root, workers=1)._decoded()
    assert [path.name for path in old.iterdir()] == ["notes.txt"]


def test_a_small_folder_keeps_one_validation_image(tmp_path):
    data = ImageFolderDataModule(image_tree(tmp_path / "digits", per_class=2), workers=1, val_fraction=0.1)
    data.setup("fit")  # 4 training images: a tenth rounds to none
    assert len(data.tables["val"]) == 1 and len(data.tables["train"]) == 3


def test_unreadable_files_to_predict_are_left_out_when_asked(tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(new / f"{name}.png")
    (new / "notes.png").write_text("not a picture")
    data = ImageFolderDataModule(image_tree(tmp_path / "digits"), workers=1, predict_dir=new, skip_unreadable=True)
    with pytest.warns(UserWarning, match=r"1 of 3 files under .*new are not images Pillow reads: notes.png"):
        data.setup("predict")
    assert data.files_of["predict"] == ["a.png", "b.png"] and len(data.tables["predict"]) == 2
