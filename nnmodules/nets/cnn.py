"""A small convolutional network for small images (28x28 digits)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import Tensor, nn

from datamodules.arguments import KeepsArguments
from datamodules.errors import UserError
from nnmodules.nets.mlp import check_dropout, check_widths


class SmallCNN(KeepsArguments, nn.Module):
    """A small convolutional network for small images (28x28 digits).

    Two blocks of 3x3 convolution, batch normalisation, ReLU and 2x2 max-pooling, then a hidden linear layer and one
    score per class.

    Its first three arguments are the data's (`SmallCNN(1, 28, 10)` for digits): a model given the class
    (`Classifier(net=SmallCNN)`, or a config without them) takes them from the data.

    Args:
        in_channels: image channels (1 for grayscale).
        image_size: height and width of the images, in pixels.
        num_classes: classes to tell apart.
        channels: output channels of the two convolution blocks.
        hidden_dim: width of the linear layer after them.
        dropout: dropout probability before each linear layer.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        hidden_dim: int = 128,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        check_widths(in_channels=in_channels, num_classes=num_classes, channels=channels, hidden_dim=hidden_dim)
        if not channels:
            raise UserError("channels needs at least one convolution block, e.g. [32, 64]")
        side = image_size // 2 ** len(channels)  # each block halves the image
        if side < 1:
            raise UserError(f"{image_size}x{image_size} images are too small for {len(channels)} blocks of pooling")
        check_dropout(dropout)
        self.in_channels = in_channels
        self.image_size = image_size
        self.num_classes = num_classes
        self.channels = list(channels)
        self.hidden_dim, self.dropout = hidden_dim, dropout
        blocks: list[nn.Module] = []
        for width_in, width_out in pairwise([in_channels, *channels]):
            blocks += [
                nn.Conv2d(width_in, width_out, 3, padding=1, bias=False),  # the batch norm after it has the bias
                nn.BatchNorm2d(width_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels[-1] * side * side, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_classes),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.features(images))
