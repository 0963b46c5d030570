"""The AutoFormer family after the space-family redesign gives what the code before it gave.

``tests/pins/autoformer_before_families.json`` was written by
``tests/pins/make_pins_before_families.py`` on commit 57ca980 (before the redesign): MACs,
params, uniform samples, in-budget samples, the untrained sampler's draws, an evolution
search and three short training runs. Any drift here means the redesign changed behaviour.

The focus sampler's training run is no longer compared: issue #9 changed the focus algorithm
on purpose (grouped rewards, a tau gate, best-of-k, exploration in band). Uniform and
sandwich training, which #9 left alone, still match the pins exactly.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from focusformer.budget import Budget
from focusformer.config import load_config
from focusformer.sampling.sampler import ArchSampler
from focusformer.search.evolution import EvolutionConfig, evolution_search
from focusformer.search.within_budget import sample_within_budget
from focusformer.spaces.counts import count_macs, count_params

PINS = json.loads((Path(__file__).parent / "pins" / "autoformer_before_families.json").read_text())
SPACES = sorted(PINS["spaces"])


@pytest.mark.parametrize("name", SPACES)
def test_counts_and_uniform_samples_are_unchanged(name):
    space, pins = load_config(name).space, PINS["spaces"][name]
    assert [space.sample(np.random.default_rng(seed)).to_dict() for seed in range(5)] == pins["samples"]
    for arch_dict, macs, params in pins["counts"]:
        arch = space.arch_from_dict(arch_dict)
        assert (count_macs(arch, space), count_params(arch, space)) == (macs, params)


@pytest.mark.parametrize("name", SPACES)
def test_in_budget_samples_and_evolution_are_unchanged(name):
    space, pins = load_config(name).space, PINS["spaces"][name]
    budget = Budget(pins["within_budget"]["budget"])
    drawn = [sample_within_budget(space, budget, np.random.default_rng(s)).to_dict() for s in range(3)]
    assert drawn == pins["within_budget"]["archs"]

    def score(archs):
        return [float(a.embed_dim * 0.01 + sum(a.num_heads) * 0.1 - sum(a.mlp_ratio) * 0.05) for a in archs]

    config = EvolutionConfig(population=10, generations=3, parents=4, mutations=5, crossovers=5)
    outcome = evolution_search(space, budget, score, config, seed=7)
    expected = pins["evolution"]
    assert (outcome.best.to_dict(), outcome.best_score, outcome.scored) == \
        (expected["best"], pytest.approx(expected["score"]), expected["scored"])


@pytest.mark.parametrize("name", SPACES)
def test_untrained_sampler_draws_are_unchanged(name):
    space, pins = load_config(name).space, PINS["spaces"][name]["sampler"]
    torch.manual_seed(0)
    sampler = ArchSampler(space)
    out = sampler.sample(torch.tensor(pins["budgets"], dtype=torch.float64),
                         generator=torch.Generator().manual_seed(3))
    assert out.codes.tolist() == pins["codes"]
    torch.testing.assert_close(out.log_prob, torch.tensor(pins["log_prob"]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("sampler", ["uniform", "sandwich"])
def test_short_training_runs_are_unchanged(sampler, tmp_path):
    """``focusformer-train --epochs 6 --sampler S`` on digits: same losses and same final top-1 (the pins'
    sandwich sampler is now uniform with ``--sandwich``: the same steps)."""
    pins = PINS["training"]["runs"][sampler]
    run = tmp_path / sampler
    flags = ["--sampler", "uniform", *(["--sandwich"] if sampler == "sandwich" else [])]
    # No reward images held out: the split of the code the pins come from (search-val only).
    subprocess.run([sys.executable, "-m", "focusformer.cli.train", "--epochs", "6", *flags,
                    "--set", "data.reward_size=0", "--output", str(run), "--no-progress"], check=True,
                   capture_output=True)
    rows = list(csv.DictReader((run / "summary.csv").open()))
    np.testing.assert_allclose([float(r["train_loss"]) for r in rows], pins["train_loss"], rtol=1e-5)
    final = json.loads((run / "final.json").read_text())
    for which, expected in pins["final"].items():
        assert final[which]["test_top1"] == pytest.approx(expected["test_top1"], abs=1e-9)
        assert final[which]["search_val_top1"] == pytest.approx(expected["search_val_top1"], abs=1e-9)
