"""Checks every search-space family's tests run alike (tests/test_<family>.py, test_<family>_cli.py):
exact counts, supernet vs export, sampling and search within budget, specialize and search."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ptflops import get_model_complexity_info

from focusformer import count_macs, count_params, load_subnet
from focusformer.budget import Budget
from focusformer.cli import search as search_cli
from focusformer.cli import specialize as specialize_cli
from focusformer.export import save_subnet
from focusformer.sampling.sampler import ArchSampler
from focusformer.search.evolution import EvolutionConfig, evolution_search
from focusformer.search.within_budget import sample_within_budget
from focusformer.spaces import SearchSpace
from focusformer.training.checkpoint import load_supernet
from focusformer.training.trainer import Trainer


def images(space: SearchSpace, batch: int = 3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, space.in_chans, space.image_size, space.image_size, generator=gen)


def ptflops_macs(model: torch.nn.Module, space: SearchSpace) -> int:
    macs, _ = get_model_complexity_info(model.eval(), (space.in_chans, space.image_size, space.image_size),
                                        as_strings=False, backend="aten", print_per_layer_stat=False, verbose=False)
    return int(macs)


def assert_counts_exact(space: SearchSpace, archs: list[Any]) -> None:
    """MACs equal ptflops' on the exported model, params its parameter count, the cost table agrees."""
    table = space.cost_model("macs")
    for arch in archs:
        model = space.build_subnet(arch)
        assert count_macs(arch, space) == ptflops_macs(model, space), arch
        assert count_params(arch, space) == sum(p.numel() for p in model.parameters()), arch
        assert table.count(space.encode(arch)[None])[0] == count_macs(arch, space)


def assert_extracts_match(supernet: torch.nn.Module, space: SearchSpace, archs: list[Any]) -> None:
    x = images(space)
    with torch.no_grad():
        for arch in archs:
            torch.testing.assert_close(supernet.extract(arch)(x), supernet(x, arch), atol=1e-5, rtol=0)


def assert_export_round_trip(supernet: torch.nn.Module, space: SearchSpace, arch: Any, directory: Path) -> None:
    save_subnet(supernet.extract(arch), directory)
    loaded = load_subnet(directory)
    assert loaded.arch == arch and loaded.space == space
    x = images(space)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), supernet(x, arch), atol=1e-5, rtol=0)


def sample_and_search_within_budget(space: SearchSpace, kind: str) -> tuple[list[Any], list[Any]]:
    """Sampler samples for 200 budgets, ``sample_within_budget`` for 20 and one evolution search:
    asserts each is within its budget and the search scores no arch twice. Returns the sampler's
    archs and every other arch seen, for family-specific checks."""
    torch.manual_seed(0)
    sampler = ArchSampler(space)
    bounds = sampler.bounds[kind]
    budgets = torch.as_tensor(np.geomspace(bounds.min_cost, bounds.max_cost, 200))
    count = count_macs if kind == "macs" else count_params
    out = sampler.sample(budgets, generator=torch.Generator().manual_seed(1), kind=kind)
    sampled = [space.decode(code) for code in out.codes.numpy()]
    assert all(count(a, space) <= b for a, b in zip(sampled, budgets.tolist()))
    rng = np.random.default_rng(2)
    searched = []
    for budget in np.geomspace(bounds.min_cost, bounds.max_cost, 20):
        searched.append(sample_within_budget(space, Budget(budget, kind), rng))
        assert count(searched[-1], space) <= budget
    budget = Budget(float(np.sqrt(bounds.min_cost * bounds.max_cost)), kind)
    seen: list[Any] = []

    def score(batch):
        seen.extend(batch)
        return [float(count_macs(a, space) % 997) for a in batch]

    config = EvolutionConfig(population=12, generations=4, parents=4, mutations=6, crossovers=6)
    outcome = evolution_search(space, budget, score, config, seed=0)
    assert all(count(a, space) <= budget.value for a in seen) and len(set(seen)) == len(seen) == outcome.scored
    return sampled, searched + seen


def specialize_and_search(run: Path, space: SearchSpace, export_dir: Path, capsys) -> tuple[Any, Any]:
    """``focusformer-specialize`` (with ``--export``) and ``focusformer-search`` at 300K MACs on a
    trained run: both within budget, the export gives the supernet's logits. Returns both archs."""
    assert specialize_cli.main(["--checkpoint", str(run), "--budget", "300K", "--json",
                                "--candidates", "8", "--export", str(export_dir)]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    arch = space.arch_from_dict(record["arch"])
    assert record["macs"] == count_macs(arch, space) <= 300e3

    supernet = load_supernet(run)
    x = images(space, batch=4)
    with torch.no_grad():
        torch.testing.assert_close(load_subnet(export_dir)(x), supernet(x, arch), atol=1e-5, rtol=0)

    assert search_cli.main(["--checkpoint", str(run), "--budget", "300K", "--json", "--population", "8",
                            "--generations", "2", "--parents", "3", "--mutations", "4", "--crossovers", "4"]) == 0
    (found,) = json.loads(capsys.readouterr().out)
    assert found["macs"] <= 300e3
    return arch, space.arch_from_dict(found["arch"])


def assert_resumes_exactly(config: Any, tmp_path: Path) -> Path:
    """Training ``config`` uninterrupted and stopped after epoch 1 then resumed gives identical
    weights; returns the uninterrupted run's directory."""
    whole = Trainer(config, tmp_path / "whole", progress=False)
    whole.fit()
    Trainer(config, tmp_path / "split", progress=False).fit(until_epoch=1)
    resumed = Trainer.resume(tmp_path / "split", progress=False)
    resumed.fit()
    expected = whole.network.state_dict()
    for name, tensor in resumed.network.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    return tmp_path / "whole"
