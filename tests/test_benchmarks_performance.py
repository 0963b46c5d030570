"""The performance benchmarks run (on CPU, tiny settings) and print their figures.

Each script runs once through its ``main(argv)`` with the cheapest settings it takes: its
machine header comes first, its ``target:`` line is printed with the figure it measured, and
``--json`` saves the same figures.
"""

from __future__ import annotations

import json
import math
import shlex
import sys

import numpy as np
import pytest
import torch

from benchmarks.lib.output import write_json
from benchmarks.performance import (
    band_reach,
    ddp,
    focus_overhead,
    gpu,
    latency,
    macs,
    psvit,
    search_overhead,
    throughput,
)
from focusformer.config import load_config
from focusformer.latency import device_name
from focusformer.sampling.sampler import ArchSampler
from focusformer.spaces.counts import count_macs
from focusformer.training.trainer import Trainer


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the timed loops are tiny, and the machine may be shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(module, argv: list[str], tmp_path, capsys) -> tuple[dict, dict, str, str]:
    """``module.main(argv + --json)``: its report, the JSON it saved, all it printed, its target line."""
    out = tmp_path / "x.json"
    report = module.main([*argv, "--json", str(out)])
    printed = capsys.readouterr().out
    assert printed.startswith("CPUs: "), "the machine header comes first"
    # The processor and its kernels' instruction set: what a bit-identical rerun must match.
    assert f"device: cpu ({device_name('cpu')}, " in printed
    assert f"kernels {torch.backends.cpu.get_cpu_capability()})" in printed
    targets = [line for line in printed.splitlines() if line.startswith("target:")]
    assert len(targets) == 1, printed
    saved = json.loads(out.read_text())
    assert saved["target"] == json.loads(json.dumps(report["target"]))
    argv = [*argv, "--json", str(out)]  # the command line printed and saved is the one that ran
    assert f"command: python -m {module.__name__} {shlex.join(argv)}\n" in printed and saved["argv"] == argv
    return report, saved, printed, targets[0]


def positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


def test_macs(tmp_path, capsys):
    _, saved, _, target = run(macs, ["--spaces", "digits", "--archs", "2", "--loop-archs", "2",
                                          "--batch-archs", "2"], tmp_path, capsys)
    (result,) = saved["results"]
    assert result["space"] == "digits" and result["archs_checked"] == 2
    # The analytic counts equal ptflops's on every arch checked, and so do the parameter counts.
    assert result["macs_equal_all"] and result["max_rel_diff"] == 0.0
    assert result["params_equal_all"] and result["batch_matches_loop"]
    assert all(positive(r) for r in result["ratios"].values())
    lowest = saved["target"]["lowest_loop_vs_ptflops"]
    assert lowest == result["ratios"]["loop_vs_ptflops"]
    assert "equal to ptflops's MACs on every arch checked: yes (2 archs" in target
    assert target.endswith(f"{lowest:,.0f}x") and ">= 1000x ptflops" in target


def test_throughput(tmp_path, capsys):
    _, saved, _, target = run(throughput, ["--spaces", "digits", "--device", "cpu", "--batch-size", "4",
                                                "--warmup", "0", "--steps", "1", "--repeats", "1"], tmp_path, capsys)
    results = saved["results"]
    assert [r["subnet"] for r in results] == ["largest", "middle", "smallest"]
    assert all(positive(r["first_images_per_s"]) and positive(r["second_images_per_s"]) for r in results)
    lowest = min(r["ratio_of_medians"] for r in results)
    assert positive(lowest) and saved["target"]["lowest_ratio_of_medians"] == lowest
    assert target.startswith("target: supernet/dense >= 0.9 ") and target.endswith(f"{lowest:.3f}")


def test_gpu_benchmark_runs_on_cpu(tmp_path, capsys):
    report, saved, printed, target = run(gpu, ["--device", "cpu", "--image-size", "32", "--batch-size", "4",
                                               "--steps", "1", "--repeats", "1", "--warmup", "0"], tmp_path, capsys)
    assert "timm fused attention (dense model): True" in printed
    ratio = saved["supernet_over_dense"]
    assert ratio == report["supernet_over_dense"] and positive(ratio)
    assert target.startswith("target: supernet / dense >= 0.95") and target.endswith(f"supernet / dense: {ratio:.3f}")
    assert report["arch"]["embed_dim"] == 240 and report["arch"]["depth"] == 14  # autoformer-tiny's largest
    for model in ("supernet", "dense"):
        assert positive(report["results"][model]["images_per_s"])
        assert report["results"][model]["mfu"] is None  # no known peak FLOP/s for a CPU


