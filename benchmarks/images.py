"""images: MNIST as 70,000 PNG files (`training/<digit>/`, `testing/<digit>/`), read by `ImageFolderDataModule`.

Made from the IDX files (`--png-dir` keeps the tree; otherwise a temporary one). Figures:
the first setup (decoding every file, in a process per CPU, and writing the cache) and
a cached setup, median of 3; one training epoch of the mnist_mlp recipe's model at
batch 64 from the PNG tree, ours (our Trainer on `ImageFolderDataModule`) against the
tutorials' way (torchvision `ImageFolder` + `DataLoader(shuffle=True)` + `ToTensor` +
`Normalize`: PIL per image, a plain loop), median whole epochs; and the config's test
accuracy trained from the PNG tree against from the IDX files.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import chdir
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from benchmarks import loops
from benchmarks.recipes import from_config, mnist_args
from benchmarks.timing import Run, fit_epoch, print_table, ratio, side_by_side, timed_epoch
from datamodules import ImageFolderDataModule, MNISTDataModule

VAL_FRACTION = 5000 / 60000  # the MNIST config's 5,000 validation images


def write_png_tree(data_dir: str, folder: Path) -> Path:
    """MNIST's 70,000 images as PNG files, one folder per digit under training/ and testing/."""
    data = MNISTDataModule(data_dir, flatten=False, download=False)
    jobs = []
    for split, train in (("training", True), ("testing", False)):
        images, labels = data._read(train)
        for index, (image, label) in enumerate(zip(images[:, 0].numpy(), labels.tolist(), strict=True)):
            jobs.append((folder / split / str(label) / f"{index:05d}.png", image))
    for path in {path.parent for path, _ in jobs}:
        path.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor() as pool:
        list(pool.map(_save, jobs, chunksize=1000))
    return folder


def _save(job: tuple[Path, np.ndarray]) -> None:
    Image.fromarray(job[1]).save(job[0])


def setup_seconds(root: Path) -> float:
    """Seconds of the training setup of the PNG tree: decoding, or reading the cache."""
    start = time.perf_counter()
    ImageFolderDataModule(root, flatten=True, val_fraction=VAL_FRACTION).setup("fit")
    return time.perf_counter() - start


def run(data_dir: str, repeats: int, png_dir: str | None) -> dict:
    """Start-up, epochs and test accuracy, as the module docstring says."""
    with tempfile.TemporaryDirectory() as scratch, chdir(scratch):
        root = Path(png_dir or Path(scratch) / "mnist_png").resolve()
        if not (root / "testing").is_dir():
            write_png_tree(data_dir, root)
        for cache in (root / ".litmodules_cache").glob("images-*.pt"):
            cache.unlink()  # the first setup decodes every file
        first = setup_seconds(root)
        cached = statistics.median(setup_seconds(root) for _ in range(3))
        rows = side_by_side(epoch_paths(root), repeats, at_most_twice=["imagefolder_dataloader"])
        accuracy = {"png": test_accuracy(*png_args(root)), "idx": test_accuracy(*mnist_args(data_dir))}
    print(f"\nMNIST as 70,000 PNG files: first setup (decoding, caching) {first:.1f} s; cached setup {cached:.2f} s")
    print_table("One training epoch of the MNIST MLP from the PNG files, batch 64", rows)
    print(
        f"ours {ratio(rows, 'imagefolder_dataloader', 'ours'):.1f}x faster than ImageFolder + DataLoader "
        "by median epochs (target: 5x)"
    )
    print(
        f"the mnist_mlp recipe test accuracy: from PNG {100 * accuracy['png']:.2f}%, "
        f"from IDX {100 * accuracy['idx']:.2f}%"
    )
    return {"first_setup_s": first, "cached_setup_s": cached, "epochs": rows, "test_accuracy": accuracy}


def epoch_paths(root: Path) -> dict:
    """One epoch each way: the tutorials' ImageFolder loop, and ours."""

    def imagefolder() -> Run:
        transform = transforms.Compose(
            [transforms.Grayscale(), transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
        )
        batches = DataLoader(datasets.ImageFolder(root / "training", transform=transform), batch_size=64, shuffle=True)
        return timed_epoch(batches, loops.adam_step(loops.tutorial_mlp(), fused=False))

    def ours() -> Run:
        cli = from_config("mnist_mlp", *png_args(root), "--data.batch_size=64", "--trainer.max_epochs=1")
        return fit_epoch(cli.model, cli.datamodule, cli.trainer)

    return {"imagefolder_dataloader": imagefolder, "ours": ours}


def png_args(root: Path) -> list[str]:
    """The MNIST config's data replaced by the PNG tree, split as the config splits MNIST."""
    return [
        f"--data={{'class_path': 'ImageFolderDataModule', 'init_args': {{'root': '{root}', 'flatten': true, "
        f"'val_fraction': {VAL_FRACTION}, 'batch_size': 128}}}}"
    ]


def test_accuracy(*overrides: str) -> float:
    """The mnist_mlp recipe's fit with `overrides`, and its best checkpoint's test accuracy."""
    cli = from_config("mnist_mlp", *overrides)
    cli.trainer.fit(cli.model, cli.datamodule)
    return cli.trainer.test(ckpt_path="best", datamodule=cli.datamodule, verbose=False)[0]["test/acc"]
