"""The ViTAS family: its space, exact counts (against ptflops), supernet, export and timm parity."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from family_checks import (
    assert_counts_exact,
    assert_export_round_trip,
    assert_extracts_match,
    images,
    ptflops_macs,
    sample_and_search_within_budget,
)
from timm.layers import Attention
from timm.models.vision_transformer import VisionTransformer

from focusformer import count_macs, count_params
from focusformer.config import load_config
from focusformer.errors import ConfigError
from focusformer.sampling.calibration import calibrate_identity
from focusformer.spaces import INACTIVE, SearchSpace, ViTASArch, ViTASBlock, ViTASSpace, create_supernet
from focusformer.spaces.vitas import vitas_published_macs

SMALL = ("vitas-digits", "vitas-fashion-mnist")

# ViTAS's released models (REFERENCE.md §1): (heads, q/k/v outputs, MLP hidden) per layer, None = identity.
VITAS_C = ViTASArch(16, 230, ((3, 432, 720),) * 12 + (None,) * 4)
VITAS_B = ViTASArch(16, 192, ((16, 288, 864), None, None, (16, 432, 576), None, (16, 432, 1008), None, None,
                              (12, 1152, 864), (12, 1008, 720), None, (12, 864, 576), (16, 432, 1296), None, None,
                              (6, 864, 864)))
VITAS_E = ViTASArch(16, 346, ((16, 720, 720), None, (16, 1008, 864), None, (16, 864, 1008), (6, 864, 1008), None,
                              (3, 576, 720), None, (12, 1296, 1296), (6, 1296, 1152), (12, 720, 144), None,
                              (12, 1440, 864), (6, 576, 1008), (12, 1152, 1296)))


def varied_archs(space: ViTASSpace, count: int, seed: int) -> list[ViTASArch]:
    """Random archs covering every patch size and identity pattern, plus the extremes."""
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng, identity_prob=p) for p in np.linspace(0.0, 0.8, count)]
    return archs + [space.largest(), space.smallest()]


# -- the space ----------------------------------------------------------------------------------
def test_released_vitas_models_are_archs_of_vitas_tiny_and_counted_as_published():
    space = load_config("vitas-tiny").space
    for arch, published_g in ((VITAS_C, 1.3), (VITAS_B, 1.0), (VITAS_E, 2.7)):
        space.validate(arch)
        assert round(vitas_published_macs(arch, space) / 1e9, 1) == published_g
        # This package's convention adds the class token and biases and counts the classifier once.
        assert count_macs(arch, space) < vitas_published_macs(arch, space)
    assert VITAS_C.depth == 12 and VITAS_B.depth == 8 and VITAS_E.depth == 11


def test_arch_json_round_trip_with_identity_layers():
    text = VITAS_B.to_json()
    assert ViTASArch.from_json(text) == VITAS_B
    assert '"blocks": [{"num_heads": 16, "qkv_dim": 288, "mlp_dim": 864}, null' in text


@pytest.mark.parametrize("name", SMALL + ("vitas-tiny",))
def test_encode_decode_round_trip_and_sizes(name):
    space = load_config(name).space
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        code = space.encode(arch)
        assert code.shape == (2 + 3 * space.depth,)
        assert space.decode(code) == arch
        for i, block in enumerate(arch.blocks):  # an identity layer's widths are inactive
            widths = code[2 + 3 * i + 1: 2 + 3 * i + 3]
            assert (widths == INACTIVE).all() == (block is None)


def test_decode_rejects_identity_with_widths_and_heads_that_do_not_split():
    space = load_config("vitas-fashion-mnist").space
    code = space.encode(space.largest())
    identity_with_widths = code.copy()
    identity_with_widths[2] = 0  # heads choice 0 is identity, but qkv/mlp stay set
    with pytest.raises(ConfigError, match="not canonical"):
        space.decode(identity_with_widths)
    heads_6_width_64 = code.copy()
    heads_6_width_64[2:5] = [space.decision_plan().layer[0].choices.index(6), space.qkv_dim.index(192), 0]
    with pytest.raises(ConfigError, match="not canonical"):
        space.decode(heads_6_width_64)
    with pytest.raises(ConfigError, match="whole heads"):
        space.validate(ViTASArch(4, 96, (ViTASBlock(6, 192, 96),) + (None,) * 5))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"qkv_dim": [100, 144]}, "not 3 x an attention width"),
        ({"num_heads": [5]}, "split no qkv_dim choice"),
        ({"patch_size": [3, 4]}, "does not divide image_size 28"),
        ({"embed_dim": []}, "needs at least one choice"),
        ({"family": "nasvit"}, "family: 'nasvit' is not allowed"),
        ({"depth": 0}, "must be a positive integer"),
        ({"head_dim": 16}, "unknown key 'head_dim'"),
    ],
)
def test_bad_vitas_spaces_are_clear_errors(change, message):
    data = load_config("vitas-fashion-mnist").space.to_dict()
    with pytest.raises(ConfigError, match=message):
        SearchSpace.from_dict({**data, **change})


def test_identity_off_means_every_layer_is_a_block():
    data = load_config("vitas-fashion-mnist").space.to_dict()
    space = SearchSpace.from_dict({**data, "identity": False})
    rng = np.random.default_rng(1)
    assert all(b is not None for _ in range(20) for b in space.sample(rng).blocks)
    with pytest.raises(ConfigError, match="identity layers are off"):
        space.validate(ViTASArch(4, 48, (None,) * 6))
    assert all(b is not None for b in space.smallest().blocks)


# -- exact counts -------------------------------------------------------------------------------
def ptflops_count(model: torch.nn.Module, space: SearchSpace) -> int:
    attns = [m for m in model.modules() if isinstance(m, Attention)]
    assert not any(m.fused_attn for m in attns)
    return ptflops_macs(model, space)


@pytest.mark.parametrize("name", SMALL)
def test_macs_equal_ptflops_and_params_equal_the_model(name, explicit_attention):
    """32+ random subnets per space, across patch sizes and identity patterns (the first layer an
    identity too: min_depth 0), counted exactly."""
    space = dataclasses.replace(load_config(name).space, min_depth=0)
    archs = varied_archs(space, 30, seed=3)
    assert {a.patch_size for a in archs} == set(space.patch_size)
    assert len({tuple(b is None for b in a.blocks) for a in archs}) > 10
    assert not any(m.fused_attn for m in space.build_subnet(archs[0]).modules() if isinstance(m, Attention))
    assert_counts_exact(space, archs)


def test_vitas_tiny_counts_equal_ptflops_on_a_released_model(explicit_attention):
    space = load_config("vitas-tiny").space
    model = space.build_subnet(VITAS_C)
    assert count_macs(VITAS_C, space) == ptflops_count(model, space)
    assert count_params(VITAS_C, space) == sum(p.numel() for p in model.parameters())


# -- supernet, private parts, export ------------------------------------------------------------
@pytest.fixture(scope="module")
def fmnist_supernet(randomize):
    """vitas-fashion-mnist with ViTAS's private q/k (the shipped config shares q/k, as measured)."""
    space = dataclasses.replace(load_config("vitas-fashion-mnist").space, private_qk=True)
    return space, randomize(create_supernet(space), seed=1).eval()


