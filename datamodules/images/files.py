"""Image files: listed with their sizes and times, decoded by Pillow in several processes, stacked as one tensor."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2.functional import resize
from tqdm import tqdm

from datamodules.errors import UserError


def decode_files(
    folder: Path, names: list[str], image_size: tuple[int, int] | None, workers: int | None, fix: str, skip: bool
) -> dict[str, Tensor]:
    """Each file's pixels by name, decoded in `workers` processes (None: one per CPU).

    Files that are not images Pillow reads are refused in one error (`fix` says what to do about them), or with
    `skip` left out, with a warning naming them.
    """
    workers = workers or os.cpu_count() or 1
    decode = decode_resized if image_size else decode_file
    arguments = [(str(folder / name), image_size) for name in names]
    with ProcessPoolExecutor(workers) if workers > 1 else _Serial() as pool:
        decoded = pool.map(decode, arguments, chunksize=max(1, len(names) // (workers * 8)))
        progress = tqdm(decoded, total=len(names), desc=f"decoding {len(names)} images", unit=" images", disable=None)
        results = [torch.from_numpy(result) if isinstance(result, np.ndarray) else result for result in progress]
    failed = [(name, result) for name, result in zip(names, results, strict=True) if isinstance(result, str)]
    if failed:
        first = "; ".join(f"{name} ({why})" for name, why in failed[:3])
        said = f"{len(failed)} of {len(names)} files under {folder} are not images Pillow reads: {first}"
        said += " ..." if len(failed) > 3 else ""
        if not skip:
            raise UserError(f"{said}; {fix}, or pass skip_unreadable=True to leave them out")
        if len(failed) == len(names):
            raise UserError(f"{said}: none is an image")
        warnings.warn(f"{said}: left out (skip_unreadable)", stacklevel=3)
    return {name: result for name, result in zip(names, results, strict=True) if not isinstance(result, str)}


def stacked(images: list[Tensor], names: list[str], size: tuple[int, int]) -> Tensor:
    """The images as one tensor, when all are of `size` (height, width); those that are not, named in one error."""
    odd = [(name, tuple(image.shape[1:])) for name, image in zip(names, images, strict=True) if image.shape[1:] != size]
    if odd:
        listed = "; ".join(f"{name} ({h}x{w})" for name, (h, w) in odd[:3])
        raise UserError(
            f"{len(odd)} of {len(images)} images differ from the usual {size[0]}x{size[1]} pixels: "
            f"{listed}{' ...' if len(odd) > 3 else ''}; pass image_size to resize them all"
        )
    return torch.stack(images)


def listed(root: Path, folder: Path) -> list[tuple[str, int, int]]:
    """Every file under `folder` (any depth; hidden files and folders aside), sorted by path.

    Each as (its path under `root`, its size, its modification time): one `scandir` a folder, which gives each
    entry's kind without a call of its own.
    """
    if not folder.is_dir():
        return []
    start, found, pending = len(str(root)) + 1, [], [str(folder)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    pending.append(entry.path)
                elif entry.is_file():
                    status = entry.stat()
                    found.append((entry.path[start:], status.st_size, status.st_mtime_ns))
    return sorted(found)


def decode_file(argument: tuple[str, Any]) -> np.ndarray | str:
    """One file's pixels (channels x height x width, uint8), or why it could not be read.

    Gray or RGB: palettes, alpha and 1-bit images are converted. A numpy array, not a tensor: the worker processes
    hand it back by value, where a tensor would go through a file descriptor each, and run out of them.
    """
    try:
        with Image.open(argument[0]) as image:
            if image.mode not in ("L", "RGB"):
                image = image.convert(
                    "RGB" if image.mode in ("P", "PA", "RGBA", "CMYK", "YCbCr", "LAB", "HSV") else "L"
                )
            pixels = np.array(image)  # a copy torch may own
    except (OSError, ValueError, SyntaxError) as error:  # what Pillow raises for what it cannot read
        return str(error).splitlines()[0] or type(error).__name__
    return pixels[None] if pixels.ndim == 2 else np.ascontiguousarray(pixels.transpose(2, 0, 1))


def decode_resized(argument: tuple[str, tuple[int, int]]) -> np.ndarray | str:
    """One file's pixels resized to (height, width), antialiased; or why it could not be read."""
    image = decode_file(argument)
    return (
        image if isinstance(image, str) else resize(torch.from_numpy(image), list(argument[1]), antialias=True).numpy()
    )


def with_channels(image: Tensor, channels: int) -> Tensor:
    """Grayscale or RGB: a gray image repeated to RGB, an RGB one weighted to gray (ITU-R 601)."""
    if image.shape[0] == channels:
        return image
    if channels == 3:
        return image.expand(3, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    return (image.float() * weights).sum(dim=0, keepdim=True).round().to(torch.uint8)


class _Serial:
    """`ProcessPoolExecutor`'s `map` in this process (one worker asked for, or none available)."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def map(self, function: Any, arguments: Any, chunksize: int = 1) -> Any:
        return map(function, arguments)
