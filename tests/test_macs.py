"""Analytic MAC and parameter counts against ptflops, a hand count and each other."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from ptflops import get_model_complexity_info
from timm.layers import Attention

from focusformer.config import load_config, shipped_configs
from focusformer.spaces import Arch, SearchSpace, create_supernet
from focusformer.spaces.counts import count_macs, count_macs_batch, count_params

#: The AutoFormer-family configs (other families have their own test modules).
SHIPPED = tuple(n for n in shipped_configs() if load_config(n).space.family == "autoformer")
#: Random archs checked against ptflops per space (the AutoFormer spaces are ImageNet-sized).
N_ARCHS = {"autoformer-base": 1, "autoformer-small": 1, "autoformer-tiny": 2}


def ptflops_count(model: torch.nn.Module, space: SearchSpace) -> tuple[int, int]:
    attns = [m for m in model.modules() if isinstance(m, Attention)]
    assert attns and not any(m.fused_attn for m in attns), "model was built with fused attention"
    macs, params = get_model_complexity_info(
        model.eval(),
        (space.in_chans, space.image_size, space.image_size),
        as_strings=False,
        backend="aten",
        print_per_layer_stat=False,
        verbose=False,
    )
    return int(macs), int(params)


def archs_for(name: str, space: SearchSpace) -> list[Arch]:
    rng = np.random.default_rng(sum(map(ord, name)))
    archs = [space.sample(rng) for _ in range(N_ARCHS.get(name, 3))]
    if name == "digits":
        archs += [space.largest(), space.smallest()]
    return archs


@pytest.mark.parametrize("name", SHIPPED)
def test_macs_and_params_match_ptflops(name, space_of, explicit_attention):
    space = space_of(name)
    torch.manual_seed(0)
    for i, arch in enumerate(archs_for(name, space)):
        if name == "digits" and i == 0:
            model = create_supernet(space).extract(arch)  # the exported model, through the supernet
        else:
            model = space.build_subnet(arch)
        macs, ptflops_params = ptflops_count(model, space)
        assert count_macs(arch, space) == macs, arch  # exact: 1% would hide a dropped class token
        n_params = sum(p.numel() for p in model.parameters())
        assert count_params(arch, space) == n_params, arch
        assert ptflops_params == n_params


def test_hand_count_of_a_small_arch(space_of):
    """digits space: 8x8x1 images, 2x2 patches, head_dim 8, 10 classes; written out from scratch."""
    space = space_of("digits")
    arch = Arch(embed_dim=24, depth=2, num_heads=(3, 6), mlp_ratio=(2.0, 4.0))

    def linear(rows, fan_in, fan_out):  # one MAC per weight per row, plus one per bias add
        return rows * fan_out * (fan_in + 1)

    tokens = (8 // 2) ** 2 + 1  # 16 patches + class token
    e = 24
    macs = linear(16, 2 * 2 * 1, e)  # patch embedding: a 2x2 conv is a linear map per patch
    for heads, hidden in ((3, 48), (6, 96)):
        width = heads * 8
        macs += linear(tokens, e, 3 * width)  # q, k, v
        macs += heads * tokens * tokens * 8  # q @ k^T, per head
        macs += heads * tokens * tokens * 8  # attn @ v, per head
        macs += linear(tokens, width, e)  # output projection
        macs += linear(tokens, e, hidden) + linear(tokens, hidden, e)  # MLP
    macs += linear(1, e, 10)  # classifier on the class token only
    # The same sum worked out on paper: 1920 + 95064 + 189312 + 250.
    assert macs == 286546
    assert count_macs(arch, space) == macs

    def linear_params(fan_in, fan_out):
        return fan_out * (fan_in + 1)

    params = linear_params(4, e) + e + tokens * e  # patch embed, class token, position embedding
    for heads, hidden in ((3, 48), (6, 96)):
        width = heads * 8
        params += 2 * 2 * e  # two LayerNorms
        params += linear_params(e, 3 * width) + linear_params(width, e)
        params += linear_params(e, hidden) + linear_params(hidden, e)
    params += 2 * e + linear_params(e, 10)  # final norm and head
    assert params == 120 + 24 + 408 + 4872 + 9600 + 48 + 250 == 15322
    assert count_params(arch, space) == params
    assert sum(p.numel() for p in space.build_subnet(arch).parameters()) == params


@pytest.mark.parametrize("name", SHIPPED)
def test_batch_count_equals_scalar_count(name, space_of):
    space = space_of(name)
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(200)] + [space.largest(), space.smallest()]
    codes = np.stack([space.encode(a) for a in archs])
    batch = count_macs_batch(codes, space)
    assert batch.shape == (len(archs),)
    assert [int(m) for m in batch] == [count_macs(a, space) for a in archs]
    # A single code (1-D) and a list input work as well.
    assert int(count_macs_batch(codes[0], space)[0]) == count_macs(archs[0], space)
    assert int(count_macs_batch(codes.tolist(), space)[-1]) == count_macs(archs[-1], space)


def grown(arch: Arch, space: SearchSpace) -> list[tuple[str, Arch]]:
    """Every arch that differs from ``arch`` by one dimension moved to its next larger choice."""
    out = []
    bigger = lambda value, choices: [c for c in sorted(choices) if c > value][:1]  # noqa: E731
    for e in bigger(arch.embed_dim, space.embed_dim):
        out.append(("embed_dim", dataclasses.replace(arch, embed_dim=e)))
    for d in bigger(arch.depth, space.depth):
        extra = d - arch.depth  # new layers take the smallest choices
        out.append(("depth", Arch(arch.embed_dim, d, arch.num_heads + (min(space.num_heads),) * extra,
                                  arch.mlp_ratio + (min(space.mlp_ratio),) * extra)))
    for i in range(arch.depth):
        for h in bigger(arch.num_heads[i], space.num_heads):
            heads = list(arch.num_heads)
            heads[i] = h
            out.append((f"num_heads[{i}]", dataclasses.replace(arch, num_heads=tuple(heads))))
        for r in bigger(arch.mlp_ratio[i], space.mlp_ratio):
            ratios = list(arch.mlp_ratio)
            ratios[i] = r
            out.append((f"mlp_ratio[{i}]", dataclasses.replace(arch, mlp_ratio=tuple(ratios))))
    return out


@pytest.mark.parametrize("name", SHIPPED)
def test_growing_any_dimension_increases_macs_and_params(name, space_of):
    space = space_of(name)
    rng = np.random.default_rng(2)
    archs = [space.smallest()] + [space.sample(rng) for _ in range(10)]
    checked = set()
    for arch in archs:
        for what, big in grown(arch, space):
            space.validate(big)
            assert count_macs(big, space) > count_macs(arch, space), (what, arch)
            assert count_params(big, space) > count_params(arch, space), (what, arch)
            checked.add(what.split("[")[0])
    assert checked == {"embed_dim", "depth", "num_heads", "mlp_ratio"}
    # Nothing in the space exceeds the largest arch or undercuts the smallest.
    for arch in archs[1:]:
        assert count_macs(space.smallest(), space) <= count_macs(arch, space) <= count_macs(space.largest(), space)
        assert count_params(arch, space) <= count_params(space.largest(), space)
