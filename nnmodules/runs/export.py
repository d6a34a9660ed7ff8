"""A trained model as a file that predicts without Lightning: ONNX (for onnxruntime) or torch.export's program (pt2).

    export(model, "model.onnx", datamodule=data)      # or: litmodules export --ckpt_path X.ckpt

The exported model takes a batch of inputs, any number of rows, as the data module's
tables hold them (MNIST: uint8 pixels, normalised inside the graph; a table: the
preprocessed features), and gives what `predict` gives: class probabilities, or numbers
in the target's units. Beside it, `<name>.json` (`model.onnx.json`) says what goes in and comes out; for a
table it also holds the fitted preprocessing (medians, scales, categories, date parts,
column order) and how training read its files; `preprocess.py` (the preprocessing's code),
`table_files.py` (the reading's) and, for ONNX, `predict.py` are written too, so that new rows
(a CSV as training read it, Parquet, Excel, a DataFrame) are predicted with numpy, pandas and
onnxruntime alone:

    from predict import predict
    predict("model.onnx", "new.csv")  # row, prediction, p_<class> ... as `litmodules predict` writes them

Each export is checked before it is kept: its outputs on 64 random inputs must match the
model's within `TOLERANCE`.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import traceback
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor, nn

from datamodules.batches import TensorDataModule
from datamodules.choices import check_choice
from datamodules.contract import facts_of
from datamodules.errors import ExistingFileError, UserError
from datamodules.tabular import TablePreprocessing
from datamodules.tabular.files import read_table

Format = Literal["onnx", "pt2"]
TOLERANCE = 1e-5  # the largest difference allowed between the exported model's outputs and the model's (see `agree`)
PREDICT_SCRIPT = Path(__file__).with_name("exported_predict.py")  # written beside a table's export as predict.py


class Predictions(nn.Module):
    """What `model.predict_step` gives for a batch of inputs, after the data's own per-batch transform."""

    def __init__(self, model: L.LightningModule, transform: Any = None) -> None:
        super().__init__()
        self.model, self.transform = model, transform

    def forward(self, inputs: Tensor) -> Tensor:
        if self.transform is not None:
            inputs = self.transform(inputs)
        return self.model.predict_step(inputs, 0)


