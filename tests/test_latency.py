"""Latency tables: what the families time, how the table adds it up, its file, and latency as a budget
kind for the sampler and the searches. Tables here are synthetic (known sums); timings are benchmarks'."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
import torch
from latency_checks import synthetic_ms, synthetic_table

from focusformer import ConfigError, count_params
from focusformer.budget import Budget, parse_latencies, parse_latency
from focusformer.latency import LatencyTable, TimingSettings, build_table
from focusformer.latency.build import Timings, collect_probes, fit_calibration
from focusformer.latency.table import Calibration, KindScale
from focusformer.sampling.sampler import ArchSampler
from focusformer.search.evolution import EvolutionConfig, evolution_search
from focusformer.search.random_search import random_search
from focusformer.search.within_budget import sample_within_budget
from focusformer.spaces.psvit import PSViTArch
from focusformer.spaces.vitas import ViTASArch

FAMILIES = ["digits", "vitas-digits", "psvit-digits"]


def expected_keys(arch, space) -> list[tuple]:
    """The modules an arch is made of, written out from its fields (independently of the families' code)."""
    if isinstance(arch, PSViTArch):
        keys = [("psvit-base", *(s.width for s in arch.stages))]
        for stage_index, stage in enumerate(arch.stages):
            tokens = space.tokens(stage_index)
            keys += [(f"psvit-{op}", tokens, stage.width, int(stage.width * stage.mlp_ratio))
                     for op in stage.cells if op != "identity"]
        return keys
    if isinstance(arch, ViTASArch):
        patch, blocks = arch.patch_size, [(b.num_heads, b.head_dim, b.mlp_dim) for b in arch.blocks if b]
    else:
        patch = space.patch_size
        blocks = [(h, space.head_dim, arch.mlp_hidden_dim(i)) for i, h in enumerate(arch.num_heads)]
    e, tokens = arch.embed_dim, (space.image_size // patch) ** 2 + 1
    keys = [("vit-base", patch, e)]
    for heads, head_dim, hidden in blocks:
        keys += [("vit-attention", tokens, e, heads, head_dim), ("vit-mlp", tokens, e, hidden)]
    return keys


@pytest.mark.parametrize("name", FAMILIES)
def test_prediction_is_the_calibrated_sum_of_the_archs_modules(name, space_of):
    space = space_of(name)
    table = synthetic_table(space, scale=1.3, offset_ms=0.05)
    costs = table.cost_model(space)
    rng = np.random.default_rng(0)
    for arch in [space.smallest(), space.largest(), *(space.sample(rng) for _ in range(30))]:
        keys = expected_keys(arch, space)
        expected = 1.3 * sum(synthetic_ms(key) for key in keys) + 0.05
        grid = len(keys) * 2.0**-20  # each term is on a grid of 2^-20 ms
        assert table.predict(arch) == pytest.approx(expected, abs=grid)
        assert costs.count(space.encode(arch)[None])[0] == table.predict(arch)


@pytest.mark.parametrize("name", FAMILIES)
def test_probes_cover_the_dense_model_exactly(name, space_of):
    """An arch's probes hold its dense model's parameters, each once, and take the inputs its layers see."""
    space = space_of(name)
    rng = np.random.default_rng(1)
    for arch in [space.largest(), *(space.sample(rng) for _ in range(4))]:
        network, layers = space.arch_values(arch)
        probes = [space.timing_base(network)]
        probes += [p for i, values in enumerate(layers) for p in space.timing_layer(i, network, values)]
        assert [p.key for p in probes] == expected_keys(arch, space)
        assert sum(sum(t.numel() for t in p.build().parameters()) for p in probes) == count_params(arch, space)
        assert [p.input_shape for p in probes[1:]] == layer_inputs(space, arch)


def layer_inputs(space, arch) -> list[tuple[int, int]]:
    """(tokens, width) each layer of the dense model takes, read off a forward pass: ViT blocks'
    inputs (one per probe half); PSViT stages' widths and the token counts after each pooling."""
    model = space.build_subnet(arch).eval()
    shapes: list[tuple[int, int]] = []
    x = torch.zeros(1, space.in_chans, space.image_size, space.image_size)
    if isinstance(arch, PSViTArch):
        stage_tokens = [space.tokens(0)]
        for pool in model.pools:
            pool.register_forward_hook(lambda _, __, out: stage_tokens.append(out.shape[1]))
        with torch.no_grad():
            model(x)
        return [(tokens, stage.width) for tokens, stage in zip(stage_tokens, arch.stages)
                for op in stage.cells if op != "identity"]
    for block in model.blocks:
        block.register_forward_pre_hook(lambda _, args: shapes.extend([tuple(args[0].shape[1:])] * 2))
    with torch.no_grad():
        model(x)
    return shapes


def test_equal_modules_are_timed_once(space_of):
    """AutoFormer digits: 3 stems (one per embed dim), attention per (embed, heads), MLP per (embed, ratio)."""
    space = space_of("digits")
    keys = set(collect_probes(space))
    stems = {("vit-base", 2, e) for e in space.embed_dim}
    attention = {("vit-attention", 17, e, h, 8) for e, h in itertools.product(space.embed_dim, space.num_heads)}
    mlp = {("vit-mlp", 17, e, int(e * r)) for e, r in itertools.product(space.embed_dim, space.mlp_ratio)}
    assert keys == stems | attention | mlp


def test_file_round_trip_keeps_predictions_and_records_the_machine(space_of, tmp_path):
    space = space_of("psvit-digits")
    table = synthetic_table(space, scale=0.9, offset_ms=0.02)
    table.save(tmp_path / "lut.json")
    data = json.loads((tmp_path / "lut.json").read_text())
    assert data["device"]["type"] == "cpu" and data["device"]["name"] and data["torch_version"] == "test"
    assert data["timing"]["threads"] == 1 and data["timing"]["batch_size"] == 1
    loaded = LatencyTable.load(tmp_path / "lut.json")
    assert loaded.fingerprint == table.fingerprint
    rng = np.random.default_rng(2)
    for arch in (space.sample(rng) for _ in range(20)):
        assert loaded.predict(arch) == table.predict(arch)
    assert synthetic_table(space, scale=0.91).fingerprint != table.fingerprint


def test_a_table_for_another_space_is_refused(space_of):
    digits = space_of("digits")
    table = synthetic_table(digits)
    with pytest.raises(ConfigError, match=r"built for space 'digits'.*embed_dim differs \(\[24, 32, 48\] there, "
                                          r"\[24, 32\] here\)") as error:
        table.cost_model(dataclasses.replace(digits, embed_dim=(24, 32)))
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="family differs"):
        table.cost_model(space_of("vitas-digits"))


@pytest.mark.parametrize("text, fragment", [
    ("[]", "not a latency table"),
    ('{"measurements": [], "format_version": 7}', "unsupported format_version 7"),
    ("{bad json", "not a readable latency table"),
])
def test_unreadable_tables_are_one_line_errors(text, fragment, tmp_path):
    (tmp_path / "lut.json").write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        LatencyTable.load(tmp_path / "lut.json")


def test_a_table_missing_a_module_is_refused(space_of, tmp_path):
    space = space_of("digits")
    data = synthetic_table(space).to_dict()
    data["measurements"] = data["measurements"][1:]
    (tmp_path / "lut.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="no measurement for"):
        LatencyTable.load(tmp_path / "lut.json").cost_model(space)


def test_latency_budgets_parse_with_units():
    assert parse_latency("2.5ms") == Budget(2.5, "latency")
    assert parse_latency("800us").value == pytest.approx(0.8) and parse_latency("0.01s").value == pytest.approx(10)
    assert [b.label for b in parse_latencies("1ms, 2.5ms")] == ["1ms", "2.5ms"]
    assert str(parse_latency("2.5 ms")) == "2.5 ms"
    for text in ("2.5", "fast", "0ms", "-1ms"):
        with pytest.raises(ConfigError):
            parse_latency(text)
    with pytest.raises(ConfigError, match="needs a latency table"):
        Budget(2.5, "latency").cost_model(None)


@pytest.mark.parametrize("name", FAMILIES)
def test_sampler_and_searches_stay_within_latency_budgets(name, space_of):
    space = space_of(name)
    table = synthetic_table(space, scale=1.1, offset_ms=0.03)
    costs = table.cost_model(space)
    torch.manual_seed(0)
    sampler = ArchSampler(space)
    budgets = torch.as_tensor(np.linspace(costs.min_cost, costs.max_cost, 60))
    out = sampler.sample(budgets, generator=torch.Generator().manual_seed(1), kind="latency", costs=costs)
    archs = [space.decode(code) for code in out.codes.numpy()]
    assert all(table.predict(a) <= b + 1e-12 for a, b in zip(archs, budgets.tolist()))
    assert len(set(archs)) > 20  # conditioned on the budget: not one arch for all

    rng = np.random.default_rng(3)
    budget = Budget(float(np.mean([costs.min_cost, costs.max_cost])), "latency", table)
    drawn = [sample_within_budget(space, budget, rng) for _ in range(30)]
    assert all(table.predict(a) <= budget.value for a in drawn)
    seen = []

    def score(batch):
        seen.extend(batch)
        return [float(hash(a) % 997) for a in batch]

    config = EvolutionConfig(population=10, generations=3, parents=4, mutations=6, crossovers=6)
    evolution_search(space, budget, score, config, seed=0)
    random_search(space, budget, score, 20, seed=0)
    assert seen and all(table.predict(a) <= budget.value for a in seen)


@pytest.mark.parametrize("name", ["digits", "fashion-mnist", "vitas-digits", "psvit-digits"])
def test_budgets_at_the_ends_of_the_range_are_feasible(name, space_of):
    """Measured times are arbitrary floats; the table's sums are exact, so a budget of exactly the
    smallest (or largest) subnet's latency admits that subnet everywhere decisions are made."""
    space = space_of(name)
    rng = np.random.default_rng(7)
    measurements = {key: float(rng.uniform(0.01, 0.3)) for key in collect_probes(space)}
    table = dataclasses.replace(synthetic_table(space, scale=1.157, offset_ms=-0.091), measurements=measurements)
    costs = table.cost_model(space)
    sampler = ArchSampler(space)
    for value in (costs.min_cost, costs.max_cost):
        arch = sample_within_budget(space, Budget(value, "latency", table), rng)
        assert table.predict(arch) <= value
        out = sampler.sample(torch.tensor([value]), kind="latency", costs=costs)
        assert table.predict(space.decode(out.codes[0].numpy())) <= value
    cheapest = sample_within_budget(space, Budget(costs.min_cost, "latency", table), rng)
    assert table.predict(cheapest) == costs.min_cost


def test_calibration_fit():
    summed = [1.0, 2.0, 3.0, 4.0]
    fit = fit_calibration([{"m": s} for s in summed], [1.3 * s + 0.2 for s in summed])
    assert (fit.scale, fit.offset_ms) == (pytest.approx(1.3), pytest.approx(0.2)) and fit.kind_scales == ()
    assert fit.mape_fitted == pytest.approx(0, abs=1e-9) and fit.mape_summed > 10
    assert fit.mape_held_out == pytest.approx(0, abs=1e-9)
    flat = fit_calibration([{"m": 1.0}, {"m": 1.0}], [1.5, 1.7])  # no spread: a scale alone
    assert (flat.scale, flat.offset_ms) == (pytest.approx(1.6), 0.0) and flat.mape_held_out is None
    falling = fit_calibration([{"m": s} for s in (1.0, 2.0, 3.0)], [3.0, 2.0, 0.5])  # noise, not a line
    assert falling.offset_ms == 0.0 and falling.scale == pytest.approx(1.0)


def test_kinds_off_by_different_factors_get_their_own_scales():
    """Cells whose apart-timed cost is 30% too high next to MLPs timed right: one scale cannot fit
    both, and the per-kind fit recovers each factor (and is what the held-out error prefers)."""
    rng = np.random.default_rng(0)
    parts = [{"base": b, "cell": c, "mlp": m} for b, c, m in rng.uniform([0.1, 0.1, 0.1], [0.4, 2, 2], (20, 3))]
    measured = [0.9 * p["base"] + 0.7 * p["cell"] + 1.05 * p["mlp"] + 0.03 for p in parts]
    fit = fit_calibration(parts, measured)
    assert {k.kind: k.scale for k in fit.kind_scales} == {
        "base": pytest.approx(0.9, rel=1e-6), "cell": pytest.approx(0.7, rel=1e-6), "mlp": pytest.approx(1.05, rel=1e-6)}
    assert fit.mape_fitted == pytest.approx(0, abs=1e-6) and fit.mape_held_out < 1e-4
    line = fit_calibration([{"m": sum(p.values())} for p in parts], measured)
    assert line.mape_held_out > 1 and fit.scale == pytest.approx(line.scale)  # unseen kinds: the line's scale


def test_per_kind_scales_are_kept_only_where_they_predict_held_out_subnets_better():
    """Every kind off by the same factor plus noise: extra scales only fit the noise, so the single
    scale is kept; and too few subnets for the unknowns never try them."""
    rng = np.random.default_rng(1)
    parts = [dict(zip("abcde", rng.uniform(0.1, 1.0, 5))) for _ in range(12)]
    measured = [1.2 * sum(p.values()) * (1 + rng.normal(0, 0.05)) for p in parts]
    assert fit_calibration(parts, measured).kind_scales == ()
    exact = [0.5 * p["a"] + 2 * (p["b"] + p["c"] + p["d"] + p["e"]) for p in parts[:7]]
    assert fit_calibration(parts[:7], exact).kind_scales == ()  # 7 subnets < 5 scales + offset + 2


def test_a_fit_that_would_price_cheap_subnets_below_zero_falls_back_to_a_scale(space_of):
    """Calibration subnets all far above the space's cheapest: a line through them (here 3 x sum - 25)
    goes negative there, so the table keeps the median ratio alone and every prediction stays positive."""
    space = space_of("psvit-digits")
    plain = dataclasses.replace(synthetic_table(space), calibration=Calibration())
    sums = [10.0, 11.0, 12.0, 13.0]
    measured = [3 * x - 25 for x in sums]
    assert fit_calibration([{"m": x} for x in sums], measured).offset_ms == pytest.approx(-25)
    table = Timings(plain, [{"psvit-layer": x} for x in sums], measured).calibrated()
    assert table.calibration.offset_ms == 0 and table.calibration.scale == pytest.approx(np.median(
        [m / x for m, x in zip(measured, sums)]))
    assert table.cost_model(space).min_cost > 0


def test_a_table_predicts_with_its_kind_scales(space_of, tmp_path):
    space = space_of("psvit-digits")
    calibration = Calibration(1.1, 0.02, subnets=9, kind_scales=(KindScale("psvit-layer", 0.8),
                                                                 KindScale("psvit-shared", 1.4)))
    table = dataclasses.replace(synthetic_table(space), calibration=calibration)
    factor = {"psvit-layer": 0.8, "psvit-shared": 1.4}
    rng = np.random.default_rng(0)
    for arch in [space.largest(), *(space.sample(rng) for _ in range(20))]:
        keys = expected_keys(arch, space)
        expected = sum(factor.get(key[0], 1.1) * synthetic_ms(key) for key in keys) + 0.02
        assert table.predict(arch) == pytest.approx(expected, abs=len(keys) * 2.0**-20)
    again = LatencyTable.load(table.save(tmp_path / "lut.json"))
    assert again.calibration == calibration and again.predict(arch) == table.predict(arch)


def test_build_times_every_module_and_fits_a_calibration(space_of):
    """A real (tiny) build: one measurement per distinct module, all positive; no timing is asserted."""
    space = space_of("psvit-digits")
    table = build_table(space, TimingSettings("cpu", warmup=1, repeats=2), calibration_subnets=3)
    assert set(table.measurements) == set(collect_probes(space))
    assert all(math.isfinite(ms) and ms > 0 for ms in table.measurements.values())
    assert table.calibration.subnets == 3 and table.calibration.scale > 0
    assert table.cost_model(space).min_cost > 0


def test_chunks_are_brought_to_one_level(space_of, monkeypatch):
    """Timed in several chunks (a large space), each chunk's times are scaled by how the calibration
    subnets, timed with every chunk, ran: a machine twice as slow during chunk 2 changes nothing."""
    from focusformer.latency import build

    def weights(module):
        return sum(t.numel() for t in module.parameters())

    calls = []

    def fake_time_modules(modules, settings):  # every module's "time" is its size, times the call's level
        calls.append(len(modules))
        return [len(calls) * 1e-4 * weights(module) for module, _ in modules]

    monkeypatch.setattr(build, "time_modules", fake_time_modules)
    monkeypatch.setattr(build, "CHUNK_BYTES", 40_000)
    space = space_of("digits")
    table = build.build_table(space, TimingSettings("cpu"), calibration_subnets=4)
    assert len(calls) > 2  # several chunks
    probes = collect_probes(space)
    for key, ms in table.measurements.items():
        assert ms == pytest.approx(1e-4 * weights(probes[key].build()))
    assert table.calibration.subnets == 4
