"""focus training, focusformer-specialize and focusformer-search end to end on a tiny digits run."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from focusformer import count_macs, count_params, load_subnet
from focusformer.cli import search as search_cli
from focusformer.cli import specialize as specialize_cli
from focusformer.config import load_config
from focusformer.search.results import read_results
from focusformer.training.trainer import Trainer

# The tau gate is opened (min_tau -1) so the policy learns within a few updates on this tiny
# run; the gate itself is tested in test_sampler.py.
FOCUS = ["train.epochs=4", "train.lr=5e-3", "train.warmup_epochs=1", "train.sampler=focus",
         "focus.update_every=10", "focus.eval_candidates=4", "focus.eval_images=64", "focus.policy_steps=3",
         "focus.min_tau=-1", "focus.stable_updates=1"]


@pytest.fixture(scope="module")
def focus_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("focus") / "run"
    Trainer(load_config("digits", FOCUS), run, progress=False).fit()
    return run


@pytest.fixture(scope="module")
def uniform_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("uniform") / "run"
    Trainer(load_config("digits", ["train.epochs=1", "train.sampler=uniform"]), run, progress=False).fit()
    return run


def _summary(run: Path) -> list[dict[str, str]]:
    with open(run / "summary.csv") as handle:
        return list(csv.DictReader(handle))


def test_focus_training_reports_sampler_columns(focus_run):
    rows = _summary(focus_run)
    assert {"steered_share", "predictor_tau", "policy_updates", "sampler_entropy", "budget_hit_rate",
            "reward_spread", "reward_se", "policy_gain", "distinct_per_100"} <= set(rows[0])
    last = rows[-1]
    assert 0.0 < float(last["budget_hit_rate"]) <= 1.0
    assert 0.0 < float(last["sampler_entropy"]) <= 1.0 and -1.0 <= float(last["predictor_tau"]) <= 1.0
    assert 0.5 < float(last["steered_share"]) < 1.0  # exploration floor: uniform_share of steps stay uniform
    assert float(last["reward_se"]) > 0 and float(last["reward_spread"]) > 0
    assert 1 <= float(last["distinct_per_100"]) <= 100
    shares = [float(v) for k, v in last.items() if k.startswith("share_")]
    assert sum(shares) == pytest.approx(1.0)


def test_focus_resume_matches_uninterrupted_run(tmp_path):
    config = load_config("digits", FOCUS[1:] + ["train.epochs=2"])
    whole = Trainer(config, tmp_path / "whole", progress=False)
    whole.fit()
    Trainer(config, tmp_path / "split", progress=False).fit(until_epoch=1)
    resumed = Trainer.resume(tmp_path / "split", progress=False)
    resumed.fit()
    assert resumed.strategy.policy_updates == whole.strategy.policy_updates > 0
    for source, target in ((whole.network, resumed.network), (whole.strategy.sampler, resumed.strategy.sampler)):
        for name, tensor in source.state_dict().items():
            assert torch.equal(tensor, target.state_dict()[name]), name
    drop_seconds = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop_seconds(_summary(tmp_path / "whole")) == drop_seconds(_summary(tmp_path / "split"))


def test_specialize_json_export_and_record(focus_run, tmp_path, capsys):
    space = load_config("digits").space
    out = tmp_path / "exported"
    code = specialize_cli.main(["--checkpoint", str(focus_run), "--budgets", "300K,500K,900K", "--json",
                                "--export", str(out), "--candidates", "4"])
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["budget"] for r in results] == [3e5, 5e5, 9e5]
    for r in results:
        assert {"budget", "arch", "macs", "params", "val_top1", "test_top1", "seconds"} <= set(r)
        arch = space.arch_from_dict(r["arch"])
        assert r["macs"] == count_macs(arch, space) <= r["budget"]
        assert r["params"] == count_params(arch, space)
        assert 0 <= r["val_top1"] <= 100 and 0 <= r["test_top1"] <= 100
        model = load_subnet(out / {3e5: "300K", 5e5: "500K", 9e5: "900K"}[r["budget"]])
        assert model.arch == arch
    recorded = {r.budget.value: r.arch for r in read_results(focus_run, "sampler", space) if r.budget.kind == "macs"}
    assert [recorded[r["budget"]] for r in results] == [space.arch_from_dict(r["arch"]) for r in results]


def test_specialize_param_budget_and_table(focus_run, capsys):
    space = load_config("digits").space
    assert specialize_cli.main(["--checkpoint", str(focus_run), "--params", "25K", "--no-test"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["method", "budget", "MACs"] and "25K params" in out
    assert specialize_cli.main(["--checkpoint", str(focus_run), "--params", "25K", "--no-test", "--json"]) == 0
    (answer,) = json.loads(capsys.readouterr().out)
    arch = space.arch_from_dict(answer["arch"])
    assert answer["params"] == count_params(arch, space) <= 25e3  # the budget is on parameters
    assert answer["macs"] == count_macs(arch, space)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--budget", "1K"], "below this space's range"),
        (["--budget", "abc"], "not a number"),
        (["--budget", "0"], "positive"),
        (["--budgets", "300K,,x"], "not a number"),
        (["--params", "1"], "below this space's range"),
        (["--val-images", "0", "--budget", "300K"], None),  # argparse usage error, exit 2
    ],
)
def test_specialize_bad_budgets(focus_run, flags, message, capsys):
    try:
        code = specialize_cli.main(["--checkpoint", str(focus_run), *flags])
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    if message:
        assert len(err.splitlines()) == 1 and message in err


def test_a_budget_above_the_largest_subnet_searches_the_whole_space(focus_run, capsys):
    """Every subnet fits a budget above the largest: the answer is the largest subnet's cost's
    answer, recorded under the budget asked for, with a note saying the whole space was searched."""
    space = load_config("digits").space
    largest = space.cost_model("macs").max_cost
    common = ["--checkpoint", str(focus_run), "--no-test", "--json", "--candidates", "4"]
    assert specialize_cli.main([*common, "--budget", "1T"]) == 0
    out, err = capsys.readouterr()
    (above,) = json.loads(out)
    assert "admits every subnet of this space" in err and "the whole space is searched" in err
    assert above["budget"] == 1e12
    assert specialize_cli.main([*common, "--budget", f"{largest:.0f}"]) == 0
    (at,) = json.loads(capsys.readouterr().out)
    assert above["arch"] == at["arch"] and above["macs"] <= largest
    answers = []
    for budget in ("1T", f"{largest:.0f}"):  # without data too
        assert specialize_cli.main(["--checkpoint", str(focus_run), "--json", "--budget", budget, "--data-free"]) == 0
        answers.append(json.loads(capsys.readouterr().out)[0]["arch"])
    assert answers[0] == answers[1]
    # The searches take it too.
    assert search_cli.main(["--checkpoint", str(focus_run), "--budget", "1T", "--method", "random",
                            "--candidates", "4", "--no-progress", "--no-test", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "the whole space is searched" in err and json.loads(out)[0]["budget"] == 1e12


def test_specialize_needs_a_trained_sampler(uniform_run, tmp_path, capsys):
    assert specialize_cli.main(["--checkpoint", str(uniform_run), "--budget", "300K"]) == 2
    assert "no learned sampler" in capsys.readouterr().err
    assert specialize_cli.main(["--checkpoint", str(tmp_path / "nope"), "--budget", "300K"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_specialize_uniform_draws_on_a_run_without_a_sampler(uniform_run, capsys):
    """--draws uniform needs no trained policy: the best by search-val of distinct in-band draws,
    recorded apart from the policy's picks and shown by focusformer-plot's summary."""
    from focusformer import plot

    space = load_config("digits").space
    assert specialize_cli.main(["--checkpoint", str(uniform_run), "--budgets", "400K,900K", "--draws", "uniform",
                                "--candidates", "6", "--rungs", "none", "--json", "--no-test"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in results] == ["uniform-draws"] * 2
    for r in results:
        arch = space.arch_from_dict(r["arch"])
        assert 0.9 * r["budget"] <= r["macs"] == count_macs(arch, space) <= r["budget"]  # in the target band
    assert not (uniform_run / "results" / "sampler.jsonl").exists()
    recorded = {method: read_results(uniform_run, method, space) for method in ("uniform-draws", "sampler")}
    assert [r.arch for r in recorded["uniform-draws"]] == [space.arch_from_dict(r["arch"]) for r in results]
    table = plot.summary_table(recorded, "search-val")
    assert table.splitlines()[0].split()[:3] == ["budget", "uniform", "draws"]


def test_specialize_shares_candidates_with_cheaper_rungs_by_default(uniform_run, monkeypatch, capsys):
    """Without target budgets a budget's rungs are half and a quarter of it; ``--rungs none`` drops them."""
    from focusformer.sampling import specialize as specialize_module

    seen = []

    def recording(sampler, budgets, score, num_candidates, seed, uniform, rungs_of):
        seen.append([r.value for budget in budgets for r in rungs_of(budget)])
        return specialize_module.specialize_all(sampler, budgets, score, num_candidates, seed, uniform, rungs_of)

    monkeypatch.setattr(specialize_cli, "specialize_all", recording)
    for flags in ([], ["--rungs", "none"]):
        assert specialize_cli.main(["--checkpoint", str(uniform_run), "--budget", "900K", "--draws", "uniform",
                                    "--candidates", "6", "--json", "--no-test", *flags]) == 0
        result = json.loads(capsys.readouterr().out)[0]
        assert result["macs"] <= 900e3 and result["candidates"] == 6
    assert seen == [[450e3, 225e3], []]


