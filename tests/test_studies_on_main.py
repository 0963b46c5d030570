"""The studies whose figures RESULTS.md keeps as measured on main run on main: their drivers import
and parse, every arm's training arguments make a valid config, and the replication study's
retraining of specialize's picks runs end to end on a tiny digits supernet; its analysis reads
only the records each step keeps."""

from __future__ import annotations

import itertools
import json

import pytest

from benchmarks.lib.output import write_json
from benchmarks.quality import evaluate as quality_evaluate
from benchmarks.studies.currencies import analyze as currencies_analyze
from benchmarks.studies.currencies import evaluate as currencies_evaluate
from benchmarks.studies.currencies import train as currencies_train
from benchmarks.studies.model_ema import evaluate as model_ema_evaluate
from benchmarks.studies.model_ema import train as model_ema_train
from benchmarks.studies.replication import analyze, record, retrain
from benchmarks.studies.replication import evaluate as replication_evaluate
from benchmarks.studies.replication import train as replication_train
from focusformer.cli.train import _FLAG_OVERRIDES, build_parser
from focusformer.config import load_config
from focusformer.training.trainer import Trainer

DRIVERS = [currencies_train, currencies_evaluate, currencies_analyze, model_ema_train, model_ema_evaluate,
           replication_train, replication_evaluate, analyze, retrain]


@pytest.mark.parametrize("module", DRIVERS, ids=lambda m: m.__name__.removeprefix("benchmarks.studies."))
def test_driver_parses_its_command_line(module, capsys):
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0 and "usage:" in capsys.readouterr().out


def test_currencies_analysis_names_a_partial_report_apart_and_rejects_unknown_parts(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "report.md").write_text("the combined report")
    # No finished reward arms under an empty root: the reward part waits and writes an empty report.
    currencies_analyze.main([str(tmp_path / "runs"), "--out", str(out), "--parts", "reward"])
    assert (out / "report-reward.md").read_text() == ""
    assert (out / "report.md").read_text() == "the combined report"
    with pytest.raises(SystemExit) as exit_:
        currencies_analyze.main([str(tmp_path / "runs"), "--out", str(out), "--parts", "rewards"])
    assert exit_.value.code == 2 and "unknown part(s) rewards" in capsys.readouterr().err


@pytest.mark.parametrize("arms", [currencies_train.ARMS, replication_train.ARMS], ids=["currencies", "replication"])
def test_every_arm_makes_the_config_it_names(arms):
    for arm, args in arms.items():
        parsed = build_parser().parse_args([*args, "--output", "unused"])
        flags = {key: getattr(parsed, flag) for flag, key in _FLAG_OVERRIDES.items() if getattr(parsed, flag) is not None}
        config = load_config(parsed.config, parsed.overrides, flags)
        assert config.train.epochs == int(args[args.index("--epochs") + 1]), arm
        assert config.train.sampler == args[args.index("--sampler") + 1], arm
    if arms is replication_train.ARMS:
        patch4 = replication_train.ARMS["vitas5patch4"]
        parsed = build_parser().parse_args([*patch4, "--output", "unused"])
        assert list(load_config(parsed.config, parsed.overrides).space.patch_size) == [4]