def test_extracted_subnets_give_the_supernets_logits(fmnist_supernet):
    space, supernet = fmnist_supernet
    assert_extracts_match(supernet, space, varied_archs(space, 8, seed=5))


def test_export_round_trip(fmnist_supernet, tmp_path):
    space, supernet = fmnist_supernet
    assert_export_round_trip(supernet, space, varied_archs(space, 3, seed=9)[1], tmp_path / "subnet")


def test_private_tokens_per_patch_size_and_private_qk_per_head_count(fmnist_supernet):
    space, _ = fmnist_supernet
    supernet = create_supernet(space).train()
    arch = ViTASArch(7, 64, (ViTASBlock(2, 192, 96), None, None, None, None, ViTASBlock(4, 144, 192)))
    supernet(images(space), arch).sum().backward()
    grads = {n: p.grad for n, p in supernet.named_parameters()}
    touched = {n for n, g in grads.items() if g is not None and g.abs().sum() > 0}
    assert {"cls_token.7", "pos_embed.7", "patch_embed.7.proj.weight"} <= touched
    assert not touched & {"cls_token.4", "pos_embed.4", "patch_embed.4.proj.weight", "patch_embed.4.proj.bias"}
    assert "blocks.0.attn.qk.2.weight" in touched and "blocks.0.attn.v.weight" in touched
    assert not any(n.startswith("blocks.0.attn.qk.4") or n.startswith("blocks.0.attn.qk.6") for n in touched)
    assert "blocks.5.attn.qk.4.weight" in touched
    assert not any(n.startswith(f"blocks.{i}.") for i in (1, 2, 3, 4) for n in touched)
    # Entangled widths: only the leading slices of a private projection move.
    assert grads["blocks.0.attn.v.weight"][64:].abs().sum() == 0
    assert grads["blocks.0.attn.v.weight"][:, 64:].abs().sum() == 0


