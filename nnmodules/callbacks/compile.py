"""Training with the model's `forward` compiled by `torch.compile`, switched on from a config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch


class Compile(L.Callback):
    """Trains with the model's `forward` compiled by `torch.compile` (for training and validation in `fit`).

    The model summary, the TensorBoard graph and the sanity check run before, on the
    plain model; after `fit` the model is plain again, so testing, predicting and
    tracing need no compilation, and checkpoints are those of the plain model.

    A compiled graph is specialised to its input shapes, and a new shape compiles
    again. Training batches of one size compile once: set the data module's
    `drop_last=True`, or the last, shorter batch of the first epoch compiles a
    second, shape-generic graph. Validation compiles for its first batch size and
    once more, shape-generic, at the first other size (its last batch), then no
    more (torch's automatic dynamic shapes). Training and evaluation mode are
    separate graphs (dropout differs).

    Args:
        mode: `torch.compile`'s: None (its default), "reduce-overhead" (CUDA graphs: the least
            launch overhead on a GPU) or "max-autotune".
        dynamic: `torch.compile`'s: None (shape-generic after the first change of shape),
            False (one graph per shape) or True (shape-generic from the start).
        backend: `torch.compile`'s: "inductor" (generates kernels), or e.g. "eager" (traces only).
    """

    def __init__(self, mode: str | None = None, dynamic: bool | None = None, backend: str | Callable = "inductor"):
        self.options: dict[str, Any] = {"mode": mode, "dynamic": dynamic, "backend": backend}

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        module.forward = torch.compile(module.forward, **self.options)  # this instance only, until fit ends

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._restore(module)

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self._restore(module)

    @staticmethod
    def _restore(module: L.LightningModule) -> None:
        module.__dict__.pop("forward", None)  # the class's forward again