@pytest.mark.parametrize("draws", ["policy", "uniform"])
def test_specialize_answers_are_monotone_in_the_budget_and_score_each_candidate_once(focus_run, draws,
                                                                                       monkeypatch, capsys):
    """A budget is a cap: on one run a larger budget's answer never scores below a smaller one's, and a
    band several budgets share (one budget is another's rung here) is drawn and scored once."""
    from focusformer.search.scoring import CandidateScorer

    scored = []
    score = CandidateScorer.score

    def counting(self, archs, side=None):
        if side is None:
            scored.extend(archs)
        return score(self, archs, side)

    monkeypatch.setattr(CandidateScorer, "score", counting)
    budgets = "250K,300K,400K,500K,600K,900K"
    assert specialize_cli.main(["--checkpoint", str(focus_run), "--budgets", budgets, "--draws", draws,
                                "--candidates", "8", "--json", "--no-test"]) == 0
    results = json.loads(capsys.readouterr().out)
    val = [r["val_top1"] for r in results]
    assert [r["budget"] for r in results] == sorted(r["budget"] for r in results)
    assert val == sorted(val) and all(r["macs"] <= r["budget"] for r in results)
    assert len(scored) == len(set(scored))  # each candidate scored once, whatever the budgets share
    assert len(scored) >= max(r["candidates"] for r in results)


