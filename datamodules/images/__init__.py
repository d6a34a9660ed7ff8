"""Folders of image files, a folder per class (torchvision's `ImageFolder` layout, or training/ and testing/)."""

from datamodules.images.module import ImageFolderDataModule

__all__ = ["ImageFolderDataModule"]