def test_latency(tmp_path, capsys):
    _, saved, _, target = run(latency, ["--configs", "digits", "--subnets", "3", "--warmup", "1",
                                             "--repeats", "1", "--calibration", "3"], tmp_path, capsys)
    by_set = {f["set"]: f for f in saved["results"]}
    assert set(by_set) == {"uniform", "budgets", "retest"} and all(f["n"] == 3 for f in by_set.values())
    for name in ("uniform", "budgets"):
        assert positive(by_set[name]["mape_summed"])
        for table in ("one scale", "as built"):
            assert positive(by_set[name][table]["mape"]) and -1 <= by_set[name][table]["tau"] <= 1
    t = saved["target"]
    assert t["highest_mape"] == max(by_set[name]["as built"]["mape"] for name in ("uniform", "budgets"))
    assert t["lowest_tau"] == min(by_set[name]["as built"]["tau"] for name in ("uniform", "budgets"))
    assert "Kendall tau >= 0.9 and MAPE <= 10%" in target
    assert f"lowest tau {t['lowest_tau']:.3f}, highest MAPE {t['highest_mape']:.1f}%" in target


def test_ddp_in_one_process(tmp_path, capsys):
    _, saved, _, target = run(ddp, ["--config", "digits", "--warmup", "0", "--steps", "1"], tmp_path, capsys)
    assert saved["world_size"] == 1 and saved["steps"] == 1 and saved["global_batch"] == 64
    per_process = saved["images_per_s_per_process"]
    assert positive(per_process) and per_process == saved["images_per_s"]
    assert target.startswith("target: throughput per process")
    assert f"{per_process:.1f} images/s per process = {saved['images_per_s']:.1f} images/s in total / 1" in target


def test_focus_overhead(tmp_path, capsys, monkeypatch):
    rewards = []

    def recording_trainer(config, *args, **kwargs):
        rewards.append(config.focus.reward)
        return Trainer(config, *args, **kwargs)

    monkeypatch.setattr(focus_overhead, "Trainer", recording_trainer)
    _, saved, printed, target = run(focus_overhead, ["--config", "digits", "--steps", "1", "--chunk", "1",
                                                     "--set", "focus.reward=distill"], tmp_path, capsys)
    assert rewards == ["distill", "distill"], "--set reaches every sampler's trainer"
    by_name = {r["sampler"]: r for r in saved["results"]}
    assert set(by_name) == {"uniform", "focus"}
    assert by_name["uniform"]["time_over"]["uniform"] == 1.0
    ratio = by_name["focus"]["time_over"]["uniform"]
    assert positive(ratio) and saved["target"]["time_over_reference"] == {"focus": ratio}
    assert all(positive(r["seconds_per_step"]) and 0 <= r["own_share"] <= 1 for r in by_name.values())
    assert "| sampler | s/step |" in printed
    assert target.startswith("target: time per step over uniform's") and f"focus {ratio:.3f}" in target


def test_psvit(tmp_path, capsys):
    _, saved, _, target = run(psvit, ["--spaces", "psvit-digits", "--batch-size", "4", "--repeats", "1",
                                           "--rounds", "1"], tmp_path, capsys)
    (pair,) = saved["pairs"]
    # Sharing the attention map drops the second layer's q/k projection and q @ k^T: fewer MACs.
    assert pair["shared pair"]["macs_per_image"] < pair["two layers"]["macs_per_image"]
    saving = saved["target"]["saving"]["psvit-digits"]
    assert 0 < saving["macs_per_image"] < 1
    assert all(math.isfinite(v) for v in saving.values())
    (result,) = saved["results"]
    assert positive(result["ratio_of_medians"]) and saved["target"]["lowest_supernet_over_dense"] == \
        result["ratio_of_medians"]
    assert target.startswith("target: attention sharing's saving")
    assert f"psvit-digits {100 * saving['macs_per_image']:.1f}%" in target
    assert target.endswith(f"lowest {result['ratio_of_medians']:.3f}")


def test_search_overhead(tmp_path, capsys):
    _, saved, _, target = run(search_overhead, ["--spaces", "digits", "--population", "6", "--generations", "2",
                                                "--images", "8", "--batch-size", "4", "--score-subnets", "2"],
                              tmp_path, capsys)
    (result,) = saved["results"]
    assert result["space"] == "digits" and result["scored"] == 6 + 2 * 6 and result["score_subnets"] == 2
    assert positive(result["search_ms_per_subnet"]) and positive(result["score_ms_per_subnet"])
    assert result["ratio"] == pytest.approx(result["search_ms_per_subnet"] / result["score_ms_per_subnet"])
    assert saved["target"]["largest_ratio"] == result["ratio"]
    assert target.endswith(f"largest {result['ratio']:.1%}") and "<= 5% of scoring one on 8 images" in target