def test_shared_qk_option_entangles_qkv_as_autoformer(randomize):
    data = load_config("vitas-fashion-mnist").space.to_dict()
    space = SearchSpace.from_dict({**data, "private_qk": False})
    supernet = randomize(create_supernet(space), seed=2).eval()
    names = {n for n, _ in supernet.named_parameters()}
    assert "blocks.0.attn.qkv.weight" in names and not any(".qk." in n for n in names)
    private = create_supernet(SearchSpace.from_dict({**data, "private_qk": True}))
    assert sum(p.numel() for p in supernet.parameters()) < sum(p.numel() for p in private.parameters())
    assert_extracts_match(supernet, space, varied_archs(space, 4, seed=6))


def timm_vit(space: ViTASSpace, arch: ViTASArch) -> VisionTransformer:
    blocks = [b for b in arch.blocks if b is not None]
    assert len(set(blocks)) == 1
    block = blocks[0]

    class HeadDimAttention(Attention):
        def __init__(self, dim, num_heads=8, **kwargs):
            super().__init__(dim, num_heads=num_heads, attn_head_dim=block.head_dim, **kwargs)

    return VisionTransformer(img_size=space.image_size, patch_size=arch.patch_size, in_chans=space.in_chans,
                             num_classes=space.num_classes, embed_dim=arch.embed_dim, depth=len(blocks),
                             num_heads=block.num_heads, mlp_ratio=block.mlp_dim / arch.embed_dim, qkv_bias=True,
                             global_pool="token", attn_layer=HeadDimAttention)


@pytest.mark.parametrize("patch_size", [4, 7])
def test_uniform_subnets_load_into_timm_vision_transformer(fmnist_supernet, patch_size):
    """Identity layers dropped, the chosen patch size's private stem: timm's own ViT, same logits."""
    space, supernet = fmnist_supernet
    x = images(space, seed=7)
    for embed, block in ((48, ViTASBlock(6, 288, 192)), (96, ViTASBlock(2, 144, 288)), (64, ViTASBlock(4, 192, 192))):
        assert int(embed * (block.mlp_dim / embed)) == block.mlp_dim
        arch = ViTASArch(patch_size, embed, (block, None, block, None, None, block))
        reference = timm_vit(space, arch)
        reference.load_state_dict(supernet.subnet_state_dict(arch), strict=True)
        with torch.no_grad():
            torch.testing.assert_close(reference.eval()(x), supernet(x, arch), atol=1e-5, rtol=0)


# -- sampling and search within budget ----------------------------------------------------------
@pytest.mark.parametrize("kind", ["macs", "params"])
def test_sampler_and_searches_stay_within_budget(kind):
    space = load_config("vitas-fashion-mnist").space
    sampled, _ = sample_and_search_within_budget(space, kind)
    assert len({a.patch_size for a in sampled}) == 2 and any(None in a.blocks for a in sampled)


def test_identity_calibration_lands_the_mean_in_the_band():
    space = load_config("vitas-fashion-mnist").space
    previous = -1.0
    for budget in (12e6, 6e6, 3e6):  # smaller budgets need more identity layers
        calibration = calibrate_identity(space, budget, seed=0)
        assert 0.9 * budget <= calibration.mean_macs <= budget
        assert calibration.identity_prob > previous
        previous = calibration.identity_prob
        rng = np.random.default_rng(1)
        draws = [count_macs(space.sample(rng, identity_prob=calibration.identity_prob), space) for _ in range(1000)]
        assert 0.85 * budget <= np.mean(draws) <= 1.05 * budget  # fresh draws: same mean up to noise