def test_data_free_answer_reads_no_images_and_exports(focus_run, tmp_path, monkeypatch, capsys):
    from focusformer.cli import budgeted

    def no_data(*args, **kwargs):
        raise AssertionError("a data-free answer must not load data")

    monkeypatch.setattr(budgeted, "load_data", no_data)
    out = tmp_path / "free"
    assert specialize_cli.main(["--checkpoint", str(focus_run), "--budgets", "300K,500K", "--data-free",
                                "--json", "--export", str(out)]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in results] == ["data-free"] * 2
    assert all(r["val_top1"] is None and r["test_top1"] is None and r["macs"] <= r["budget"] for r in results)
    exported = load_subnet(out / "300K")
    assert exported.arch.to_dict() == results[0]["arch"]
    for flags, named in ((["--draws", "uniform"], "--draws"), (["--val-images", "50"], "--val-images"),
                         (["--no-test"], "--no-test")):
        assert specialize_cli.main(["--checkpoint", str(focus_run), "--budget", "300K", "--data-free", *flags]) == 2
        assert f"--data-free scores nothing; drop {named}" in capsys.readouterr().err


def test_specialize_refuses_to_overwrite_an_export(focus_run, tmp_path, capsys):
    out = tmp_path / "x"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"precious")
    assert specialize_cli.main(["--checkpoint", str(focus_run), "--budget", "300K", "--export", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == b"precious"


SMALL_EVOLUTION = ["--population", "8", "--generations", "3", "--parents", "3", "--mutations", "4",
                   "--crossovers", "4", "--no-progress", "--no-test"]


def test_evolution_search_end_to_end_deterministic_and_resumable(focus_run, capsys):
    space = load_config("digits").space
    args = ["--checkpoint", str(focus_run), "--budget", "400K", "--json", "--seed", "3", *SMALL_EVOLUTION]
    assert search_cli.main(args + ["--restart"]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    arch = space.arch_from_dict(first["arch"])
    assert count_macs(arch, space) <= 4e5 and first["candidates"] > 8
    assert search_cli.main(args + ["--restart"]) == 0  # same seed, from scratch: same answer
    again = json.loads(capsys.readouterr().out)[0]
    assert again["arch"] == first["arch"] and again["val_top1"] == first["val_top1"]
    state = focus_run / "results" / "search-evolution-400K-seed3.state.json"
    assert state.is_file()
    assert search_cli.main(args) == 0  # recorded and finished: returned without searching again
    resumed = json.loads(capsys.readouterr().out)[0]
    assert resumed["arch"] == first["arch"] and resumed["candidates"] == first["candidates"]


def test_a_search_state_is_continued_only_with_the_same_weights_and_images(focus_run, tmp_path, capsys):
    """A recorded search scored on other search-val images, or by other weights (the run trained
    on), is searched afresh, not returned; other settings are refused with the way out."""
    args = ["--checkpoint", str(focus_run), "--budget", "400K", "--json", "--seed", "5", *SMALL_EVOLUTION]
    assert search_cli.main([*args, "--val-images", "20", "--restart"]) == 0
    few = json.loads(capsys.readouterr().out)[0]
    assert search_cli.main([*args, "--restart"]) == 0
    expected = json.loads(capsys.readouterr().out)[0]
    assert search_cli.main([*args, "--val-images", "20"]) == 0  # the state is now the full set's
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["val_top1"] == few["val_top1"] and "searching afresh" in captured.err
    assert search_cli.main(args) == 0  # back to the full set: its answer, not the 20 images' one
    captured = capsys.readouterr()
    assert "searching afresh" in captured.err
    again = json.loads(captured.out)[0]
    assert (again["arch"], again["val_top1"]) == (expected["arch"], expected["val_top1"])

    # The same run trained one epoch more: its recorded search is not the new weights' answer.
    longer = tmp_path / "longer"
    shutil.copytree(focus_run, longer)
    Trainer.resume(longer, progress=False, epochs=5).fit()  # focus_run trained 4
    assert search_cli.main([*args[:1], str(longer), *args[2:]]) == 0
    assert "searching afresh" in capsys.readouterr().err

    # A larger --generations continues the recorded search to a longer one's answer; fewer, or
    # other settings, are refused with the way out.
    assert search_cli.main([*args, "--generations", "4"]) == 0
    continued = json.loads(capsys.readouterr().out)[0]
    assert search_cli.main([*args, "--generations", "4", "--restart"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["arch"] == continued["arch"]
    assert search_cli.main([*args, "--generations", "2"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "already run 4 generations" in err and "--restart" in err
    assert search_cli.main([*args, "--generations", "4", "--population", "9"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "differs in: config" in err and "--restart" in err


def test_random_search_and_bad_settings(focus_run, capsys):
    assert search_cli.main(["--checkpoint", str(focus_run), "--budget", "500K", "--method", "random",
                            "--candidates", "12", "--json", "--no-progress", "--no-test"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["method"] == "random" and result["candidates"] == 12 and result["macs"] <= 5e5
    assert math.isfinite(result["val_top1"])
    assert search_cli.main(["--checkpoint", str(focus_run), "--budget", "500K", "--depth-mutation", "2"]) == 2
    assert "depth_mutation" in capsys.readouterr().err