def test_band_reach(tmp_path, capsys):
    _, saved, printed, target = run(band_reach, ["--spaces", "digits,psvit-digits", "--budgets", "300K,500K,10G",
                                                 "--draws", "300"], tmp_path, capsys)
    results = {(r["space"], r["budget"]): r for r in saved["results"]}
    assert sorted(results) == sorted((s, b) for s in ("digits", "psvit-digits") for b in (3e5, 5e5, 1e10))
    for r in results.values():
        assert r["within_budget"] and r["below_band"] + r["in_band"] == pytest.approx(1.0)
    # Without identity layers (AutoFormer's space) every draw lands in the band.
    for budget in (3e5, 5e5):
        row = results[("digits", budget)]
        assert row["below_band"] == 0.0 and row["lowest_over_budget"] >= 0.9
    # A budget above the largest subnet is drawn at the largest's cost.
    space = load_config("psvit-digits").space
    largest = space.cost_model("macs").max_cost
    assert results[("psvit-digits", 1e10)]["drawn_at"] == largest
    # The share below the band, recounted with count_macs on the same draws: on this space with
    # identity layers some draws land below a band that its archs do reach.
    band = load_config("psvit-digits").target_band
    sampler = ArchSampler(space, band=band)
    out = sampler.sample(torch.full((300,), 3e5), generator=torch.Generator().manual_seed(0), uniform=True)
    macs = [count_macs(space.decode(codes), space) for codes in out.codes.numpy()]
    assert max(macs) <= 3e5
    share = sum(m < (1 - band) * 3e5 for m in macs) / len(macs)
    row = results[("psvit-digits", 3e5)]
    assert row["below_band"] == pytest.approx(share) and share > 0 and row["band_reachable"]
    worst = max((r for r in results.values() if r["band_reachable"]), key=lambda r: r["below_band"])
    assert saved["target"]["largest_below_band"] == worst["below_band"] and saved["target"]["all_within_budget"]
    assert target.startswith(f"target: no draw below a reachable band: largest share {worst['below_band']:.1%}")
    assert "| psvit-digits | 300,000 | 300,000 |" in printed


@pytest.mark.parametrize("name", ["digits", "psvit-digits"])
def test_band_reachable_finds_exactly_the_costs_of_real_archs(name):
    space = load_config(name).space
    table = space.cost_model("macs")
    for seed in range(5):
        cost = count_macs(space.sample(np.random.default_rng(seed)), space)
        assert band_reach.band_reachable(table, cost, cost)
        assert not band_reach.band_reachable(table, cost + 0.1, cost + 0.9)  # costs are whole numbers
    assert not band_reach.band_reachable(table, table.max_cost + 1, table.max_cost * 2)
    assert not band_reach.band_reachable(table, 0, table.min_cost - 1)


def test_band_reach_refuses_a_budget_below_a_space_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        band_reach.main(["--spaces", "digits", "--budgets", "1K"])
    assert exit_info.value.code == 2
    assert "below this space's range" in capsys.readouterr().err


def test_a_benchmark_run_from_its_command_line_prints_that_command(monkeypatch, capsys):
    argv = ["--spaces", "digits", "--budgets", "300K", "--draws", "20"]
    monkeypatch.setattr(sys, "argv", ["band_reach.py", *argv])
    report = band_reach.main()
    assert f"command: python -m benchmarks.performance.band_reach {shlex.join(argv)}\n" in capsys.readouterr().out
    assert report["argv"] == argv


def test_json_is_written_whole_into_a_new_folder_or_not_at_all(tmp_path):
    """Records and reports are read back by runs that resume: a failed write keeps the old file."""
    path = tmp_path / "new" / "folder" / "report.json"
    write_json(path, {"figures": [1.5, 2.0]})
    assert json.loads(path.read_text()) == {"figures": [1.5, 2.0]}
    with pytest.raises(TypeError):
        write_json(path, {"figures": object()})
    assert json.loads(path.read_text()) == {"figures": [1.5, 2.0]}
    assert [p.name for p in path.parent.iterdir()] == ["report.json"], "no temporary file is left behind"