def test_replication_retrains_specialize_picks_and_tabulates_them(tmp_path, monkeypatch):
    """specialize's picks of a focus supernet, exported, fine-tuned and retrained (one epoch each,
    budgets that fit the digits space), then the paired table: inherited from specialize's JSON."""
    supernets = tmp_path / "currencies"
    short = ["train.epochs=1", "train.batch_size=128", "data.reward_size=64", "train.sampler=focus",
             "focus.update_every=4", "focus.eval_candidates=4", "focus.eval_images=64", "focus.warmup_fraction=0",
             "focus.min_tau=-1", "focus.stable_updates=1", "focus.policy_steps=2"]
    for seed in (0, 1):
        Trainer(load_config("digits", [*short, f"train.seed={seed}"]), supernets / f"vfocus15-s{seed}",
                progress=False).fit()
    monkeypatch.setattr(retrain, "BUDGETS", ("500K",))  # one budget within the digits space: each run is a process
    monkeypatch.setattr(analyze, "BUDGETS", ("500K",))
    monkeypatch.setattr(retrain, "SCHEDULES", (("finetune5", "inherited", 1), ("retrain15", "scratch", 1)))
    root, records = tmp_path / "replication", tmp_path / "records"
    with pytest.raises(SystemExit) as exit_:
        retrain.main([str(root), "--supernets", str(supernets), "--lanes", "2", "--records", str(records)])
    assert exit_.value.code == 0
    picks = json.loads((root / "retrain-s1" / "picks.json").read_text())
    assert len(picks) == 1 and picks[0]["macs"] <= 500_000
    for name in ("finetune5", "retrain15"):
        final = json.loads((root / "retrain-s1" / f"{name}-500K" / "final.json").read_text())
        assert 0 < final["subnet"]["test_top1"] <= 100
    table = analyze.retraining(records)  # from the records alone
    row = next(line for line in table.splitlines() if line.startswith("| 500K"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    inherited = [json.loads((root / f"retrain-s{s}" / "picks.json").read_text())[0]["test_top1"] for s in (0, 1)]
    assert cells[1].startswith(f"{sum(inherited) / 2:.2f}")  # mean ± sd of specialize's own test top-1
    assert all("[" in c for c in cells[4:])  # three paired differences with their intervals


def test_a_pick_that_answers_several_budgets_is_trained_once_and_read_by_each(tmp_path):
    """A budget is a cap: a larger budget may answer with a smaller one's subnet. Its runs are
    the smaller budget's; distinct picks are each trained under the first budget that chose them."""
    arch_a, arch_b = {"embed_dim": 96, "depth": 4}, {"embed_dim": 192, "depth": 4}
    picks = [{"budget": 25e6, "arch": arch_b, "test_top1": 80.0},  # specialize's order need not be the budgets'
             {"budget": 8e6, "arch": arch_a, "test_top1": 70.0},
             {"budget": 15e6, "arch": dict(reversed(list(arch_a.items()))), "test_top1": 70.0}]
    assert retrain.trained_under(picks, ("8M", "15M", "25M")) == {"8M": "8M", "15M": "8M", "25M": "25M"}
    with pytest.raises(ValueError, match="no answer for 30M"):
        retrain.trained_under(picks, ("8M", "30M"))
    folder = tmp_path / "retrain-s0"
    folder.mkdir()
    (folder / "picks.json").write_text(json.dumps(picks))
    jobs = retrain.subnet_jobs(folder, seed=0)
    assert [job.run.name for job in jobs] == ["finetune5-8M", "finetune5-25M", "retrain15-8M", "retrain15-25M"]
    for name, figure in (("finetune5-8M", 75.0), ("finetune5-25M", 85.0), ("retrain15-8M", 76.0),
                         ("retrain15-25M", 86.0)):
        (folder / name).mkdir()
        (folder / name / "final.json").write_text(json.dumps({"subnet": {"test_top1": figure}}))
    records = tmp_path / "records"
    record.write_retraining(folder, records)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in analyze.retraining(records).splitlines() if line.startswith("| ") and "M |" in line}
    assert rows["15M"][1:4] == ["70.00", "75.00", "76.00"]  # 15M reads 8M's runs
    assert rows["25M"][1:4] == ["80.00", "85.00", "86.00"]
    assert "seed 0: 15M as 8M" in analyze.retraining(records)
    # A machine lost since: the runs are gone, the picks made again; the record keeps their figures.
    for name in ("finetune5-8M", "retrain15-25M"):
        (folder / name / "final.json").unlink()
    record.write_retraining(folder, records)
    assert record.retraining(records, 0)["test_top1"]["retrain15-25M"] == 86.0


def test_analyze_refuses_a_measure_the_study_does_not_plan(tmp_path):
    with pytest.raises(ValueError, match="does not plan"):
        analyze.section("t", ["vitas5", "vitas5patch4"], ["draws", "spread"], tmp_path, tmp_path, "t")
    with pytest.raises(ValueError, match="neither this study nor the currencies study"):
        analyze.section("t", ["vitas5", "nosucharm"], ["draws"], tmp_path, tmp_path, "t")
    # Every section of the report plans only what the evaluations record (no records: "Not yet").
    analyze.main(["--records", str(tmp_path / "none"), "--out", str(tmp_path / "out")])
    assert "Not yet" in (tmp_path / "out" / "report.md").read_text()


def test_ranking_section_reads_a_partial_report_and_prices_the_supernets_first_choice(tmp_path):
    """Correlations against the stand-alone mean, over the subnets with every seed trained; the
    seeds against each other; regret = best stand-alone mean minus that of the supernet's first."""
    subnets = []
    # Four in-band subnets: "a" ranks them in the ground truth's order, "b" in the reverse one.
    for k, (s0, s1) in enumerate([(80.0, 80.4), (81.0, 81.2), (82.0, 81.8), (83.0, 83.4)]):
        subnets.append({"set": "within", "dir": f"/r/within-0{k}", "arch": f"arch{k}", "macs": 14e6 + k,
                        "inherited_test_top1": {"/r/a": 70.0 + k, "/r/b": 70.0 - k},
                        "standalone_by_seed": {"0": s0, "1": s1}})
    subnets.append({"set": "within", "dir": "/r/within-04", "arch": "arch4", "macs": 14e6,  # one seed only: left out
                    "inherited_test_top1": {"/r/a": 99.0, "/r/b": 99.0}, "standalone_by_seed": {"0": 99.0}})
    write_json(tmp_path / "ranking.json", {"runs": ["/r/a", "/r/b"], "init": "scratch", "epochs": 5, "seeds": [0, 1],
                                           "subnets": subnets, "correlations": {}})
    text = analyze.ranking(tmp_path)
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): [c.strip() for c in line.strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| ")}
    assert rows["a", "within"][2].startswith("+1.000") and rows["a", "within"][4] == "0.00"
    assert rows["b", "within"][2].startswith("-1.000")
    assert rows["b", "within"][4] == f"{83.2 - 80.2:.2f}"  # b's first is the worst subnet
    assert rows["stand-alone seed 0 against seed 1", "within"][2].startswith("+1.000")
    assert rows["a", "within"][5] == "4" and "1 of 5 subnets still lack" in text
    assert rows["within-04", "14.00M"][-2] == "-"  # listed, without a mean


def fake_kept(figures: dict[tuple[str, int], float]):
    """A stand-in for evaluate.keep_rows: rows of a run of ``figures`` (arm, seed -> top-1),
    for the subsets of its measures, as the real one keys them."""

    def keep_rows(run, measures, common):
        arm, _, seed = run.name.rpartition("-s")
        top1 = figures[arm, int(seed)]
        rows = {"draws": {"largest": top1 - 1, "8M draws": top1, "8M answer": top1, "s/epoch": 60.0},
                "spread": {"largest": top1 - 1, "8M spread": 0.5, "s/epoch": 60.0},
                "draws,spread": {"largest": top1 - 1, "8M draws": top1, "8M answer": top1, "8M spread": 0.5,
                                 "s/epoch": 60.0}}
        wanted = [",".join(c) for k in (1, 2) for c in itertools.combinations(measures, k)]
        return quality_evaluate.KeptRows(seed=int(seed), checkpoint="c", rows={key: rows[key] for key in wanted},
                                         evaluated_at={"25M": 17.7e6} if arm == "psvit1d5" else {})

    return keep_rows


def test_a_section_pairs_the_recorded_runs_by_seed(tmp_path, monkeypatch):
    """evaluate.py records each run's rows; a section reads the row of the measures it shows and
    pairs each arm with the first by seed; an arm not yet recorded is named, and a record of other
    settings, or of other measures, is refused."""
    figures = {("vitas5", 0): 80.0, ("vitas5", 1): 81.0, ("vitas5", 2): 79.0,
               ("vitas5noidentity", 0): 83.0, ("vitas5noidentity", 1): 83.5, ("vitas5noidentity", 2): 82.5}
    monkeypatch.setattr(record.evaluate, "keep_rows", fake_kept(figures))
    records, out = tmp_path / "records", tmp_path / "out"
    out.mkdir()
    for arm, seed in figures:
        record.write_supernet(tmp_path / f"{arm}-s{seed}", arm, replication_evaluate.measures(arm),
                              analyze.COMMON, records)
    kept = json.loads((records / "vitas5-s2.json").read_text())
    assert (kept["arm"], kept["seed"], list(kept["rows"])) == ("vitas5", 2, ["draws", "spread", "draws,spread"])
    text = analyze.section("t", ["vitas5", "vitas5noidentity", "vitas5patch4"], ["draws"], records, out, "t")
    assert "Not yet recorded: vitas5patch4" in text
    report = json.loads((out / "t.json").read_text())
    assert list(report["runs"]["vitas5"]["2"].items()) == [("largest", 78.0), ("8M draws", 79.0),
                                                           ("8M answer", 79.0), ("s/epoch", 60.0)]
    paired = report["groups"]["vitas5noidentity"]["columns"]["8M answer"]["paired"]
    assert paired["diffs"] == pytest.approx([3.0, 2.5, 3.5]) and paired["significant"]
    with pytest.raises(ValueError, match="records no draws,spread"):  # a mechanism arm records draws only
        record.supernet_rows(records, "vitas5noidentity", (0, 1, 2), ["spread", "draws"], analyze.COMMON)
    with pytest.raises(ValueError, match="was evaluated with"):
        record.supernet_rows(records, "vitas5", (0, 1, 2), ["draws"], ["--budgets", "9M"])
    with pytest.raises(ValueError, match="should be named vitas5patch4-s2"):
        record.write_supernet(tmp_path / "vitas5-s2", "vitas5patch4", "draws", analyze.COMMON, records)


def test_a_budget_evaluated_at_the_largest_subnet_is_named_in_its_section(tmp_path, monkeypatch):
    figures = {("autoformer5", s): 80.0 + s for s in (0, 1)} | {("psvit1d5", s): 83.0 + s for s in (0, 1)}
    monkeypatch.setattr(record.evaluate, "keep_rows", fake_kept(figures))
    records = tmp_path / "records"
    for arm, seed in figures:
        record.write_supernet(tmp_path / f"{arm}-s{seed}", arm, "draws,spread", analyze.COMMON, records)
    text = analyze.section("t", ["autoformer5", "psvit1d5"], ["draws", "spread"], records, tmp_path, "t")
    assert "psvit1d5-s1: 25M evaluated at 17,700,000 MACs, its space's largest subnet." in text


def test_evaluating_a_run_records_it(tmp_path, monkeypatch):
    """The study's evaluation records each run as soon as it is evaluated, under --records."""
    root, records = tmp_path / "replication", tmp_path / "records"
    (root / "wide5-s1").mkdir(parents=True)
    (root / "wide5-s1" / "final.json").write_text("{}")
    evaluated = []
    monkeypatch.setattr(quality_evaluate, "main", lambda argv: evaluated.append(argv))
    monkeypatch.setattr(record.evaluate, "keep_rows", fake_kept({("wide5", 1): 70.0}))
    replication_evaluate.main([str(root), "--supernets", str(tmp_path / "c"), "--arms", "wide5",
                               "--records", str(records)])
    assert len(evaluated) == 1 and "draws,spread" in evaluated[0]
    assert json.loads((records / "wide5-s1.json").read_text())["rows"]["draws,spread"]["8M draws"] == 70.0
    assert not (records / "wide5-s0.json").exists()  # not trained: not evaluated, not recorded


def test_evaluation_plans_the_arms_chosen_where_each_arm_lives(tmp_path, monkeypatch, capsys):
    planned = {}
    monkeypatch.setattr(replication_evaluate.evaluate, "evaluate_as_finished",
                        lambda plan, common, watch, evaluated: planned.update(plan))
    root, supernets = tmp_path / "replication", tmp_path / "currencies"
    replication_evaluate.main([str(root), "--supernets", str(supernets), "--arms", "wide5,vuniform16"])
    assert planned == {**{root / f"wide5-s{s}": "draws,spread" for s in (0, 1, 2)},
                       **{supernets / f"vuniform16-s{s}": "draws,cloud" for s in (0, 1, 2)}}
    with pytest.raises(SystemExit):
        replication_evaluate.main([str(root), "--supernets", str(supernets), "--arms", "wide6"])
    assert "unknown arms ['wide6']" in capsys.readouterr().err


def test_a_run_whose_figures_are_recorded_is_not_trained_again(tmp_path, monkeypatch, capsys):
    """A study resumed on another machine trains only the runs it has no record of."""
    from benchmarks.lib import jobs

    trained = []
    monkeypatch.setattr(jobs, "run_jobs", lambda planned, lanes: trained.extend(planned) or [0])
    monkeypatch.setattr(record, "RECORDS", tmp_path / "records")
    write_json(tmp_path / "records" / "vitas5patch4-s1.json", {"arm": "vitas5patch4"})
    with pytest.raises(SystemExit):
        replication_train.main([str(tmp_path / "runs"), "--arms", "vitas5,vitas5patch4"])
    assert [job.run.name for job in trained] == ["vitas5-s0", "vitas5patch4-s0", "vitas5-s1", "vitas5-s2",
                                                 "vitas5patch4-s2"]
    assert "1 runs skipped: their figures are kept" in capsys.readouterr().out
