"""benchmarks/bench_families.py on a one-epoch digits run: in-band draws and the spread of issue 24."""

from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path

import pytest

from focusformer.cli import train as train_cli
from focusformer.config import load_config

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_families.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_families", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "digits"
    assert train_cli.main(["--output", str(run), "--epochs", "1", "--sampler", "uniform", "--no-progress"]) == 0
    return run


def test_inband_spread_reports_every_candidate(bench, run, tmp_path, capsys):
    largest = load_config("digits").space.cost_model("macs").max_cost  # 2.02M MACs
    out = tmp_path / "families.json"
    groups = bench.main(["--runs", f"a={run},{run}", f"b={run},{run}", "--budgets", "0.6M,1.2M,5M", "--draws", "inband",
                         "--spread", "--candidates", "6", "--json", str(out)])
    printed = capsys.readouterr().out
    assert json.loads(out.read_text()) == groups
    result = groups["a"][0]
    assert result["draws"] == "inband"
    for label, budget in (("600K", 0.6e6), ("1.2M", 1.2e6), ("5M", largest)):
        entry = result["budgets"][label]
        low, high = entry["band_macs"]
        # The band is the run's focus.band below the budget; a budget above the largest aims at the largest.
        assert entry["band"] == 0.1 and high == budget and low == pytest.approx(0.9 * budget)
        candidates = entry["candidates"]
        assert len(candidates) == entry["scored"] == entry["in_band"] == 6
        assert len({c["arch"] for c in candidates}) == 6
        assert all(low <= c["macs"] <= high for c in candidates)
        tests = [c["test_top1"] for c in candidates]
        best = entry["best"]
        assert best["best_test_top1"] == max(tests)
        assert best["median_test_top1"] == statistics.median(tests)
        assert best["spread"] == pytest.approx(max(tests) - statistics.median(tests)) and best["spread"] >= 0
        # The search's pick is the first best on search-val, reported with its own test top-1.
        pick = max(candidates, key=lambda c: c["val_top1"])
        assert (best["arch"], best["test_top1"]) == (pick["arch"], pick["test_top1"])
        assert f"median {best['median_test_top1']:.2f}, spread {best['spread']:.2f}" in printed
    def timeless(r):
        return {label: {k: v for k, v in e.items() if k != "seconds"} for label, e in r["budgets"].items()}

    assert timeless(groups["a"][1]) == timeless(groups["b"][0]) == timeless(result)  # seeded draws: same run, same report
    assert "a spread" in printed and "b median test" in printed
    assert "  5M spread: +0.00 ± 0.00 (+0.00, +0.00)" in printed  # paired by seed, b - a


def test_within_draws_stay_within_budget(bench, run, capsys):
    groups = bench.main(["--runs", f"a={run}", "--budgets", "1M", "--spread", "--candidates", "5"])
    entry = groups["a"][0]["budgets"]["1M"]
    assert "band" not in entry and "in_band" not in entry
    assert len(entry["candidates"]) == 5 and all(c["macs"] <= 1e6 for c in entry["candidates"])
    assert entry["best"]["spread"] == pytest.approx(
        max(c["test_top1"] for c in entry["candidates"]) - statistics.median(c["test_top1"] for c in entry["candidates"]))


def test_band_needs_inband_draws(bench, run, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--runs", f"a={run}", "--band", "0.2"])
    assert exc.value.code == 2 and "--band applies to --draws inband only" in capsys.readouterr().err
