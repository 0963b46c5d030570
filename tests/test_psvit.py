"""The PSViT family: its space, exact counts (against ptflops), supernet, pooling, attention sharing, export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from family_checks import (
    assert_counts_exact,
    assert_export_round_trip,
    assert_extracts_match,
    images,
    ptflops_macs,
    sample_and_search_within_budget,
)
from ptflops import get_model_complexity_info

from focusformer import count_macs, count_params
from focusformer.config import load_config
from focusformer.errors import ConfigError
from focusformer.spaces import PSViTArch, PSViTSpace, PSViTStage, SearchSpace, create_supernet, get_family
from focusformer.spaces.psvit import OPS

POOLINGS = ("1d", "2d")


def space_for(pooling: str, name: str = "psvit-digits") -> PSViTSpace:
    return load_config(name, [f"space.pooling={pooling}"]).space


def varied_archs(space: PSViTSpace, count: int, seed: int) -> list[PSViTArch]:
    """Random archs from no identity cells to nearly all, plus the extremes and an all-``layer`` one."""
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng, identity_prob=p) for p in np.linspace(0.0, 0.9, count)]
    plain = PSViTArch(tuple(PSViTStage(s.width, s.mlp_ratio, ("layer",) * space.cells_per_stage)
                            for s in space.largest().stages))
    return archs + [space.largest(), space.smallest(), plain]


def stage(width: int, ratio: float, *cells: str) -> PSViTStage:
    return PSViTStage(width, ratio, cells)


# -- the space ----------------------------------------------------------------------------------
def test_registered_and_decisions_as_documented():
    assert get_family("psvit").space is PSViTSpace
    space = space_for("1d")
    plan = space.decision_plan()
    assert [d.kind for d in plan.network] == ["width[0]", "width[1]", "width[2]",
                                              "mlp_ratio[0]", "mlp_ratio[1]", "mlp_ratio[2]"]
    assert plan.layer[0].choices == OPS and plan.num_layers == 3 * space.cells_per_stage
    assert space.patch_tokens() == (16, 8, 4) and space.tokens(0) == 17
    assert space_for("2d").patch_tokens() == (16, 4, 1) and space_for("2d").tokens(0) == 16
    assert load_config("psvit-1d-fashion-mnist").space.patch_tokens() == (49, 25, 13)
    assert load_config("psvit-2d-fashion-mnist").space.patch_tokens() == (49, 16, 4)


def test_tiny_configs_are_deit_tiny_sized():
    for name in ("psvit-1d-tiny", "psvit-2d-tiny"):
        space = load_config(name).space
        assert space.cells_per_stage == 6 and space.num_stages == 3
        assert 1.2e9 <= count_macs(space.largest(), space) <= 1.4e9


def test_arch_json_round_trip():
    arch = PSViTArch((stage(16, 2.0, "layer", "identity"), stage(24, 4.0, "shared", "shared"),
                      stage(48, 2.0, "identity", "identity")))
    text = arch.to_json()
    assert '"cells": ["layer", "identity"]' in text
    assert PSViTArch.from_json(text) == arch
    assert space_for("1d").arch_from_dict(arch.to_dict()) == arch
    assert arch.depth == 5


@pytest.mark.parametrize("pooling", POOLINGS)
def test_encode_decode_round_trip(pooling):
    space = space_for(pooling, "psvit-1d-fashion-mnist")
    rng = np.random.default_rng(0)
    for _ in range(100):
        arch = space.sample(rng)
        code = space.encode(arch)
        assert code.shape == (6 + 3 * space.cells_per_stage,) and space.decode(code) == arch
        widths = [s.width for s in arch.stages]
        assert widths == sorted(widths)


def test_shrinking_widths_are_not_archs():
    space = load_config("psvit-1d-fashion-mnist", ["space.widths=[[32, 64], [48, 96], [64, 96]]"]).space
    assert len(space.width_choices()) == 4  # of 8: no 64 then 48, no 96 then 64
    assert all(list(w) == sorted(w) for w in space.width_choices())
    cells = ("layer",) * space.cells_per_stage
    equal = PSViTArch((stage(64, 2.0, *cells), stage(96, 2.0, *cells), stage(96, 2.0, *cells)))
    assert space.validate(equal) is equal
    narrowing = PSViTArch((stage(64, 2.0, *cells), stage(48, 2.0, *cells), stage(96, 2.0, *cells)))
    with pytest.raises(ConfigError, match=r"stages\[1\].width: 48 is narrower than stage 0's 64"):
        space.validate(narrowing)
    code = space.encode(equal)
    code[0], code[1] = 1, 0  # 64 then 48
    with pytest.raises(ConfigError, match="not canonical"):
        space.decode(code)
    rng = np.random.default_rng(0)
    assert all(list(w) == sorted(w) for w in ([s.width for s in space.sample(rng).stages] for _ in range(200)))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"widths": [[48, 64], [64, 90], [96]]}, r"space.widths\[1\]: width 90 is not a multiple of head_dim 16"),
        ({"widths": [[48, 64], [], [96]]}, r"space.widths\[1\]: stage 1 has no width choices"),
        ({"widths": []}, "space.widths: needs at least one stage"),
        ({"widths": [[96], [64], [48]]}, "never narrows"),
        ({"pooling": "3d"}, r"space.pooling: '3d' is not allowed; choose one of '1d', '2d'"),
        ({"mlp_ratio": []}, "space.mlp_ratio: needs at least one choice"),
        ({"cells_per_stage": 0}, "space.cells_per_stage: must be a positive integer"),
        ({"patch_size": 3}, "space.patch_size: 3 does not divide image_size 28"),
        ({"num_heads": [2]}, "unknown key 'num_heads'"),
    ],
)
def test_bad_psvit_spaces_are_clear_errors(change, message):
    data = load_config("psvit-1d-fashion-mnist").space.to_dict()
    with pytest.raises(ConfigError, match=message):
        SearchSpace.from_dict({**data, **change})


def test_arch_validation_names_the_field():
    space = space_for("1d")
    good = space.largest()
    with pytest.raises(ConfigError, match=r"arch.stages\[0\].width: 20 is not a choice"):
        space.validate(PSViTArch((stage(20, 4.0, "layer", "layer"),) + good.stages[1:]))
    with pytest.raises(ConfigError, match=r"arch.stages\[2\].cells\[1\]: 'conv' is not a choice"):
        space.validate(PSViTArch(good.stages[:2] + (stage(48, 4.0, "layer", "conv"),)))
    with pytest.raises(ConfigError, match=r"arch.stages\[1\].cells: expected 2 cells"):
        space.validate(PSViTArch((good.stages[0], stage(32, 4.0, "layer"), good.stages[2])))
    with pytest.raises(ConfigError, match="expected 3 stages"):
        space.validate(PSViTArch(good.stages[:2]))


# -- exact counts -------------------------------------------------------------------------------
class _Op(torch.nn.Module):
    def __init__(self, op) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


@pytest.mark.parametrize(("op", "macs"), [
    (lambda x: F.conv1d(x, torch.ones(8, 4, 3), torch.ones(8), padding=1), 10 * (4 * 3 + 1) * 8),
    (lambda x: F.conv2d(x.view(1, 4, 2, 5), torch.ones(8, 4, 3, 3), torch.ones(8), stride=2, padding=1),
     1 * 3 * (4 * 9 + 1) * 8),
    (lambda x: F.linear(x, torch.ones(3, 10), torch.ones(3)), 4 * (10 + 1) * 3),
    (lambda x: x @ x.transpose(-1, -2), 4 * 10 * 4),
    (lambda x: F.max_pool1d(x, 3, 2, 1), 0),
    (lambda x: x.mean(dim=1), 0),
    (lambda x: x.softmax(dim=-1), 0),
    (lambda x: F.gelu(F.layer_norm(x, (10,))), 0),
], ids=["conv1d", "conv2d", "linear", "matmul", "max_pool1d", "mean", "softmax", "norm-gelu"])
def test_ptflops_counts_what_the_psvit_docstring_says(op, macs):
    """The counting convention the analytic model follows: linear layers, matmuls and convolutions
    (biases included), nothing for pooling, means, softmax, norms or activations."""
    counted, _ = get_model_complexity_info(_Op(op), (4, 10), as_strings=False, backend="aten",
                                           print_per_layer_stat=False, verbose=False)
    assert counted == macs


@pytest.mark.parametrize("name", ["psvit-1d-fashion-mnist", "psvit-2d-fashion-mnist"])
def test_macs_equal_ptflops_and_params_equal_the_model(name):
    """33 subnets per variant (random ones from no identity to nearly all, the extremes, all-layer)."""
    space = load_config(name).space
    archs = varied_archs(space, 30, seed=3)
    assert len({a.depth for a in archs}) > 10 and len({tuple(s.width for s in a.stages) for a in archs}) > 3
    assert_counts_exact(space, archs)


@pytest.mark.parametrize("name", ["psvit-1d-tiny", "psvit-2d-tiny"])
def test_tiny_largest_counts_equal_ptflops(name):
    space = load_config(name).space
    assert_counts_exact(space, [space.largest()])
    assert ptflops_macs(space.build_subnet(space.largest()), space) > 1.2e9


@pytest.mark.parametrize("pooling", POOLINGS)
def test_a_shared_pair_has_no_second_qk_and_costs_less_than_two_layers(pooling):
    space = space_for(pooling)
    base = space.smallest().stages
    pair = PSViTArch((stage(24, 4.0, "shared", "identity"),) + base[1:])
    two = PSViTArch((stage(24, 4.0, "layer", "layer"),) + base[1:])
    one = PSViTArch((stage(24, 4.0, "layer", "identity"),) + base[1:])
    state = space.build_subnet(pair).state_dict()
    assert "stages.0.0.attn.qkv.weight" in state and "stages.0.1.attn.v.weight" in state
    assert not any(k.startswith("stages.0.1.") and ("qkv" in k or ".q" in k or ".k" in k) for k in state)
    assert state["stages.0.0.attn.qkv.weight"].shape == (3 * 24, 24)
    macs = {a: count_macs(a, space) for a in (pair, two, one)}
    assert macs[one] < macs[pair] < macs[two]
    tokens = space.tokens(0)
    # The saving is exactly the q/k projection and q @ k^T of the second layer.
    assert macs[two] - macs[pair] == tokens * (24 + 1) * 2 * 24 + tokens * tokens * 24
    assert count_params(two, space) - count_params(pair, space) == 2 * 24 * 24 + 2 * 24


# -- supernet, entanglement, export -------------------------------------------------------------
@pytest.fixture(scope="module", params=POOLINGS)
def supernet(request, randomize):
    space = space_for(request.param)
    return space, randomize(create_supernet(space), seed=1).eval()


def test_extracted_subnets_give_the_supernets_logits(supernet):
    space, net = supernet
    assert_extracts_match(net, space, varied_archs(space, 8, seed=5))


def test_export_round_trip(supernet, tmp_path):
    space, net = supernet
    assert_export_round_trip(net, space, varied_archs(space, 3, seed=9)[1], tmp_path / "subnet")


def test_layer_and_first_of_pair_share_weights_and_pooling_is_entangled(supernet):
    space, _ = supernet
    net = create_supernet(space).train()
    arch = PSViTArch((stage(16, 2.0, "shared", "identity"), stage(24, 2.0, "identity", "identity"),
                      stage(32, 2.0, "identity", "layer")))
    net(images(space), arch).sum().backward()
    grads = {n: p.grad for n, p in net.named_parameters()}
    touched = {n for n, g in grads.items() if g is not None and g.abs().sum() > 0}
    assert "stages.0.0.layer.attn.qkv.weight" in touched and "stages.0.0.sharing.attn.v.weight" in touched
    assert "stages.2.1.layer.attn.qkv.weight" in touched and not any(n.startswith("stages.2.1.sharing") for n in touched)
    assert not any(n.startswith(("stages.0.1.", "stages.1.", "stages.2.0.")) for n in touched)
    # Only the leading (output width, input width) slice of each pooling layer moves.
    for s, (w_in, w_out) in enumerate(((16, 24), (24, 32))):
        conv = grads[f"pools.{s}.conv.weight"]
        assert conv[:w_out, :w_in].abs().sum() > 0
        assert conv[w_out:].abs().sum() == 0 and conv[:, w_in:].abs().sum() == 0
        assert grads[f"pools.{s}.conv.bias"][w_out:].abs().sum() == 0
        if space.pooling == "1d":
            cls = grads[f"pools.{s}.cls.weight"]
            assert cls[:w_out, :w_in].abs().sum() > 0 and cls[w_out:].abs().sum() == 0 and cls[:, w_in:].abs().sum() == 0
    assert grads["stages.0.0.layer.mlp.fc1.weight"][32:].abs().sum() == 0  # hidden 32 of 96
    assert ("cls_token" in touched) == (space.pooling == "1d")


# -- sampling and search within budget ----------------------------------------------------------
@pytest.mark.parametrize(("pooling", "kind"), [("1d", "macs"), ("2d", "params")])
def test_sampler_and_searches_stay_within_budget_and_never_narrow(pooling, kind):
    # Overlapping width lists: half of the 8 width combinations would narrow.
    overlapping = ["space.widths=[[32, 64], [48, 96], [64, 96]]", f"space.pooling={pooling}"]
    space = load_config("psvit-1d-fashion-mnist", overlapping).space
    sampled, searched = sample_and_search_within_budget(space, kind)
    assert {op for a in sampled for s in a.stages for op in s.cells} == set(OPS)
    assert len({tuple(s.width for s in a.stages) for a in sampled + searched}) > 3
    for arch in sampled + searched:
        widths = [s.width for s in arch.stages]
        assert widths == sorted(widths), arch
