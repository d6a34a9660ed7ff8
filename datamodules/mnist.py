"""MNIST digits through torchvision, decoded once into tensors and served by the fast batch path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchvision.datasets import MNIST

from datamodules.batches import TensorDataModule, TensorTable

MEAN, STD = 0.1307, 0.3081  # of the 60,000 training images, on the 0-1 scale


class Normalize:
    """uint8 pixels to floats with MNIST's mean and standard deviation; runs once per batch."""

    def __call__(self, pixels: Tensor) -> Tensor:
        return pixels.float().sub_(MEAN * 255).div_(STD * 255)


class MNISTDataModule(TensorDataModule):
    """The 70,000 MNIST digits: a seeded train/validation split and the official test images.

    60,000 training images (55,000 and 5,000 by default), 10,000 test images.

    `torchvision.datasets.MNIST` downloads and reads the IDX files; each split is
    then kept as one uint8 tensor and normalised a batch at a time.

    Args:
        data_dir: holds (or receives) `MNIST/raw/` with the four IDX files.
        batch_size: images per batch.
        val_size: training images held out for validation.
        flatten: hand out 784-vectors (for MLPs); False keeps 1x28x28 images.
        download: download the files into `data_dir` when they are missing.
        seed: seeds the train/validation split and the shuffle of every epoch.
        **loading: how batches are served, as for any data module: `num_workers`, `pin_memory`,
            `eval_batch_size`, `drop_last`, `device_resident` (see `TensorDataModule`).
    """

    num_features = 28 * 28
    num_classes = 10
    plumbing = (*TensorDataModule.plumbing, "data_dir", "download")
    image_shape = (1, 28, 28)  # what a flat 784-vector is, for figures of digits
    class_names = [str(digit) for digit in range(10)]

    def __init__(
        self,
        data_dir: str | Path = "data",
        batch_size: int = 128,
        val_size: int = 5000,
        flatten: bool = True,
        download: bool = True,
        seed: int = 42,
        **loading: Any,
    ) -> None:
        data_dir = str(data_dir)  # saved hyperparameters stay plain data: checkpoints load with weights_only=True
        super().__init__(batch_size, seed, **loading)
        self.save_hyperparameters()
        self.data_dir = Path(data_dir)
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise ValueError(f"data_dir '{self.data_dir}' is a file: pass the folder that holds MNIST/raw")
        if val_size < 1:
            raise ValueError(f"val_size must be at least 1 image, got {val_size}")
        self.val_size = val_size
        self.flatten = flatten
        self.download = download

    def example_inputs(self, rows: int) -> Tensor:
        """Random uint8 pixels, as the tables hold them: 784 per image, or 1x28x28 without `flatten`."""
        shape = (self.num_features,) if self.flatten else self.image_shape
        return torch.randint(0, 256, (rows, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

    @property
    def batch_transform(self) -> Normalize:
        return Normalize()

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "MNIST" / "raw"

    def prepare_data(self) -> None:
        # constructing torchvision's MNIST reads the files (twice their size in memory at once): not when present
        files = [Path(url).stem for url, _ in MNIST.resources]  # "train-images-idx3-ubyte", ...
        if all((self.raw_dir / name).is_file() for name in files):
            return
        if not self.download:  # said here, before the Trainer opens the run's folder for setup
            raise self._missing()
        try:
            for train in (True, False):
                MNIST(self.data_dir, train=train, download=True)
        except (OSError, RuntimeError) as error:
            raise FileNotFoundError(
                f"MNIST not found under {self.raw_dir} and the download failed ({' '.join(str(error).split())}): "
                "put the four IDX files there or pass --data.data_dir"
            ) from error

    def _missing(self) -> FileNotFoundError:
        return FileNotFoundError(
            f"MNIST not found under {self.raw_dir}: put the four IDX files there, pass --data.data_dir, or allow "
            "download=True"
        )

    def _read(self, train: bool) -> tuple[Tensor, Tensor]:
        prefix = "train" if train else "t10k"
        files = [self.raw_dir / f"{prefix}-{kind}-ubyte" for kind in ("images-idx3", "labels-idx1")]
        if not all(file.is_file() for file in files):
            raise self._missing()
        try:
            mnist = MNIST(self.data_dir, train=train)
        except (RuntimeError, AssertionError, ValueError) as error:  # what torchvision's IDX reader raises
            raise ValueError(
                f"MNIST files {self.raw_dir}/{prefix}-* cannot be read ({str(error) or 'not in the IDX format'}): "
                f"cut short or not MNIST; delete them and download them again"
            ) from error
        images, labels = mnist.data, mnist.targets
        if len(images) != len(labels) or images.shape[1:] != (28, 28):
            raise ValueError(
                f"MNIST files {self.raw_dir}/{prefix}-* do not match: {len(images)} images of "
                f"{'x'.join(map(str, images.shape[1:]))} pixels and {len(labels)} labels; "
                f"delete them and download them again"
            )
        images = images.reshape(len(images), -1) if self.flatten else images.unsqueeze(1)
        return images, labels

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and "train" not in self.tables:
            images, labels = self._read(train=True)
            if self.val_size >= len(images):
                raise ValueError(f"val_size {self.val_size} leaves no training images: there are {len(images)}")
            order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))
            val, train = order[: self.val_size], order[self.val_size :]
            self.tables["train"] = TensorTable(images[train], labels[train], transform=Normalize())
            self.tables["val"] = TensorTable(images[val], labels[val], transform=Normalize())
        if stage in ("test", "predict", None) and "test" not in self.tables:
            self.tables["test"] = TensorTable(*self._read(train=False), transform=Normalize())