def export(
    model: L.LightningModule,
    output: str | Path,
    format: Format = "onnx",
    datamodule: L.LightningDataModule | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Writes `model` as `output` and what predicting with it needs beside it; returns the files written.

    Args:
        model: a trained model (`predict_step` gives its predictions).
        output: the file to write (`.onnx` or `.pt2`, by `format`).
        format: "onnx" (onnxruntime, any language) or "pt2" (`torch.export.save`; load with `torch.export.load`).
        datamodule: the data it learnt from: its inputs' shape and per-batch transform, and for a table its
            preprocessing. None: the model's `example_input_array` gives the inputs' shape.
        overwrite: replace files of the same names; otherwise an existing one stops the export first.

    Raises:
        UserError: naming what cannot be exported, or an `output` that exists.
        RuntimeError: the export's outputs differ from the model's by more than `TOLERANCE`.
    """
    check_choice("format", format, Format)
    output = Path(output)
    ours = isinstance(datamodule, TensorDataModule)  # a data module of datamodules: it knows its inputs
    deployment = datamodule.deployment() if ours else None
    copies = {}  # the code that predicting with a table's export needs, written beside it: its source
    if deployment is not None:
        copies[output.with_name("preprocess.py")] = Path(inspect.getfile(TablePreprocessing))
        copies[output.with_name("table_files.py")] = Path(inspect.getfile(read_table))
        if format == "onnx":
            copies[output.with_name("predict.py")] = PREDICT_SCRIPT
    files = [output, description(output), *copies]
    existing = [path for path in files if path.exists()]
    existing = [str(path) for path in existing if path not in copies or path.read_bytes() != copies[path].read_bytes()]
    if not overwrite and existing:
        raise ExistingFileError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}: pass --overwrite true "
            "(overwrite=True in Python) to replace, or another --output"
        )
    module = Predictions(model, datamodule.batch_transform if ours else None).eval()
    sample = _example_inputs(model, datamodule)
    output.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        program = _exported_program(module, sample, type(model).__name__)
        expected = module(sample)
    if format == "onnx":
        _write_onnx(program, output)
    else:
        torch.export.save(program, output)
    try:
        difference, allowed = agree(_run(output, format, sample), expected)
        if not difference <= allowed:
            raise RuntimeError(
                f"the exported model's outputs differ from the model's by up to {difference:.3g} (more than "
                f"{allowed:.3g}): nothing was kept"
            )
    except BaseException:
        output.unlink(missing_ok=True)
        raise
    info = {"format": format, "model": type(model).__name__, **_inputs_and_outputs(sample, expected)}
    if deployment is not None:
        info |= deployment
    elif (facts := facts_of(datamodule)) is not None and facts.class_names:
        info["class_names"] = list(facts.class_names)
    description(output).write_text(json.dumps(info, indent=1))
    for path, source in copies.items():
        shutil.copyfile(source, path)
    return files


def agree(outputs: Tensor, expected: Tensor) -> tuple[float, float]:
    """The largest difference between two sets of outputs, and the most allowed: `TOLERANCE`.

    For numbers larger than 1 (a regression in its target's units), `TOLERANCE` times the largest of them: float32
    keeps about 7 digits, so predictions near 50,000 differ by about 0.004 however they are computed.
    """
    difference = (outputs.double() - expected.double()).abs().max().item()
    return difference, TOLERANCE * max(1.0, expected.abs().max().item())


def description(output: Path) -> Path:
    """Where an export's description goes: `model.onnx.json` beside `model.onnx`."""
    return output.with_name(f"{output.name}.json")


def _example_inputs(model: L.LightningModule, datamodule: L.LightningDataModule | None) -> Tensor:
    """64 inputs to trace and check with: random ones of the data's kind, or the model's example repeated."""
    if isinstance(datamodule, TensorDataModule):
        return datamodule.example_inputs(64)
    example = model.example_input_array
    if not isinstance(example, Tensor):
        raise UserError(
            f"{type(model).__name__} has no example_input_array to export with: set one (a batch of inputs), "
            "or pass the datamodule it learnt from"
        )
    return example[:1].expand(64, *example.shape[1:]) + torch.randn(64, *example.shape[1:])


def _exported_program(module: nn.Module, sample: Tensor, name: str) -> torch.export.ExportedProgram:
    """`torch.export` of `module` with a batch dimension of any size; a failure names where in the model it is."""
    try:
        return torch.export.export(module, (sample,), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},), strict=False)
    except Exception as error:  # torch's export errors run to pages: one line, and where
        raise UserError(f"{name} cannot be exported: {_where(error)}{str(error).strip().splitlines()[0]}") from error


def _where(error: BaseException) -> str:
    """The innermost line of the user's or the project's own code in a traceback: "at file:line (code): "."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if "site-packages" not in frame.filename]
    frames = [frame for frame in frames if frame.filename != __file__]
    if not frames:
        return ""
    frame = frames[-1]
    return f"at {Path(frame.filename).name}:{frame.lineno} ({(frame.line or '').strip()}): "


def _write_onnx(program: torch.export.ExportedProgram, output: Path) -> None:
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError as error:
        raise UserError("exporting to ONNX needs onnx and onnxscript: pip install 'litmodules[export]'") from error
    onnx_program = torch.onnx.export(program, dynamo=True, verbose=False)
    onnx_program.save(str(output))


def _run(path: Path, format: Format, inputs: Tensor) -> Tensor:
    """The exported model's outputs, run as a user would run it: onnxruntime, or the loaded program."""
    if format == "pt2":
        with torch.no_grad():
            return torch.export.load(path).module()(inputs)
    try:
        import onnxruntime
    except ImportError as error:
        raise UserError("checking an ONNX export needs onnxruntime: pip install 'litmodules[export]'") from error
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (outputs,) = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})
    return torch.from_numpy(outputs)


def _inputs_and_outputs(sample: Tensor, outputs: Tensor) -> dict[str, Any]:
    """The exported model's input and output, as its JSON file describes them."""
    per_example = list(sample.shape[1:])
    kind = "probabilities" if outputs.dim() == 2 else "predictions"
    dtype = re.sub(r"^torch\.", "", str(sample.dtype))
    return {"inputs": {"shape": ["batch", *per_example], "dtype": dtype}, "outputs": kind}
