"""Pins of the AutoFormer family computed by the code before the space-family redesign (commit 57ca980)."""
import json
import sys

import numpy as np
import torch

from focusformer.budget import Budget
from focusformer.config import load_config
from focusformer.sampling.sampler import ArchSampler
from focusformer.search.evolution import EvolutionConfig, evolution_search
from focusformer.search.within_budget import sample_within_budget
from focusformer.spaces.counts import count_macs, count_params

pins = {"commit": "57ca980", "spaces": {}}
for name in ["digits", "fashion-mnist", "cifar100", "autoformer-tiny", "autoformer-small", "autoformer-base"]:
    space = load_config(name).space
    entry = {}
    archs = [space.sample(np.random.default_rng(seed)) for seed in range(5)] + [space.largest(), space.smallest()]
    entry["samples"] = [a.to_dict() for a in archs[:5]]
    entry["counts"] = [[a.to_dict(), count_macs(a, space), count_params(a, space)] for a in archs]
    lo, hi = count_macs(space.smallest(), space), count_macs(space.largest(), space)
    mid = lo + 0.4 * (hi - lo)
    entry["within_budget"] = {"budget": mid, "archs": [sample_within_budget(space, Budget(mid), np.random.default_rng(s)).to_dict() for s in range(3)]}
    torch.manual_seed(0)
    sampler = ArchSampler(space)
    out = sampler.sample(torch.tensor([mid, hi, lo + 0.1 * (hi - lo)], dtype=torch.float64), generator=torch.Generator().manual_seed(3))
    entry["sampler"] = {"budgets": [mid, hi, lo + 0.1 * (hi - lo)], "codes": out.codes.tolist(),
                        "log_prob": out.log_prob.tolist()}
    score = lambda archs: [float(a.embed_dim * 0.01 + sum(a.num_heads) * 0.1 - sum(a.mlp_ratio) * 0.05) for a in archs]
    res = evolution_search(space, Budget(mid), score, EvolutionConfig(population=10, generations=3, parents=4, mutations=5, crossovers=5), seed=7)
    entry["evolution"] = {"best": res.best.to_dict(), "score": res.best_score, "scored": res.scored}
    pins["spaces"][name] = entry
json.dump(pins, open(sys.argv[1], "w"), indent=1)
print("ok")
