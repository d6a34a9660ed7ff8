"""The MNIST family (MNIST, Fashion-MNIST, KMNIST, EMNIST) through torchvision, kept as tensors for the batch path."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from torchvision.datasets import EMNIST, KMNIST, MNIST, FashionMNIST

from datamodules.batches import TensorDataModule, TensorTable
from datamodules.choices import check_choice
from datamodules.contract import DataFacts
from datamodules.errors import MissingFileError, UserError
from datamodules.leftovers import Leftovers
from datamodules.pixels import Normalize, pixel_statistics

Dataset = Literal["MNIST", "FashionMNIST", "KMNIST", "EMNIST"]
EmnistSplit = Literal["byclass", "bymerge", "balanced", "letters", "digits", "mnist"]  # see torchvision's EMNIST
DATASETS = {"MNIST": MNIST, "FashionMNIST": FashionMNIST, "KMNIST": KMNIST, "EMNIST": EMNIST}
# MNIST's figures as the tutorials give them (its training images' own, rounded), so that runs compare with theirs;
# the other data sets' are computed from their training images
STATISTICS = {"MNIST": (0.1307, 0.3081)}


class MNISTDataModule(TensorDataModule):
    """A data set of the MNIST family: a seeded train/validation split and the official test images.

    MNIST (digits), Fashion-MNIST (clothes), KMNIST (Japanese characters), each 60,000
    training and 10,000 test images of 28x28 in 10 classes; EMNIST (handwritten digits and
    letters) in one of its splits (`emnist_split`: 10 to 62 classes, up to 697,932 training
    images; its "letters" are labelled a to z, from 0). `torchvision.datasets` downloads
    and reads the IDX files; each split is then kept as one uint8 tensor (EMNIST's turned
    upright) and normalised a batch at a time with the mean and deviation of that data
    set's training images.

    Args:
        data_dir: holds (or receives) `<dataset>/raw/` with the IDX files (`MNIST/raw/`, `FashionMNIST/raw/`, ...).
        batch_size: images per batch.
        val_size: training images held out for validation.
        flatten: hand out 784-vectors (for MLPs); False keeps 1x28x28 images.
        download: download the files into `data_dir` when they are missing.
        seed: seeds the train/validation split and the shuffle of every epoch.
        dataset: "MNIST", "FashionMNIST", "KMNIST" or "EMNIST".
        emnist_split: EMNIST's split: "byclass", "bymerge", "balanced", "letters", "digits" or "mnist".
        **loading: how batches are served, as for any data module: `num_workers`, `pin_memory`,
            `eval_batch_size`, `drop_last`, `device_resident` (see `TensorDataModule`).
    """

    paths = ("data_dir",)
    plumbing = (*TensorDataModule.plumbing, "data_dir", "download")
    image_shape = (1, 28, 28)  # what a flat 784-vector is, for figures

    def __init__(
        self,
        data_dir: str | Path = "data",
        batch_size: int = 128,
        val_size: int = 5000,
        flatten: bool = True,
        download: bool = True,
        seed: int = 42,
        dataset: Dataset = "MNIST",
        emnist_split: EmnistSplit = "balanced",
        **loading: Any,
    ) -> None:
        super().__init__(batch_size, seed, **loading)
        check_choice("dataset", dataset, Dataset)
        check_choice("emnist_split", emnist_split, EmnistSplit)
        self.data_dir = Path(self.hparams.data_dir)  # absolute: the run's config works from any folder
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise UserError(f"data_dir '{self.data_dir}' is a file: pass the folder that holds {dataset}/raw")
        if val_size < 1:
            raise UserError(f"val_size must be at least 1 image, got {val_size}")
        self.dataset, self.emnist_split = dataset, emnist_split
        self.val_size = val_size
        self.flatten = flatten
        self.download = download
        # the training images' pixel statistics, and how many train: from setup, or from a checkpoint's state
        self.statistics: tuple[float, float] | None = STATISTICS.get(dataset)
        self.training_rows: int | None = None

    @property
    def class_names(self) -> list[str]:
        """The classes in label order: digits as "0" to "9", the others as torchvision names them."""
        if self.dataset == "MNIST":
            return [str(digit) for digit in range(10)]
        if self.dataset == "EMNIST":
            return (
                list(string.ascii_lowercase)
                if self.emnist_split == "letters"
                else EMNIST.classes_split_dict[self.emnist_split]
            )
        return DATASETS[self.dataset].classes

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_features(self) -> int:
        return 28 * 28

    def example_inputs(self, rows: int) -> Tensor:
        """Random uint8 pixels, as the tables hold them: 784 per image, or 1x28x28 without `flatten`."""
        shape = (self.num_features,) if self.flatten else self.image_shape
        return torch.randint(0, 256, (rows, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

    @property
    def batch_transform(self) -> Normalize:
        """The per-batch normalisation, with the mean and deviation of this data set's training images.

        They are the statistics of all training images, validation included, on the 0-1 scale; MNIST's as the
        tutorials give them (`STATISTICS`), the others' known once set up (or from a checkpoint's state).
        """
        if self.statistics is None:
            self.known_facts()  # says to set it up first
        return Normalize(*self.statistics)

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / self.dataset / "raw"  # where torchvision's class reads and downloads

    def files(self, train: bool) -> list[Path]:
        """The images and labels files of the training or test split."""
        if self.dataset == "EMNIST":
            prefix = f"emnist-{self.emnist_split}-{'train' if train else 'test'}"
        else:
            prefix = "train" if train else "t10k"
        return [self.raw_dir / f"{prefix}-{kind}-ubyte" for kind in ("images-idx3", "labels-idx1")]

    def _torchvision(self, train: bool, download: bool = False) -> MNIST:
        """The torchvision dataset of this split (reading the files, twice their size in memory at once)."""
        options = {"split": self.emnist_split} if self.dataset == "EMNIST" else {}
        return DATASETS[self.dataset](self.data_dir, train=train, download=download, **options)

    def prepare_data(self) -> None:
        if all(file.is_file() for train in (True, False) for file in self.files(train)):
            return
        if not self.download:
            raise self._missing()
        leftovers = Leftovers(self.data_dir)  # a failed download leaves the folder named as it was
        try:
            for train in (True, False):
                self._torchvision(train, download=True)
        except BaseException as error:  # a connection lost, or Ctrl-C: what it began goes
            leftovers.remove()
            if not isinstance(error, (OSError, RuntimeError)):
                raise
            raise MissingFileError(
                f"{self.dataset} not found under {self.raw_dir} and the download failed "
                f"({' '.join(str(error).split())}): put {self._names()} there or pass --data.data_dir"
            ) from error

    def _names(self) -> str:
        return ", ".join(file.name for train in (True, False) for file in self.files(train))

    def _missing(self) -> MissingFileError:
        return MissingFileError(
            f"{self.dataset} not found under {self.raw_dir}: put {self._names()} there, pass --data.data_dir, or allow "
            "download=True"
        )

    def _read(self, train: bool) -> tuple[Tensor, Tensor]:
        files = self.files(train)
        if not all(file.is_file() for file in files):
            raise self._missing()
        where = f"{self.dataset} files {files[0].parent}/{files[0].name.removesuffix('-images-idx3-ubyte')}-*"
        try:
            data = self._torchvision(train)
        except (RuntimeError, AssertionError, ValueError) as error:  # what torchvision's IDX reader raises
            raise UserError(
                f"{where} cannot be read ({str(error) or 'not in the IDX format'}): cut short or not "
                f"{self.dataset}; delete them and download them again"
            ) from error
        images, labels = data.data, data.targets
        if len(images) != len(labels) or images.shape[1:] != (28, 28):
            raise UserError(
                f"{where} do not match: {len(images)} images of {'x'.join(map(str, images.shape[1:]))} pixels and "
                f"{len(labels)} labels; delete them and download them again"
            )
        if self.dataset == "EMNIST":
            images = images.transpose(1, 2).contiguous()  # stored column by column: upright, as the others
            if self.emnist_split == "letters":
                labels = labels - 1  # labelled 1 to 26: from 0, one class per letter
        images = images.reshape(len(images), -1) if self.flatten else images.unsqueeze(1)
        return images, labels

    def setup(self, stage: str | None = None) -> None:
        """The splits `stage` needs, read from the IDX files once; the pixel statistics and facts with them."""
        if stage in ("fit", "validate", None) and "train" not in self.tables:
            images, labels = self._read(train=True)
            self.statistics = self.statistics or pixel_statistics(images)
            if self.val_size >= len(images):
                raise UserError(f"val_size {self.val_size} leaves no training images: there are {len(images)}")
            order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))
            val, train = order[: self.val_size], order[self.val_size :]
            self.tables["train"] = TensorTable(images[train], labels[train], transform=self.batch_transform)
            self.tables["val"] = TensorTable(images[val], labels[val], transform=self.batch_transform)
            self.training_rows = len(train)
        if stage in ("test", "predict", None) and "test" not in self.tables:
            if self.statistics is None:  # a checkpoint of 0.1.0 keeps none: from the training images
                self.statistics = pixel_statistics(self._read(train=True)[0])
            self.tables["test"] = TensorTable(*self._read(train=False), transform=self.batch_transform)
        self.facts = self._facts()

    def _facts(self) -> DataFacts:
        return DataFacts(
            task="multiclass",
            input_shape=(self.num_features,) if self.flatten else self.image_shape,
            class_names=tuple(self.class_names),
            image_shape=self.image_shape,
            training_rows=self.training_rows,
        )

    def state_dict(self) -> dict[str, Any]:
        """The training images' pixel statistics and count, beside the position of an interrupted epoch."""
        return {"statistics": self.statistics, "training_rows": self.training_rows, **super().state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if state_dict.get("statistics") is not None:
            self.statistics = tuple(state_dict["statistics"])
        self.training_rows = state_dict.get("training_rows", self.training_rows)
        self.facts = self._facts()
