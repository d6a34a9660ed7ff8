"""The loops ours is measured against: the tutorial's, and a hand-written one over in-memory tensors.

(a) the tutorial: torchvision MNIST + ToTensor + Normalize + DataLoader(shuffle=True), a
plain PyTorch loop over the 60,000 training images, validating nothing;
(b) the tensor loop, the practical floor: one normalised in-memory tensor of the 55,000
training images (no Lightning, no DataLoader), sliced by a fresh permutation each epoch,
then a validation pass over the 5,000 validation images at 4 x the training batch, as
our data modules evaluate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from benchmarks.timing import Run, timed_epoch
from datamodules import MNISTDataModule

Step = Callable[[Tensor, Tensor], None]


def tutorial_batches(data_dir: str, batch_size: int) -> DataLoader:
    """The tutorial's training batches."""
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    return DataLoader(datasets.MNIST(data_dir, train=True, transform=transform), batch_size=batch_size, shuffle=True)


def tutorial_mlp() -> nn.Module:
    """The tutorial's 784-128-128-10 network."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )


def in_memory_mnist(data_dir: str, split: str = "train") -> tuple[Tensor, Tensor]:
    """A split of MNISTDataModule (55,000 training or 5,000 validation images), normalised once."""
    data = MNISTDataModule(data_dir, download=False)
    data.setup("fit")
    images, labels = data.tables[split].tensors
    return data.batch_transform(images), labels


def tensor_batches(inputs: Tensor, targets: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    """A fresh permutation, sliced (inside the timed epoch)."""
    order = torch.randperm(len(inputs))
    for first in range(0, len(inputs), batch_size):
        batch = order[first : first + batch_size]
        yield inputs[batch], targets[batch]


def validate(forward: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor, batch_size: int) -> tuple:
    """Loss and accuracy of a split in batches: the work our epochs hold too."""
    loss = correct = torch.zeros(())
    with torch.no_grad():
        for inputs, targets in zip(images.split(batch_size), labels.split(batch_size), strict=True):
            scores = forward(inputs)
            loss = loss + F.cross_entropy(scores, targets, reduction="sum")
            correct = correct + (scores.argmax(dim=1) == targets).sum()
    return loss.item() / len(labels), correct.item() / len(labels)


def tutorial_epoch(data_dir: str, batch_size: int, step: Step) -> Run:
    """(a): one epoch of the tutorial's loop."""
    return timed_epoch(tutorial_batches(data_dir, batch_size), step)


def tensor_epoch(data_dir: str, batch_size: int, step: Step, forward: Callable[[Tensor], Tensor]) -> Run:
    """(b): one epoch over the in-memory training tensor, then the validation split."""
    val_images, val_labels = in_memory_mnist(data_dir, "val")
    evaluation = partial(validate, forward, val_images, val_labels, 4 * batch_size)
    return timed_epoch(tensor_batches(*in_memory_mnist(data_dir), batch_size), step, evaluation)


def adam_step(model: nn.Module, lr: float = 1e-3, fused: bool = True, one_cycle_steps: int = 0) -> Step:
    """A plain PyTorch training step: Adam (fused as ours, unless the tutorial's) and cross-entropy.

    With `one_cycle_steps`, a one-cycle schedule peaking at `lr`, stepped every step as ours.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=fused)
    schedule = (
        torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=one_cycle_steps) if one_cycle_steps else None
    )

    def step(inputs: Tensor, targets: Tensor) -> None:
        optimizer.zero_grad()
        F.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()

    return step


def scratch_net(sizes: list[int], lr: float) -> tuple[Step, Callable[[Tensor], Tensor]]:
    """The "from scratch" tutorials' functions: the step and the forward pass.

    Raw weight matrices (Kaiming), ReLU, log-softmax, NLL, and the hand-written SGD step
    `p -= lr * grad`.
    """
    weights = [(torch.randn(n_in, n_out) * (2 / n_in) ** 0.5).requires_grad_() for n_in, n_out in pairwise(sizes)]
    biases = [torch.zeros(n_out, requires_grad=True) for n_out in sizes[1:]]

    def forward(images: Tensor) -> Tensor:
        res = images.flatten(1)
        for i, (layer, const) in enumerate(zip(weights, biases, strict=True)):
            res = res @ layer + const
            if i != len(weights) - 1:
                res = F.relu(res)
        return F.log_softmax(res, dim=1)

    def step(images: Tensor, labels: Tensor) -> None:
        F.nll_loss(forward(images), labels).backward()
        with torch.no_grad():
            for layer in [*weights, *biases]:
                layer.sub_(layer.grad * lr)
                layer.grad.zero_()

    return step, forward
