"""benchmarks/bench_update_share.py: which training steps reach the largest subnet's weights."""

from __future__ import annotations

import pytest
from benchmark_modules import benchmark_module

from focusformer.config import load_config
from focusformer.sampling.strategies import build_strategy


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("bench_update_share") as module:
        yield module


def test_a_sandwich_step_reaches_every_weight_of_the_largest_subnet(bench):
    result = bench.measure("sandwich", "vitas-digits", ["train.sampler=sandwich"], steps=5, images=2)
    assert result.share == 1.0 and result.least == 1.0
    assert all(kind.share == 1.0 for kind in result.kinds)


def test_a_private_class_token_is_reached_in_the_steps_of_its_patch_size_up_to_their_width(bench):
    overrides = ["train.sampler=uniform"]
    steps = 60
    result = bench.measure("uniform", "vitas-digits", overrides, steps=steps, images=2)

    config = load_config("vitas-digits", overrides)
    strategy = build_strategy(config, total_steps=steps, score=None)
    largest = config.space.largest()
    drawn = [strategy.archs_for_step(step)[0] for step in range(steps)]
    # a class token channel is trained when the step's patch size is the largest subnet's and
    # its embed dim reaches that channel (widths are leading slices)
    per_channel = [sum(a.patch_size == largest.patch_size and a.embed_dim > c for a in drawn) / steps
                   for c in range(largest.embed_dim)]
    expected = sum(per_channel) / len(per_channel)
    assert 0 < expected < 1

    kinds = {kind.kind: kind.share for kind in result.kinds}
    assert kinds["cls_token"] == pytest.approx(expected)
    # a block's weights are reached in some steps, not all (identities and narrower widths skip them)
    assert 0 < kinds["mlp.fc1"] < 1


def test_parameter_kinds_drop_indices_and_weight_or_bias(bench):
    assert bench.parameter_kind("blocks.3.attn.qkv.weight") == "attn.qkv"
    assert bench.parameter_kind("blocks.0.attn.proj.bias") == "attn.proj"
    assert bench.parameter_kind("patch_embed.4.proj.weight") == "patch_embed.proj"
    assert bench.parameter_kind("cls_token.7") == "cls_token"
    assert bench.parameter_kind("head.weight") == "head"


def test_bilateral_sharing_reaches_both_ends_of_a_weight(bench):
    left = bench.measure("left", "vitas-digits", ["train.sampler=uniform"], steps=20, images=2)
    both = bench.measure("bilateral", "vitas-digits", ["train.sampler=uniform", "space.weight_sharing=bilateral"],
                         steps=20, images=2)
    # the same draws; a narrow subnet's right side trains the trailing channels, so more are reached
    assert both.share > left.share
