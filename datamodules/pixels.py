"""uint8 images to the floats a model takes: one mean and deviation over a data set's training pixels."""

from __future__ import annotations

import torch
from torch import Tensor


class Normalize:
    """uint8 pixels to floats of mean 0 and deviation 1 over the training images; runs once per batch."""

    def __init__(self, mean: float, std: float) -> None:
        self.mean, self.std = mean, std  # of the training images' pixels, on the 0-1 scale

    def __call__(self, pixels: Tensor) -> Tensor:
        return pixels.float().sub_(self.mean * 255).div_(self.std * 255)


def pixel_statistics(images: Tensor) -> tuple[float, float]:
    """The mean and standard deviation of uint8 pixels on the 0-1 scale, exact, from their counts (no float copy)."""
    counts = torch.bincount(images.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    mean = float((counts * values).sum() / counts.sum())
    std = float(((counts * (values - mean) ** 2).sum() / counts.sum()).sqrt())
    return mean, std or 1.0
