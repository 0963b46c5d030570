"""benchmarks/retrain_table.py on a one-epoch vitas-digits study: each figure comes from where it should."""

from __future__ import annotations

import json

import pytest
from benchmark_modules import benchmark_module

from focusformer.budget import parse_budget
from focusformer.cli import specialize as specialize_cli
from focusformer.cli import train as train_cli


@pytest.fixture(scope="module")
def table():
    with benchmark_module("retrain_table") as module:
        yield module


def test_inherited_is_the_export_specialize_reported_and_runs_are_their_final_json(table, tmp_path, capsys):
    supernet = tmp_path / "supernet"
    assert train_cli.main(["--config", "vitas-digits", "--output", str(supernet), "--epochs", "1",
                           "--sampler", "uniform", "--no-progress"]) == 0
    root = tmp_path / "study" / "s0"
    capsys.readouterr()
    assert specialize_cli.main(["--checkpoint", str(supernet), "--budgets", "0.3M,0.6M", "--draws", "uniform",
                                "--json", "--export", str(root / "picks"), "--no-progress"]) == 0
    reported = json.loads(capsys.readouterr().out)
    finals = {}
    for label in ("300K", "600K"):
        for init, epochs in (("inherited", 1), ("scratch", 2)):
            run = root / f"{label}-{init}-{epochs}ep"
            assert train_cli.main(["--subnet", str(root / "picks" / label), "--init", init, "--epochs", str(epochs),
                                   "--output", str(run), "--no-progress"]) == 0
            finals[label, init] = json.loads((run / "final.json").read_text())["subnet"]["test_top1"]
    out = tmp_path / "table.json"
    assert table.main([str(root), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())[str(root)]
    assert sorted(rows) == ["300K", "600K"]
    assert [row["macs"] for row in rows.values()] == sorted(row["macs"] for row in rows.values())  # cheapest first
    by_budget = {r["budget"]: r for r in reported}
    for label, row in rows.items():
        winner = by_budget[parse_budget(label).value]
        assert row["macs"] == winner["macs"]
        assert row["inherited"] == pytest.approx(winner["test_top1"], abs=1e-9)
        assert row["fine-tuned"] == finals[label, "inherited"] and row["fine_tune_epochs"] == 1
        assert row["retrained"] == finals[label, "scratch"] and row["retrain_epochs"] == 2
    printed = capsys.readouterr().out
    assert "| 300K | 1 |" in printed and "fine-tuned - retrained" in printed


def test_refuses_a_directory_without_picks(table, tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        table.main([str(tmp_path)])
    assert error.value.code == 2 and "no picks/" in capsys.readouterr().err
