"""benchmarks.quality.evaluate: every measure on tiny digits runs of two arms and two seeds, paired
by seed, cached per run, and its statistics from benchmarks.lib.stats."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from benchmarks.lib import stats
from benchmarks.quality import evaluate
from focusformer.budget import Budget
from focusformer.config import load_config
from focusformer.training.trainer import Trainer

SHORT = ["train.epochs=1", "train.batch_size=128", "data.reward_size=64"]
FOCUS = ["train.sampler=focus", "focus.update_every=4", "focus.eval_candidates=4", "focus.eval_images=64",
         "focus.min_tau=-1", "focus.stable_updates=1", "focus.warmup_fraction=0", "focus.policy_steps=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("quality")
    made: dict[str, list[Path]] = {"uniform": [], "focus": []}
    for arm, extra in (("uniform", ["train.sampler=uniform"]), ("focus", FOCUS)):
        for seed in (1, 0):  # listed out of seed order: pairing goes by seed, not position
            run = root / f"{arm}-s{seed}"
            Trainer(load_config("digits", [*SHORT, *extra, f"train.seed={seed}"]), run, progress=False).fit()
            made[arm].append(run)
    return made


ARGS = ["--budgets", "300K,500K", "--val-images", "64", "--candidates", "4", "--sweep", "1,2", "--population", "4",
        "--generations", "2", "--cloud", "6", "--cloud-images", "100"]


def test_every_measure_of_two_arms_paired_by_seed(runs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "eval.json"
    groups = [f"{arm}={','.join(map(str, paths))}" for arm, paths in runs.items()]
    evaluate.main(["--runs", *groups, *ARGS, "--measures", ",".join(evaluate.MEASURES), "--json", str(out)])
    printed = capsys.readouterr().out
    assert "focus - uniform" in printed and "load average" in printed and "target: focus's answers" in printed
    report = json.loads(out.read_text())
    focus = report["runs"]["focus"]
    assert set(focus) == {"0", "1"} and report["reference"] == "uniform"
    for seed, row in focus.items():
        for budget in ("300K", "500K"):
            assert row[f"{budget} answer"] == row[f"{budget} picks"]  # a focus run answers with its policy
            assert {f"{budget} draws", f"{budget} datafree", f"{budget} evolution", f"{budget} k=1"} <= set(row)
        assert 0 < row["hypervolume"] <= 1
    # The spread: the test top-1 of the in-band draw that search-val ranks first, minus the draws'
    # median test top-1; the two splits' scores are cached apart, for the same draws.
    eval_dir = runs["focus"][0] / "eval"  # seed 1
    on_test = json.loads(next(eval_dir.glob("spread-[0-9a-f]*.json")).read_text())["result"]["300K"]
    on_val = json.loads(next(eval_dir.glob("spread-val-*.json")).read_text())["result"]["300K"]
    assert len(on_test["test_top1"]) == len(on_val["val_top1"]) == 4
    assert on_test["macs"] == on_val["macs"] and all(m <= 300_000 for m in on_test["macs"])
    chosen = max(range(4), key=lambda i: on_val["val_top1"][i])
    ordered = sorted(on_test["test_top1"])
    expected_spread = on_test["test_top1"][chosen] - (ordered[1] + ordered[2]) / 2
    assert focus["1"]["300K spread"] == pytest.approx(expected_spread)
    assert "300K picks" not in report["runs"]["uniform"]["0"]  # no policy, no picks
    # One specialize call answers both budgets: its CPU seconds, recorded once per run.
    assert all(row["picks call s"] > 0 for row in focus.values())
    assert "picks call s" not in report["runs"]["uniform"]["0"]
    paired = report["groups"]["focus"]["columns"]["300K answer"]["paired"]
    uniform = report["runs"]["uniform"]
    expected = [focus[s]["300K answer"] - uniform[s]["300K answer"] for s in ("0", "1")]
    assert paired["seeds"] == [0, 1] and paired["diffs"] == pytest.approx(expected)
    assert paired["interval"] == pytest.approx(list(stats.paired_by_seed(dict(enumerate(expected)), {0: 0, 1: 0})
                                                    .interval))
    # Every measure is cached in the run: evaluating again computes nothing.
    assert len(list((runs["focus"][0] / "eval").glob("*.json"))) == len(evaluate.MEASURES) + 1  # + spread-val
    monkeypatch.setattr(evaluate, "specialize_all", None)
    monkeypatch.setattr(evaluate, "evolution_search", None)
    evaluate.main(["--runs", *groups, *ARGS, "--measures", ",".join(evaluate.MEASURES)])
    assert "focus - uniform" in capsys.readouterr().out


def test_a_budget_above_the_largest_subnet_is_the_whole_space(runs, tmp_path, capsys):
    """Reported under the budget asked for, evaluated at the largest subnet's cost (digits: 2.02M)."""
    out = tmp_path / "eval.json"
    evaluate.main(["--runs", f"uniform={runs['uniform'][0]}", "--budgets", "300K,50M", "--measures", "draws,spread",
                   "--val-images", "64", "--candidates", "4", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "50M MACs is above the space's largest subnet; evaluated at 2,0" in printed
    row = json.loads(out.read_text())["runs"]["uniform"]["1"]
    assert {"300K draws", "50M draws", "50M spread"} <= set(row)
    largest = load_config("digits").space.cost_model("macs").max_cost
    cached = [json.loads(path.read_text()) for path in (runs["uniform"][0] / "eval").glob("draws-*.json")]
    (whole_space,) = [c["result"] for c in cached if c["settings"]["budgets"] == [300_000, largest]]
    assert row["50M draws"] == whole_space[Budget(largest).label]["test_top1"]


def test_budgets_above_the_largest_subnet_are_evaluated_once(runs, tmp_path, capsys, monkeypatch):
    """Two budgets above the largest subnet are one budget evaluated: the per-budget measures
    compute it once, and both columns report it."""
    drawn, searched = [], []
    draw, search = evaluate.draw_candidates, evaluate.evolution_search
    monkeypatch.setattr(evaluate, "draw_candidates", lambda sampler, budget, *a, **k: drawn.append(budget.value)
                        or draw(sampler, budget, *a, **k))
    monkeypatch.setattr(evaluate, "evolution_search", lambda space, budget, *a, **k: searched.append(budget.value)
                        or search(space, budget, *a, **k))
    out = tmp_path / "eval.json"
    evaluate.main(["--runs", f"uniform={runs['uniform'][1]}", "--budgets", "300K,50M,60M", "--measures",
                   "spread,evolution", "--val-images", "64", "--candidates", "4", "--population", "4",
                   "--generations", "1", "--json", str(out)])
    largest = load_config("digits").space.cost_model("macs").max_cost
    assert sorted(drawn) == [300_000, 300_000, largest, largest]  # spread: test and search-val, each budget once
    assert sorted(searched) == [300_000, largest]
    row = json.loads(out.read_text())["runs"]["uniform"]["0"]
    assert row["50M spread"] == row["60M spread"] and row["50M evolution"] == row["60M evolution"]


def test_the_rows_a_study_keeps_are_the_reports_rows_read_from_the_cache(runs, tmp_path, monkeypatch):
    """What a study keeps of a run: its row for each set of measures, the very row (columns in
    order) that the evaluation's report gives for that set, read from the run's cache (nothing is
    searched again), with the budgets evaluated at the largest subnet's cost named."""
    run = runs["focus"][1]  # seed 0
    settings = ["--budgets", "300K,50M", "--val-images", "64", "--candidates", "4", "--cloud", "6",
                "--cloud-images", "100"]
    expected = {}
    for measures in ("picks", "draws,picks", "picks,cloud", "draws,picks,cloud"):
        out = tmp_path / f"{measures}.json"
        evaluate.main(["--runs", f"focus={run}", *settings, "--measures", measures, "--json", str(out)])
        expected[measures] = json.loads(out.read_text())["runs"]["focus"]["0"]
    monkeypatch.setattr(evaluate, "specialize_all", None)
    monkeypatch.setattr(evaluate, "draw_candidates", None)
    monkeypatch.setattr(evaluate, "cloud_archs", None)
    kept = evaluate.keep_rows(run, ["picks", "cloud", "draws"], settings)  # any order: one key per set
    assert kept.seed == 0 and len(kept.rows) == 7
    for measures, row in expected.items():
        assert list(kept.rows[evaluate.measures_key(measures.split(","))].items()) == list(row.items())
    assert kept.rows["draws,picks"]["300K answer"] == kept.rows["draws,picks"]["300K picks"]  # the policy answers
    largest = load_config("digits").space.cost_model("macs").max_cost
    assert kept.evaluated_at == {"50M": largest}


def test_paired_intervals_are_student_t_and_pair_by_seed():
    paired = stats.paired_by_seed({0: 1.0, 1: 2.0, 2: 3.0, 3: 2.0}, {3: 1.0, 0: 0.5, 1: 1.0, 2: 1.5, 9: 7.0})
    assert paired.seeds == (0, 1, 2, 3) and paired.diffs == (0.5, 1.0, 1.5, 1.0)
    assert stats.t_multiplier(4) == pytest.approx(3.182446, abs=1e-6)  # not 2 at n = 4
    half = 3.182446 * 0.408248 / 2.0  # t(0.975, 3) * sd / sqrt(4)
    assert paired.interval == pytest.approx((1.0 - half, 1.0 + half), abs=1e-5)
    assert paired.significant and "**" in paired.format()
    noisy = stats.paired_by_seed({0: 1.0, 1: -0.8, 2: 0.9}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert not noisy.significant and "**" not in noisy.format()
    assert stats.Summary.of([1.0, 2.0, 3.0]).format() == "2.00 ± 1.00"


def test_ratios_pair_by_seed_on_a_log_scale():
    ratio, (low, high) = stats.ratio_by_seed({0: 400.0, 1: 300.0, 2: 500.0}, {0: 1.0, 1: 2.0, 2: 2.5, 7: 9.0})
    logs = [math.log(400.0), math.log(150.0), math.log(200.0)]
    assert ratio == pytest.approx(math.exp(sum(logs) / 3))  # the geometric mean of the per-seed ratios
    half = stats.t_multiplier(3) * statistics.stdev(logs) / math.sqrt(3)
    assert (low, high) == pytest.approx((ratio * math.exp(-half), ratio * math.exp(half)))
    assert math.isnan(stats.ratio_by_seed({0: 2.0}, {0: 1.0})[1][0])  # one pair: no interval
