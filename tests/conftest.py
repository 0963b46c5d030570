"""Shared helpers for the focusformer tests.

Kept small on purpose: fixtures that hand out the shipped search spaces and a
function that fills a model with random, well-scaled weights (the default init
leaves every bias at zero and every norm at identity, which would hide slicing
bugs in biases and norms).
"""

from __future__ import annotations

import functools
import os

import pytest
import torch
from timm.layers import set_fused_attn, use_fused_attn

from focusformer.config import load_config


def pytest_configure(config):
    """Under pytest-xdist each worker is a process of its own: one CPU thread each (and for the
    commands it starts), so ``-n auto`` fills the cores without oversubscribing them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


@functools.lru_cache(maxsize=None)
def _space(name: str):
    return load_config(name).space


@pytest.fixture(scope="session")
def space_of():
    """``space_of(name)``: the SearchSpace of a shipped config."""
    return _space


def _randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fill every parameter with random values that keep activations of order one."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float32).to(param.dtype)
            if "norm" in name and name.endswith("weight"):
                param.copy_(1.0 + 0.2 * noise)
            elif name.endswith("bias") or name.split(".")[0] in ("cls_token", "pos_embed"):
                param.copy_(0.2 * noise)
            else:  # weights: variance 1 / fan_in
                param.copy_(noise / param[0].numel() ** 0.5)
    return module


@pytest.fixture(scope="session")
def randomize():
    """``randomize(module, seed=0)``: random, well-scaled weights in place; returns the module."""
    return _randomize


@pytest.fixture
def explicit_attention():
    """Make timm's Attention compute ``q @ k^T`` and ``attn @ v`` as explicit matmuls.

    ptflops's aten backend counts MACs per aten op (mm, addmm, bmm, convolution, ...)
    and has no rule for the fused ``scaled_dot_product_attention`` kernel, so with
    fused attention it would count the two attention matmuls as zero and undercount
    every ViT. timm reads the flag when a module is built, so it must be set before
    the model is constructed; it is restored afterwards for the other tests.
    """
    previous = use_fused_attn()
    set_fused_attn(False)
    try:
        yield
    finally:
        set_fused_attn(previous)
