"""benchmarks/quality/ranking.py on one-epoch vitas-digits supernets: several supernets, one ground truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from scipy import stats

from focusformer.cli import train as train_cli


@pytest.fixture(scope="module")
def bench():
    from benchmarks.quality import ranking

    return ranking


def _train(root: Path, config: str, seed: int) -> Path:
    run = root / f"{config}-s{seed}"
    assert train_cli.main(["--config", config, "--output", str(run), "--epochs", "1", "--seed", str(seed),
                           "--sampler", "uniform", "--no-progress"]) == 0
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    return _train(root, "vitas-digits", 0), _train(root, "vitas-digits", 1)


def test_two_supernets_share_one_standalone_ground_truth(bench, runs, tmp_path, capsys, monkeypatch):
    root = tmp_path / "ranking"
    args = ["--run", str(runs[0]), "--run", str(runs[1]), "--root", str(root), "--spread", "3", "--within", "3",
            "--budget", "0.3M", "--epochs", "1", "--jobs", "2"]
    assert bench.main(args) == 0
    report = json.loads((root / "ranking.json").read_text())
    printed = capsys.readouterr().out
    assert report["runs"] == [str(runs[0]), str(runs[1])] and len(report["subnets"]) == 6
    for subnet in report["subnets"]:
        assert set(subnet["inherited_test_top1"]) == set(report["runs"])
        standalone = json.loads(next(Path(subnet["dir"]).glob("scratch-1ep-s0/final.json")).read_text())
        assert subnet["standalone_test_top1"] == standalone["subnet"]["test_top1"]
        # The export carries the first supernet's better side, as arch.json records.
        arch = json.loads((Path(subnet["dir"]) / "export" / "arch.json").read_text())
        assert arch["side"] == subnet["side"][str(runs[0])]
    # Two supernets of different seeds score the same subnets differently; both get correlations.
    firsts = [s["inherited_test_top1"][str(runs[0])] for s in report["subnets"]]
    seconds = [s["inherited_test_top1"][str(runs[1])] for s in report["subnets"]]
    assert firsts != seconds
    for run in report["runs"]:  # each set's correlations, from its own subnets' figures
        assert set(report["correlations"][run]) == {"spread", "within"}
        for set_name, reported in report["correlations"][run].items():
            members = [s for s in report["subnets"] if s["set"] == set_name]
            inherited = [s["inherited_test_top1"][run] for s in members]
            standalone = [s["standalone_test_top1"] for s in members]
            assert reported["subnets"] == len(members) == 3
            assert reported["kendall_tau"] == pytest.approx(stats.kendalltau(inherited, standalone)[0], nan_ok=True)
            assert reported["spearman_rho"] == pytest.approx(stats.spearmanr(inherited, standalone)[0], nan_ok=True)
            # What shipping the supernet's favourite of the set loses against the set's best.
            first = max(range(len(members)), key=inherited.__getitem__)
            assert reported["regret"] == pytest.approx(max(standalone) - standalone[first])
    assert printed.count("Kendall tau") == 4 and printed.count("regret of its first") == 4
    assert report["seed_agreement"] == {}  # one stand-alone seed: nothing to agree with

    # A second call finds the stand-alone runs done and trains nothing again.
    finals = {p: p.stat().st_mtime_ns for p in root.glob("*/scratch-1ep-s0/final.json")}
    assert bench.main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in root.glob("*/scratch-1ep-s0/final.json")} == finals

    # --json puts the report elsewhere, so a second study on the same runs keeps the first's.
    first = (root / "ranking.json").read_text()
    assert bench.main([*args, "--json", str(tmp_path / "again.json")]) == 0
    assert (root / "ranking.json").read_text() == first
    assert json.loads((tmp_path / "again.json").read_text())["correlations"] == report["correlations"]

    # The stand-alone runs' folders lost (another machine): their figures are in the report, so
    # nothing is trained again and the correlations are the same.
    for final in root.glob("*/scratch-1ep-s0"):
        shutil.rmtree(final)
    monkeypatch.setattr(bench.subprocess, "run", None)
    assert bench.main(args) == 0
    assert json.loads((root / "ranking.json").read_text())["correlations"] == report["correlations"]


def test_a_fine_tune_is_scored_against_another_reports_standalone_runs(bench, runs, tmp_path, capsys):
    """--truth: a one-epoch fine-tune's figures, and the supernet's inherited ones, against the
    stand-alone means of another report on the same subnets (matched by arch)."""
    common = ["--run", str(runs[0]), "--spread", "3", "--within", "3", "--budget", "0.3M", "--epochs", "1",
              "--jobs", "2"]
    assert bench.main([*common, "--root", str(tmp_path / "scratch")]) == 0
    truth_path = tmp_path / "scratch" / "ranking.json"
    truth = {s["arch"]: s["standalone_test_top1"] for s in json.loads(truth_path.read_text())["subnets"]}
    assert bench.main([*common, "--root", str(tmp_path / "ft"), "--init", "inherited", "--truth", str(truth_path)]) == 0
    report = json.loads((tmp_path / "ft" / "ranking.json").read_text())
    assert report["truth"]["label"] == "inherited-1ep"
    for set_name in ("spread", "within"):
        members = [s for s in report["subnets"] if s["set"] == set_name]
        finetuned = [s["standalone_test_top1"] for s in members]
        reference = [truth[s["arch"]] for s in members]
        assert finetuned != reference  # another training, other figures
        reported = report["truth"]["correlations"]["inherited-1ep"][set_name]
        assert reported["kendall_tau"] == pytest.approx(stats.kendalltau(finetuned, reference)[0], nan_ok=True)
        inherited = report["truth"]["correlations"][str(runs[0])][set_name]
        assert inherited["spearman_rho"] == pytest.approx(
            stats.spearmanr([s["inherited_test_top1"][str(runs[0])] for s in members], reference)[0], nan_ok=True)
    assert "against " in capsys.readouterr().out
    with pytest.raises(SystemExit) as error:
        bench.main([*common, "--root", str(tmp_path / "x"), "--truth", str(tmp_path / "none.json")])
    assert error.value.code == 2


def test_refuses_mixed_spaces_and_fine_tuning_several_supernets(bench, runs, tmp_path, capsys):
    digits = _train(tmp_path, "digits", 0)
    with pytest.raises(SystemExit) as error:
        bench.main(["--run", str(runs[0]), "--run", str(digits), "--root", str(tmp_path / "r")])
    assert error.value.code == 2 and "another space" in capsys.readouterr().err
    with pytest.raises(SystemExit) as error:
        bench.main(["--run", str(runs[0]), "--run", str(runs[1]), "--root", str(tmp_path / "r"), "--init", "inherited"])
    assert error.value.code == 2 and "give one --run" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
