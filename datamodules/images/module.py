"""Folders of image files, a folder per class: decoded once, cached as one uint8 tensor, served by the batch path."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import Tensor

from datamodules.batches import TensorDataModule, TensorTable
from datamodules.choices import check_choice
from datamodules.contract import DataFacts
from datamodules.errors import MissingFileError, UserError
from datamodules.images.files import decode_files, listed, stacked, with_channels
from datamodules.pixels import Normalize, pixel_statistics

Layout = Literal["auto", "classes", "train_test"]
Channels = Literal[1, 3]  # grayscale or RGB
SPLIT_FOLDERS = ("training", "testing")  # the train_test layout's two folders, each a folder per class
CACHE_VERSION = 1  # part of every cache key: a change of what a cache holds invalidates the old ones
OLD_CACHE = ".litmodules_cache"  # where 0.1.0 kept the cache: inside the image folder


class ImageFolderDataModule(TensorDataModule):
    """Image files in a folder per class, decoded once into one uint8 tensor and kept in the user's cache.

    Two layouts: `root/<class>/...` (torchvision's `ImageFolder`; `test_fraction` of the
    images are held out for testing) and `root/training/<class>/...` with
    `root/testing/<class>/...` (an official test split, as the MNIST PNG download has it);
    "auto" takes the second when both folders exist. Class names are the folder names,
    sorted. Every file in a class folder (at any depth, hidden files aside) is decoded
    with Pillow (PNG, JPEG, BMP, GIF, TIFF, WebP), in several processes with a progress bar, on
    the first setup only: the tensors are saved in `cache_dir` under a key made of the
    files' paths, sizes and modification times (and `image_size`, `channels` and `skip_unreadable`), and
    rebuilt when any of them changes. Nothing is written into `root`. Pixels are normalised a batch at a
    time with the mean and deviation of the training images.

    Args:
        root: the folder of the images.
        layout: "auto", "classes" or "train_test" (see above).
        image_size: resize every image to this height and width (one number: square); None: the images must
            share one size already.
        channels: 1 (grayscale) or 3 (RGB); None: 1 when every image is grayscale, else 3.
        flatten: hand out one vector per image (for MLPs); False keeps channels x height x width.
        val_fraction: share of the training images held out for validation.
        test_fraction: share of the images held out for testing, in the "classes" layout.
        cache_dir: where the decoded tensors are kept; None: a folder of `root`'s own under the user's cache,
            `$XDG_CACHE_HOME/litmodules/images/` (else `~/.cache/litmodules/images/`). A cache 0.1.0 kept in
            `<root>/.litmodules_cache`, where other loaders took it for a class, is removed.
        skip_unreadable: leave out files that are not images Pillow reads, with a warning naming them (as
            torchvision's `is_valid_file`); False: they are refused.
        workers: processes that decode the images on the first setup; None: one per CPU.
        predict_dir: a folder of images (any depth, no class folders needed) for `predict`, which writes each
            file's path (`file`) with its predicted class; None: `predict` predicts the test split.
        batch_size: images per batch.
        seed: seeds the splits and the shuffle of every epoch.
        **loading: how batches are served, as for any data module (see `TensorDataModule`).
    """

    paths = ("root", "cache_dir", "predict_dir")
    plumbing = (*TensorDataModule.plumbing, "root", "cache_dir", "workers", "predict_dir")

    def __init__(
        self,
        root: str | Path,
        layout: Layout = "auto",
        image_size: int | tuple[int, int] | None = None,
        channels: Channels | None = None,
        flatten: bool = False,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        cache_dir: str | Path | None = None,
        skip_unreadable: bool = False,
        workers: int | None = None,
        predict_dir: str | Path | None = None,
        batch_size: int = 64,
        seed: int = 42,
        **loading: Any,
    ) -> None:
        super().__init__(batch_size, seed, **loading)
        check_choice("layout", layout, Layout)
        if channels is not None:
            check_choice("channels", channels, Channels)
        if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
            raise UserError(
                f"val_fraction ({val_fraction}) must be above 0 and, with test_fraction ({test_fraction}), leave "
                "images for training: the two must sum below 1"
            )
        saved = self.hparams  # the paths absolute, as saved
        self.root, self.layout = Path(saved.root), layout
        self.image_size = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.channels, self.flatten = channels, flatten
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.cache_dir = None if saved.cache_dir is None else Path(saved.cache_dir)
        self.workers, self.skip_unreadable = workers, skip_unreadable
        self.predict_dir = None if saved.predict_dir is None else Path(saved.predict_dir)
        self.files_of: dict[str, list[str]] = {}  # each split's files, in its rows' order
        # what the training images taught, from setup or from a checkpoint's state: classes, shape, statistics, rows
        self.learnt: dict[str, Any] | None = None
        self._decoded_cache: dict[str, Any] | None = None

    @property
    def statistics(self) -> tuple[float, float] | None:
        """The mean and deviation of the training split's pixels, on the 0-1 scale (once set up)."""
        return None if self.learnt is None else tuple(self.learnt["statistics"])

    def prepare_data(self) -> None:
        if self.learnt is None or self.predict_dir is None:  # a checkpoint's predict_dir needs no training images
            self._decoded()  # decoded and cached once, on one process; the others then read the cache

    def setup(self, stage: str | None = None) -> None:
        """The splits (unless only new images are predicted with a checkpoint's classes), the facts."""
        if "train" not in self.tables and (self.learnt is None or stage != "predict" or self.predict_dir is None):
            self._split()
        if stage in ("predict", None) and self.predict_dir is not None and "predict" not in self.tables:
            self.tables["predict"] = self._predict_table(Normalize(*self.statistics))
        self.facts = self._facts()

    def _facts(self) -> DataFacts:
        channels, height, width = self.learnt["shape"]
        return DataFacts(
            task="multiclass",
            input_shape=(channels * height * width,) if self.flatten else (channels, height, width),
            class_names=tuple(self.learnt["classes"]),
            image_shape=(channels, height, width),
            training_rows=self.learnt["training_rows"],
        )

    def state_dict(self) -> dict[str, Any]:
        """The classes, image shape, pixel statistics and training images' count, beside an epoch's position."""
        return {**(self.learnt or {}), **super().state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if "classes" not in state_dict:
            raise UserError(f"{type(self).__name__}: the checkpoint's data state holds no classes")
        self.learnt = {key: state_dict[key] for key in ("classes", "shape", "statistics", "training_rows")}
        self.facts = self._facts()

    def _split(self) -> None:
        """The training, validation and test tables, and the statistics of the training pixels."""
        decoded = self._decoded()
        images, labels = decoded["images"], decoded["labels"]
        if self.flatten:
            images = images.reshape(len(images), -1)
        generator = torch.Generator().manual_seed(self.seed)
        splits = decoded["splits"]  # per image: 0 training, 1 testing (the train_test layout's folders)
        test = torch.nonzero(splits == 1).flatten()
        train = torch.nonzero(splits == 0).flatten()
        train = train[torch.randperm(len(train), generator=generator)]
        if self._layout() == "classes":  # no test folder: a seeded share of the images
            held = round(len(train) * self.test_fraction)
            test, train = train[:held], train[held:]
        held = max(1, round(len(train) * self.val_fraction))
        val, train = train[:held], train[held:]
        if len(train) == 0 or len(val) == 0:
            raise UserError(f"{self.root} has too few images ({len(images)}) for a training and a validation split")
        for split, rows in (("train", train), ("val", val), ("test", test)):
            if len(rows):
                self.tables[split] = TensorTable(images[rows], labels[rows])
                self.files_of[split] = [decoded["files"][row] for row in rows.tolist()]
        statistics = pixel_statistics(self.tables["train"].tensors[0])  # the table's pixels: no copy of them
        for table in self.tables.values():
            table.transform = Normalize(*statistics)
        shape, classes = list(decoded["shape"]), list(decoded["classes"])
        self.learnt = {"classes": classes, "shape": shape, "statistics": list(statistics), "training_rows": len(train)}

    @property
    def batch_transform(self) -> Normalize:
        if self.statistics is None:
            self.known_facts()  # says to set it up first
        return Normalize(*self.statistics)

    def example_inputs(self, rows: int) -> Tensor:
        """Random uint8 pixels of the images' shape, flattened or not, as the tables hold them."""
        shape = self.known_facts().input_shape
        return torch.randint(0, 256, (rows, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

    # -- finding, decoding and caching the images --

    def _layout(self) -> str:
        if self.layout != "auto":
            return self.layout
        both = all((self.root / folder).is_dir() for folder in SPLIT_FOLDERS)
        return "train_test" if both else "classes"

    def _files(self) -> tuple[list[str], list[tuple[str, int, int]], list[tuple[int, int]]]:
        """The class names, each image file and each file's size and modification time (the cache's key).

        A file as (its path under root, its class, its split: 0 train, 1 test).
        """
        tops, classes = self._class_folders()
        files, stats = [], []
        for split, top in enumerate(tops):
            for label, name in enumerate(classes):
                for path, size, time in listed(self.root, top / name):
                    files.append((path, label, split))
                    stats.append((size, time))
        if not files:
            raise UserError(f"{self.root} holds class folders but no image files")
        return classes, files, stats

    def _class_folders(self) -> tuple[list[Path], list[str]]:
        """The folders that hold the class folders (training/ and testing/, or root), and the class names."""
        if not self.root.is_dir():
            raise MissingFileError(f"image folder {self.root} not found: pass the folder that holds a folder per class")
        layout = self._layout()
        tops = [self.root / folder for folder in SPLIT_FOLDERS] if layout == "train_test" else [self.root]
        for top in tops:
            if not top.is_dir():
                raise MissingFileError(
                    f"{top} not found: the train_test layout needs {self.root}/training/<class>/ "
                    f"and {self.root}/testing/<class>/"
                )
        classes = sorted(entry.name for entry in tops[0].iterdir() if entry.is_dir() and not entry.name.startswith("."))
        if not classes:
            raise UserError(f"{tops[0]} holds no class folders: put each class's images in a folder of its name")
        if layout == "train_test":
            unknown = sorted({entry.name for entry in tops[1].iterdir() if entry.is_dir()} - set(classes))
            if unknown:
                raise UserError(f"{tops[1]} has classes that {tops[0]} lacks: {unknown}")
        return tops, classes

    def _cache_path(self, files: list[tuple[str, int, int]], stats: list[tuple[int, int]]) -> Path:
        """The cache file of this set of files and settings: its name is their key."""
        stats = [(path, size, time) for (path, _, _), (size, time) in zip(files, stats, strict=True)]
        settings = [CACHE_VERSION, self._layout(), self.image_size, self.channels, self.skip_unreadable]
        key = hashlib.sha256(json.dumps([settings, stats]).encode()).hexdigest()[:20]
        return self._cache_folder() / f"images-{key}.pt"

    def _cache_folder(self) -> Path:
        """`cache_dir`, or this root's folder in the user's cache (see the class)."""
        if self.cache_dir is not None:
            return self.cache_dir
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return home / "litmodules" / "images" / hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:16]

    def _remove_an_old_cache(self) -> None:
        """0.1.0's cache inside the image folder, which other loaders take for a class folder: its files, then it."""
        old = self.root / OLD_CACHE
        if not old.is_dir():
            return
        ours = [*old.glob("images-*.pt"), *old.glob("images-*.partial")]
        for path in ours:
            path.unlink(missing_ok=True)
        if not any(old.iterdir()):
            old.rmdir()
            rank_zero_info(
                f"removed {old}, the image cache of litmodules 0.1.0: the cache is now {self._cache_folder()}"
            )

    def _decoded(self) -> dict[str, Any]:
        """The images, labels, splits, classes and shape: from the cache, or decoded and cached."""
        if self._decoded_cache is not None:
            return self._decoded_cache
        classes, files, stats = self._files()
        self._remove_an_old_cache()
        path = self._cache_path(files, stats)
        if path.is_file():
            decoded = torch.load(path, weights_only=True)
        else:
            decoded = self._decode(classes, files)
            path.parent.mkdir(parents=True, exist_ok=True)
            for stale in path.parent.glob("images-*.pt"):  # made from files or settings that have since changed
                if stale != path:
                    stale.unlink(missing_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.partial")  # one a process: DDP's may decode at once
            torch.save(decoded, partial)
            partial.replace(path)  # whole or not at all: another process never reads half a cache
        self._decoded_cache = decoded
        return decoded

    def _decode(self, classes: list[str], files: list[tuple[str, int, int]]) -> dict[str, Any]:
        """The class folders' images as one tensor, with their labels, splits, classes and shape."""
        fix, every = "move them out of the class folders", [path for path, _, _ in files]
        decoded = decode_files(self.root, every, self.image_size, self.workers, fix, self.skip_unreadable)
        files = [file for file in files if file[0] in decoded]  # the readable ones (all, unless skip_unreadable)
        names = [path for path, _, _ in files]
        channels = self.channels or (3 if any(image.shape[0] >= 3 for image in decoded.values()) else 1)
        images = [with_channels(decoded[name], channels) for name in names]
        usual = Counter(tuple(image.shape[1:]) for image in images).most_common(1)[0][0]
        pixels = stacked(images, names, usual)
        return {
            "images": pixels,
            "labels": torch.tensor([label for _, label, _ in files]),
            "splits": torch.tensor([split for _, _, split in files], dtype=torch.uint8),
            "classes": classes,
            "files": names,
            "shape": list(pixels.shape[1:]),
        }

    # -- predicting a folder of images --

    @property
    def predict_split(self) -> str:
        return "predict" if self.predict_dir is not None else "test"

    @property
    def predict_name(self) -> str:
        return self.predict_dir.name if self.predict_dir is not None else "test"

    def prediction_rows(self) -> pd.DataFrame:
        """`row`, each predicted image's position, and `file`, its path under its folder (`root` or `predict_dir`)."""
        self.table(self.predict_split)
        return pd.DataFrame(
            {"row": range(len(self.files_of[self.predict_split])), "file": self.files_of[self.predict_split]}
        )

    def _predict_table(self, normalize: Normalize) -> TensorTable:
        """The images under `predict_dir` (any depth, no classes needed), as the training images are."""
        if not self.predict_dir.is_dir():
            raise MissingFileError(f"predict_dir {self.predict_dir} not found: pass a folder of images")
        names = [path for path, _, _ in listed(self.predict_dir, self.predict_dir)]
        if not names:
            raise UserError(f"predict_dir {self.predict_dir} holds no image files")
        channels, height, width = self.learnt["shape"]
        skip = self.skip_unreadable
        decoded = decode_files(self.predict_dir, names, self.image_size, self.workers, "move them out", skip)
        names = [name for name in names if name in decoded]
        pixels = stacked([with_channels(decoded[name], channels) for name in names], names, (height, width))
        self.files_of["predict"] = names
        return TensorTable(pixels.reshape(len(pixels), -1) if self.flatten else pixels, transform=normalize)
