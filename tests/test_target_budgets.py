"""Target budgets (``--target-budgets``) train on every shipped family under every sampler.

On spaces with identity layers (ViTAS, PSViT) uniform draws for a budget make each layer an
identity with the probability calibrated for it; on spaces without (AutoFormer) they are uniform
within the budget's band. Both place the trained subnets at the budgets users deploy at.
"""

from __future__ import annotations

import numpy as np
import pytest

from focusformer.config import UNIFORM_TARGET_BAND, load_config
from focusformer.sampling.strategies import UniformStrategy
from focusformer.sampling.training_budgets import TargetBudgets
from focusformer.spaces.counts import count_macs
from focusformer.training.trainer import Trainer

FAMILIES = {"digits": "300K,500K", "vitas-digits": "250K,400K", "psvit-digits": "300K,600K"}
#: Each sampler, and the sandwich rule (one switch for every sampler: uniform covers it).
SAMPLERS = [("focus", False), ("uniform", False), ("uniform", True), ("attentive", False)]
# One epoch of 4 steps; the focus sampler measures and learns every 2 steps.
SHORT = ["train.epochs=1", "train.batch_size=256", "train.eval_batch_size=180"]
FOCUS = ["focus.update_every=2", "focus.eval_candidates=4", "focus.eval_images=64", "focus.min_tau=-1",
         "focus.stable_updates=1", "focus.warmup_fraction=0", "focus.policy_steps=2"]


def recording_picks(trainer: Trainer) -> list:
    """The subnets the trainer's strategy picks each step (the sandwich's extremes not among them)."""
    picks, pick = [], trainer.strategy.archs_for_step

    def recorded(step, minibatch_loss=None):
        archs = pick(step, minibatch_loss)
        picks.extend(archs)
        return archs

    trainer.strategy.archs_for_step = recorded
    return picks


@pytest.mark.parametrize("config", sorted(FAMILIES))
@pytest.mark.parametrize("sampler, sandwich", SAMPLERS, ids=["focus", "uniform", "sandwich", "attentive"])
@pytest.mark.parametrize("with_budgets", [False, True], ids=["no-budgets", "budgets"])
def test_every_family_trains_with_and_without_target_budgets(config, sampler, sandwich, with_budgets, tmp_path):
    """Every sampler trains every family with and without targets; with them, its picks aim at the
    targets. On a space without identity layers every pick lies in a target's band. On one with
    them the band is a preference, not a guarantee (coarse per-layer choices can leave no
    completion inside it), so: attentive's picks are within the largest target, uniform draws use
    the identity probability calibrated for each target, and focus's budgets are the targets."""
    overrides = [*SHORT, f"train.sampler={sampler}", f"train.sandwich={str(sandwich).lower()}",
                 *(FOCUS if sampler == "focus" else [])]
    if with_budgets:
        overrides.append(f"train.target_budgets='{FAMILIES[config]}'")
    trainer = Trainer(load_config(config, overrides), tmp_path, progress=False)
    picks = recording_picks(trainer)
    history = trainer.fit()
    assert trainer.step == 4 and np.isfinite(history[-1].train_loss) and len(picks) == 4
    if sampler == "focus":
        assert trainer.strategy.policy_updates >= 1  # the learner ran with the budgets
    if not with_budgets:
        return
    space = trainer.config.space
    targets = tuple(float(b) for b in trainer.config.train.budgets)
    macs = [count_macs(arch, space) for arch in picks]
    if space.family == "autoformer":
        assert all(any((1 - UNIFORM_TARGET_BAND) * b <= m <= b for b in targets) for m in macs), macs
    elif sampler == "attentive":
        assert max(macs) <= max(targets)
    elif sampler == "uniform":
        assert [c.budget for c in trainer.strategy.draws.calibrations] == list(targets)
    else:
        assert trainer.strategy.budgets == TargetBudgets(targets)
        assert [c.budget for c in trainer.strategy.uniform.calibrations] == list(targets)


def test_uniform_draws_for_a_budget_fall_in_its_band_on_a_space_without_identity_layers():
    space = load_config("digits").space
    budgets = (300e3, 500e3)
    strategy = UniformStrategy(space, seed=0, budgets=budgets)
    drawn = {b: [] for b in budgets}
    for step in range(200):
        (arch,) = strategy.archs_for_step(step)
        macs = count_macs(arch, space)
        budget = next(b for b in budgets if (1 - UNIFORM_TARGET_BAND) * b <= macs <= b)
        drawn[budget].append(arch)
    assert all(len(archs) > 60 and len(set(archs)) > 5 for archs in drawn.values())  # both budgets, varied archs


def test_a_runs_target_band_is_its_samplers():
    assert load_config("digits", ["train.sampler=uniform"]).target_band == UNIFORM_TARGET_BAND
    assert load_config("digits", ["train.sampler=focus", "focus.band=0.2"]).target_band == 0.2
    assert load_config("digits", ["train.sampler=attentive", "attentive.band=0.3"]).target_band == 0.3
