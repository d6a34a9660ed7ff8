"""Predicts new rows of a table with an exported model: numpy, pandas and onnxruntime, no torch.

Not imported by the package: `nnmodules.runs.export` writes this file as `predict.py` beside a
table's `model.onnx`, with `model.onnx.json` (the fitted preprocessing, how training read its files,
and what the model gives), `preprocess.py` (the preprocessing's code) and `table_files.py` (the
reading's). From that folder:

    from predict import predict
    predictions = predict("model.onnx", "new.csv")   # a CSV read as training read its own, Parquet, Excel,
                                                     # or a pandas DataFrame of rows

New rows may have columns the model does not use (ignored), missing values (the
training medians) and categories never seen (no one-hot column set).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
from preprocess import TablePreprocessing
from table_files import read_table


def predict(model: str | Path, rows: str | Path | pd.DataFrame) -> pd.DataFrame:
    """The predictions for `rows`, as `litmodules predict` writes them.

    `row` (each row's position), the id column if the table had one, then `prediction` (the class, as the
    training table wrote it, or the number in the target's units) and, for classes, `p_<class>`: each
    class's probability.
    """
    info = json.loads(Path(f"{model}.json").read_text())
    frame = read_table(rows, "rows", **info["reading"])  # delimiter, encoding, decimal mark... as training's
    features = TablePreprocessing.from_state_dict(info["preprocessing"]).transform(frame)
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (outputs,) = session.run(None, {session.get_inputs()[0].name: features})
    table = pd.DataFrame({"row": frame.index})
    if info["id_column"] in frame.columns:
        table[info["id_column"]] = frame[info["id_column"]].to_numpy()
    if outputs.ndim == 1:
        return table.assign(prediction=outputs)
    labels = info["class_names"]
    table["prediction"] = np.asarray(labels, dtype=object)[outputs.argmax(axis=1)]
    probabilities = pd.DataFrame(outputs, columns=[f"p_{label}" for label in labels])
    return pd.concat([table, probabilities], axis=1)
