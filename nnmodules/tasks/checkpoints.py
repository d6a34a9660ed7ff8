"""Checkpoint files that hold plain data: read without pickle, a damaged or foreign file named in one line.

`read_checkpoint` loads with `torch.load(weights_only=True)`; `CheckpointIO` makes the Trainer read that way.
Saving is Lightning's own: the bytes go to a temporary file that replaces the old checkpoint only once
complete, so a crash mid-write leaves the previous one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from datamodules.errors import MissingFileError, UserError


def read_checkpoint(path: str | Path, map_location: Any = None) -> dict[str, Any]:
    """A checkpoint's contents, loaded without pickle (`weights_only=True`); a clear error for anything else."""
    if not Path(path).is_file():
        raise MissingFileError(f"checkpoint {path} does not exist: pass the path of a .ckpt file")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError... depending on the damage
        reason = type(error).__name__ + (f": {str(error).strip().splitlines()[0]}" if str(error).strip() else "")
        raise UserError(
            f"{path} is not a readable checkpoint ({reason}): it may be truncated (a copy cut short) or not "
            f"written by Lightning; use another checkpoint of the run, e.g. its last.ckpt"
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UserError(f"{path} is not a Lightning checkpoint: it holds no state_dict")
    return checkpoint


class CheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint reading and writing, with loads through `read_checkpoint`."""

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return read_checkpoint(path, map_location=map_location or (lambda storage, _: storage))


RECORD = "litmodules"  # a checkpoint's record of its run: the model's and the data's classes, the data's facts, the run


def record_of(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint records of its run (empty for a checkpoint of 0.1.0, or of another project)."""
    record = checkpoint.get(RECORD)
    return record if isinstance(record, dict) else {}
