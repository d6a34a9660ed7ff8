"""Shared fixtures: tiny MNIST files in the real IDX format, read by the real torchvision code."""

from __future__ import annotations

import os
import struct
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint

from datamodules import MNISTDataModule

TRAIN_IMAGES, TEST_IMAGES, VAL_SIZE = 320, 80, 64
ROOT = Path(__file__).resolve().parents[1]  # the repository
CONFIGS = ROOT / "nnmodules" / "cli" / "configs"  # the recipes
EXAMPLES = CONFIGS / "examples"  # the tables they train on
QUIET = {"enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}  # a test's Trainer
NO_LOGGER = {**QUIET, "logger": False}  # ... that writes no events
UNDER_MUTMUT = "mutmut" in sys.modules  # `make mutation`: the mutants live in this process only
# a test of another process (a command, a server) runs code that no mutant reaches: under mutmut it only costs time
in_another_process = pytest.mark.skipif(UNDER_MUTMUT, reason="mutmut's mutants never reach another process")


def fake_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 28x28 images whose label is where a bright block sits: learnable, not trivial."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(count, 28, 28), dtype=np.uint8)
    for image, label in zip(images, labels, strict=True):
        row, col = divmod(int(label), 5)
        image[4 + 10 * row : 12 + 10 * row, 1 + 5 * col : 6 + 5 * col] = 255
    return images, labels.astype(np.uint8)


def write_idx(raw_dir: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Write images and labels as MNIST's IDX files (big-endian magic number and sizes, then bytes)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    image_header = struct.pack(">IIII", 2051, len(images), 28, 28)
    (raw_dir / f"{prefix}-images-idx3-ubyte").write_bytes(image_header + images.tobytes())
    (raw_dir / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


def python_path(*folders: Path) -> str:
    """PYTHONPATH for a subprocess: `folders` first, then what it held (scripts/mutants.py puts its copy there)."""
    return os.pathsep.join([*map(str, folders), *filter(None, [os.environ.get("PYTHONPATH")])])


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory: pytest.TempPathFactory):
    """The user's cache (where image folders are cached) in a folder of the test session, not this machine's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user_cache")))
        yield


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data_dir holding MNIST/raw with 320 training and 80 test images."""
    root = tmp_path_factory.mktemp("data")
    write_idx(root / "MNIST" / "raw", "train", *fake_digits(TRAIN_IMAGES, seed=0))
    write_idx(root / "MNIST" / "raw", "t10k", *fake_digits(TEST_IMAGES, seed=1))
    return root


@pytest.fixture
def mnist(mnist_dir: Path) -> MNISTDataModule:
    return MNISTDataModule(mnist_dir, batch_size=32, val_size=VAL_SIZE, download=False)


def best_checkpoint(trainer) -> Path:
    callback = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint))
    return Path(callback.best_model_path)


@pytest.fixture
def console(capfd, monkeypatch):
    """`litmodules ARGS...` in this process, as the console script runs it: (exit status, what it printed)."""
    (entry,) = entry_points(group="console_scripts", name="litmodules")
    main = entry.load()

    def run(*args: str) -> tuple[int, str]:
        capfd.readouterr()
        monkeypatch.setattr(sys, "argv", ["litmodules", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        out, err = capfd.readouterr()
        return code, out + err

    return run
