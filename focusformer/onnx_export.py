"""ONNX export of a dense subnet: one standalone ``model.onnx`` with a dynamic batch size.

Traced by torch's own exporter (``torch.onnx.export(..., dynamo=True)``), which needs the
``onnx`` and ``onnxscript`` packages: the ``onnx`` extra (``pip install 'focusformer[onnx]'``,
with onnxruntime to run the result). The model takes ``images`` (batch, channels, height,
width) and returns ``logits`` (batch, classes).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from .errors import FocusformerError
from .fileio import atomic_writer

ONNX_FILE = "model.onnx"
INPUT_NAME, OUTPUT_NAME = "images", "logits"
OPSET = 18
_NEEDED = ("onnx", "onnxscript")


def require_onnx() -> None:
    """FocusformerError (one line) if the packages the ONNX exporter needs are missing."""
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise FocusformerError(f"ONNX export needs {' and '.join(missing)}, not installed here: "
                               "pip install 'focusformer[onnx]'")


def export_onnx(model: nn.Module, path: str | Path) -> Path:
    """Write ``model`` (a family's dense subnet, with ``space`` set) to ``path`` as ONNX, atomically.
    The model is moved to the CPU and put in eval mode."""
    require_onnx()
    space = model.space
    model = model.cpu().eval()
    example = torch.zeros(2, space.in_chans, space.image_size, space.image_size)
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        model, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: batch},), opset_version=OPSET, dynamo=True, verbose=False,
    )
    path = Path(path)
    with atomic_writer(path) as tmp:
        program.save(str(tmp))
    return path
