"""``space.min_depth`` (ViTAS, PSViT): the first layers are never identities, so no subnet is an
all-identity network that predicts one class."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from focusformer import count_macs
from focusformer.budget import Budget
from focusformer.errors import ConfigError
from focusformer.search.within_budget import sample_within_budget
from focusformer.spaces import PSViTArch, ViTASArch


def _skipped(space, arch) -> list[bool]:
    """Per layer (ViTAS) or cell (PSViT), whether it is an identity."""
    if isinstance(arch, ViTASArch):
        return [b is None for b in arch.blocks]
    return [op == "identity" for stage in arch.stages for op in stage.cells]


@pytest.fixture(params=["vitas-fashion-mnist", "psvit-1d-fashion-mnist", "vitas-digits-2"])
def space(request, space_of):
    if request.param == "vitas-digits-2":
        return dataclasses.replace(space_of("vitas-digits"), min_depth=2)
    return space_of(request.param)


def test_defaults(space_of):
    assert space_of("vitas-fashion-mnist").min_depth == 1
    assert space_of("psvit-1d-fashion-mnist").min_depth == 1
    assert space_of("psvit-2d-fashion-mnist").min_depth == 0  # its all-identity net is still a convnet


def test_no_subnet_skips_the_first_layers(space):
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(200)] + [space.sample(rng, identity_prob=1.0) for _ in range(50)]
    macs = space.cost_model("macs")
    archs += [sample_within_budget(space, Budget(b), rng) for b in np.geomspace(macs.min_cost, macs.max_cost, 30)]
    for arch in archs:
        assert not any(_skipped(space, arch)[:space.min_depth]), arch
    # every other layer still can be an identity
    assert all(any(_skipped(space, a)[i] for a in archs) for i in range(space.min_depth, len(_skipped(space, archs[0]))))


def test_smallest_is_the_cheapest_arch_with_min_depth_blocks(space):
    smallest = space.smallest()
    skipped = _skipped(space, smallest)
    assert not any(skipped[:space.min_depth]) and all(skipped[space.min_depth:])
    assert count_macs(smallest, space) == space.cost_model("macs").min_cost


def test_an_identity_in_the_first_layers_is_refused(space):
    arch = space.smallest()
    if isinstance(arch, ViTASArch):
        bad = ViTASArch(arch.patch_size, arch.embed_dim, (None,) * len(arch.blocks))
    else:
        stages = [dataclasses.replace(s, cells=("identity",) * len(s.cells)) for s in arch.stages]
        bad = PSViTArch(tuple(stages))
    with pytest.raises(ConfigError, match=f"min_depth {space.min_depth}"):
        space.validate(bad)
    dataclasses.replace(space, min_depth=0).validate(bad)  # an arch of the space without the floor


@pytest.mark.parametrize("min_depth", [-1, 100])
def test_out_of_range_is_refused(space, min_depth):
    with pytest.raises(ConfigError, match="space.min_depth"):
        dataclasses.replace(space, min_depth=min_depth)
