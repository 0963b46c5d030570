"""ONNX export: onnxruntime's outputs match PyTorch's for every family, at two batch sizes from one file."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import onnxruntime
import pytest
import torch

from focusformer import FocusformerError
from focusformer.onnx_export import INPUT_NAME, export_onnx
from focusformer.spaces import PSViTArch, PSViTStage, ViTASArch, ViTASBlock


def _cases(space_of):
    digits, vitas, psvit = space_of("digits"), space_of("vitas-digits"), space_of("psvit-digits")
    psvit_stages = (PSViTStage(16, 2.0, ("shared", "identity")), PSViTStage(32, 4.0, ("layer", "shared")),
                    PSViTStage(48, 2.0, ("identity", "layer")))
    return {
        "autoformer": (digits, digits.sample(np.random.default_rng(0))),
        # identity layers, mixed head counts and widths; patch 2 and patch 4 (private stems)
        "vitas-patch2": (vitas, ViTASArch(2, 32, (ViTASBlock(2, 72, 48), None, ViTASBlock(4, 144, 192), None))),
        "vitas-patch4": (vitas, ViTASArch(4, 48, (ViTASBlock(3, 144, 96), None, ViTASBlock(2, 96, 48), None))),
        "psvit-1d": (psvit, PSViTArch(psvit_stages)),
        "psvit-2d": (dataclasses.replace(psvit, pooling="2d"), PSViTArch(psvit_stages)),
    }


CASES = ["autoformer", "vitas-patch2", "vitas-patch4", "psvit-1d", "psvit-2d"]


@pytest.mark.parametrize("case", CASES)
def test_onnxruntime_matches_pytorch_at_two_batch_sizes(case, space_of, randomize, tmp_path):
    space, arch = _cases(space_of)[case]
    model = randomize(space.build_subnet(arch)).eval()
    path = export_onnx(model, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(1)
    for batch in (1, 5):  # the file was traced at batch 2: the batch dimension is dynamic
        images = torch.randn(batch, space.in_chans, space.image_size, space.image_size, generator=generator)
        (logits,) = session.run(None, {INPUT_NAME: images.numpy()})
        with torch.inference_mode():
            expected = model(images).numpy()
        assert logits.shape == (batch, space.num_classes)
        np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)


def test_missing_onnx_is_a_one_line_error(space_of, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    space = space_of("digits")
    with pytest.raises(FocusformerError, match=r"needs onnxscript.*pip install 'focusformer\[onnx\]'") as error:
        export_onnx(space.build_subnet(space.smallest()), tmp_path / "model.onnx")
    assert "\n" not in str(error.value) and not (tmp_path / "model.onnx").exists()
