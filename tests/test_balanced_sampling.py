"""``focus.balanced``: network-wide decisions the policy does not steer (ViTAS's patch size)."""

from __future__ import annotations

import pytest
import torch

from focusformer.config import load_config
from focusformer.errors import ConfigError
from focusformer.sampling.sampler import ArchSampler, reinforce_step
from focusformer.spaces.counts import count_macs

PATCH_SLOT = 0  # vitas-fashion-mnist: patch_size (4, 7), then embed_dim, then the layers


@pytest.fixture(scope="module")
def space():
    return load_config("vitas-fashion-mnist").space


def biased_towards_patch_4(space, balanced=()) -> ArchSampler:
    """A policy that, left to itself, always picks patch 4."""
    torch.manual_seed(0)
    sampler = ArchSampler(space, balanced=balanced)
    with torch.no_grad():
        sampler.heads[sampler._head_of_slot[PATCH_SLOT]].bias.copy_(torch.tensor([10.0, -10.0]))
    return sampler


def patch_4_share(out) -> float:
    return float((out.codes[:, PATCH_SLOT] == 0).float().mean())


def test_a_balanced_decision_follows_uniform_draws_not_the_policy(space):
    budgets = torch.full((4000,), 8e6, dtype=torch.float64)
    steered = biased_towards_patch_4(space).sample(budgets, generator=torch.Generator().manual_seed(1))
    balanced = biased_towards_patch_4(space, ("patch_size",))
    drawn = balanced.sample(budgets, generator=torch.Generator().manual_seed(1))
    uniform = balanced.sample(budgets, generator=torch.Generator().manual_seed(2), uniform=True)
    assert patch_4_share(steered) > 0.99
    # Both patch sizes reach the 8M band; the balanced share matches uniform in-band draws'.
    assert 0.3 < patch_4_share(uniform) < 0.7
    assert patch_4_share(drawn) == pytest.approx(patch_4_share(uniform), abs=0.04)
    for code, macs in zip(drawn.codes[:200].numpy(), drawn.macs[:200].tolist()):
        assert macs == count_macs(space.decode(code), space) <= 8e6


def test_the_policy_still_decides_the_rest(space):
    """The embed dim, not balanced, follows a biased head as before."""
    sampler = ArchSampler(space, balanced=("patch_size",))
    with torch.no_grad():
        sampler.heads[sampler._head_of_slot[1]].bias.copy_(torch.tensor([-10.0, -10.0, 10.0]))
    out = sampler.sample(torch.full((500,), 30e6, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    assert float((out.codes[:, 1] == 2).float().mean()) > 0.95


def test_a_group_shares_its_balanced_draw(space):
    sampler = ArchSampler(space, balanced=("patch_size",))
    budgets = torch.linspace(3e6, 30e6, 64, dtype=torch.float64).repeat_interleave(8)
    out = sampler.sample(budgets, generator=torch.Generator().manual_seed(0), group=8)
    patches = out.codes[:, PATCH_SLOT].view(-1, 8)
    assert (patches == patches[:, :1]).all()
    assert 0 < float((patches[:, 0] == 0).float().mean()) < 1  # groups differ from one another
    assert (out.macs <= budgets).all()


@pytest.mark.parametrize("balanced", [(), ("patch_size",)])
def test_the_policy_gradient_never_reaches_a_balanced_decision(space, balanced):
    torch.manual_seed(0)
    sampler = ArchSampler(space, balanced=balanced)
    optimizer = torch.optim.SGD(sampler.parameters(), lr=1.0)
    head = sampler.heads[sampler._head_of_slot[PATCH_SLOT]]
    before = head.bias.detach().clone()
    reward = lambda codes: (codes[:, PATCH_SLOT] == 1).float() + 0.01 * codes[:, 1]  # noqa: E731  patch 7
    reinforce_step(sampler, optimizer, reward, torch.full((8,), 8e6, dtype=torch.float64), group=8,
                   entropy_weight=0.05, generator=torch.Generator().manual_seed(0))
    moved = not torch.equal(head.bias.detach(), before)
    assert moved == (not balanced)  # the same reward moves an unbalanced policy's patch head


def test_an_unknown_decision_is_a_config_error(space):
    with pytest.raises(ConfigError, match=r"focus.balanced: 'depth' is not a network-wide decision.*patch_size"):
        load_config("vitas-fashion-mnist", overrides=["focus.balanced=[depth]"])
    with pytest.raises(ConfigError, match="focus.balanced"):
        ArchSampler(space, balanced=("heads[0]",))
    assert load_config("vitas-fashion-mnist", overrides=["focus.balanced=[patch_size]"]).focus.balanced \
        == ("patch_size",)
