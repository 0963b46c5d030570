"""From a trained run to a latency-budgeted, ONNX-exported subnet: focusformer-latency build, then
specialize / search / export with --latency, --lut and --format onnx."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from latency_checks import synthetic_table

from focusformer import count_macs, load_subnet
from focusformer.budget import format_latency
from focusformer.cli import export as export_cli
from focusformer.cli import latency as latency_cli
from focusformer.cli import search as search_cli
from focusformer.cli import specialize as specialize_cli
from focusformer.config import load_config
from focusformer.latency import LatencyTable
from focusformer.onnx_export import INPUT_NAME, ONNX_FILE
from focusformer.training.checkpoint import load_supernet
from focusformer.training.trainer import Trainer

# min_tau -1: the policy is updated whatever its predictor ranks, so the deploy path always has a sampler
FOCUS = ["train.epochs=2", "train.batch_size=128", "focus.update_every=4", "focus.eval_images=32", "focus.min_tau=-1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("deploy") / "run"
    Trainer(load_config("digits", FOCUS), path, progress=False).fit()
    return path


@pytest.fixture(scope="module")
def lut(run, tmp_path_factory) -> tuple[Path, LatencyTable]:
    """A synthetic table of the run's space (known module times; this machine's CPU)."""
    table = synthetic_table(load_config("digits").space, scale=1.2, offset_ms=0.01)
    return table.save(tmp_path_factory.mktemp("lut") / "lut.json"), table


def _middle(table: LatencyTable) -> float:
    costs = table.cost_model(table.space)
    return round((costs.min_cost + costs.max_cost) / 2, 3)


def test_build_writes_a_table_for_the_runs_space(run, tmp_path, capsys):
    out = tmp_path / "lut.json"
    argv = ["build", "--space", str(run), "--warmup", "1", "--repeats", "2", "--calibration", "3",
            "--output", str(out), "--no-progress"]
    assert latency_cli.main(argv) == 0
    assert "21 modules timed" in capsys.readouterr().out
    table = LatencyTable.load(out)
    data = json.loads(out.read_text())
    assert table.space == load_config("digits").space
    assert data["device"] == {"type": "cpu", "name": table.device_name} and table.device_name
    assert data["torch_version"] == torch.__version__
    assert data["timing"] == {"device": "cpu", "batch_size": 1, "threads": 1, "warmup": 1, "repeats": 2}
    assert data["calibration"]["subnets"] == 3
    assert latency_cli.main(argv) == 2  # the table exists: --overwrite to replace it
    assert "already exists" in capsys.readouterr().err


def test_specialize_within_a_latency_budget_exports_onnx(run, lut, tmp_path, capsys):
    path, table = lut
    budget = _middle(table)
    out = tmp_path / "onnx"
    assert specialize_cli.main(["--checkpoint", str(run), "--latency", f"{budget}ms", "--lut", str(path),
                                "--candidates", "6", "--json", "--no-test", "--export", str(out),
                                "--format", "onnx"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    space = table.space
    arch = space.arch_from_dict(result["arch"])
    assert result["budget_kind"] == "latency" and result["budget"] == budget
    assert result["latency_ms"] == pytest.approx(table.predict(arch)) and result["latency_ms"] <= budget
    assert result["measured_latency_ms"] > 0  # timed on this machine, which is the table's
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "arch.json", ONNX_FILE]  # a model card too
    session = onnxruntime.InferenceSession(str(out / ONNX_FILE), providers=["CPUExecutionProvider"])
    images = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = load_supernet(run)(images, arch).numpy()
    np.testing.assert_allclose(session.run(None, {INPUT_NAME: images.numpy()})[0], expected, atol=1e-4, rtol=0)


def test_specialize_table_shows_predicted_and_measured_latency(run, lut, capsys):
    path, table = lut
    assert specialize_cli.main(["--checkpoint", str(run), "--latency", f"{_middle(table)}ms", "--lut", str(path),
                                "--candidates", "3", "--no-test"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:6] == ["method", "budget", "MACs", "params", "latency", "measured"]
    assert format_latency(_middle(table)) in row


def test_search_within_latency_budgets(run, lut, capsys):
    path, table = lut
    low = table.cost_model(table.space).min_cost
    budgets = [round(low * 1.3, 3), _middle(table)]
    assert search_cli.main(["--checkpoint", str(run), "--latency", ",".join(f"{b}ms" for b in budgets),
                            "--lut", str(path), "--method", "random", "--candidates", "8", "--json",
                            "--no-test", "--no-progress"]) == 0
    results = json.loads(capsys.readouterr().out)
    for budget, result in zip(budgets, results):
        arch = table.space.arch_from_dict(result["arch"])
        assert result["latency_ms"] == pytest.approx(table.predict(arch)) and result["latency_ms"] <= budget


def test_a_latency_budget_above_the_tables_largest_subnet_searches_the_whole_space(run, lut, capsys):
    """A table's range depends on the machine: a budget above it is the whole space, with a note."""
    path, table = lut
    largest = table.cost_model(table.space).max_cost
    common = ["--checkpoint", str(run), "--lut", str(path), "--candidates", "3", "--json", "--no-test"]
    assert specialize_cli.main([*common, "--latency", f"{largest * 10}ms"]) == 0
    captured = capsys.readouterr()
    (result,) = json.loads(captured.out)
    assert "admits every subnet" in captured.err and result["budget"] == pytest.approx(largest * 10)
    assert result["latency_ms"] <= largest * (1 + 1e-9)


def test_a_table_measured_elsewhere_predicts_without_measuring(run, lut, tmp_path, capsys):
    path, table = lut
    data = json.loads(path.read_text())
    data["device"]["name"] = "another CPU"
    (tmp_path / "elsewhere.json").write_text(json.dumps(data))
    assert specialize_cli.main(["--checkpoint", str(run), "--latency", f"{_middle(table)}ms",
                                "--lut", str(tmp_path / "elsewhere.json"), "--candidates", "3", "--json",
                                "--no-test"]) == 0
    captured = capsys.readouterr()
    (result,) = json.loads(captured.out)
    assert result["latency_ms"] is not None and result["measured_latency_ms"] is None
    assert "predicted only" in captured.err and "another CPU" in captured.err


def test_export_onnx_command_and_missing_extra(run, tmp_path, capsys, monkeypatch):
    assert export_cli.main(["--checkpoint", str(run), "--smallest", "--output", str(tmp_path / "a"),
                            "--format", "onnx"]) == 0
    assert (tmp_path / "a" / ONNX_FILE).is_file() and (tmp_path / "a" / "arch.json").is_file()
    capsys.readouterr()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    assert export_cli.main(["--checkpoint", str(run), "--smallest", "--output", str(tmp_path / "b"),
                            "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("focusformer-export: error: ONNX export needs onnx") and len(err.splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_overwriting_an_export_in_the_other_format_leaves_one_model(run, tmp_path, capsys):
    """An export replaced in the other format keeps no file of the earlier one, so timm, onnxruntime
    and load_subnet cannot load the earlier model from it."""
    out = tmp_path / "export"
    largest = ["--checkpoint", str(run), "--largest", "--output", str(out)]
    smallest = ["--checkpoint", str(run), "--smallest", "--output", str(out), "--overwrite"]
    assert export_cli.main(largest) == 0
    assert export_cli.main([*smallest, "--format", "onnx"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["README.md", ONNX_FILE, "arch.json"])
    space = load_config("digits").space
    assert json.loads((out / "arch.json").read_text())["macs"] == count_macs(space.smallest(), space)
    assert export_cli.main([*largest, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "arch.json", "config.json", "model.safetensors"]
    assert load_subnet(out).arch == space.largest()
    capsys.readouterr()


def test_writing_inside_a_run_needs_overwrite_and_changes_nothing_of_it(run, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert export_cli.main(["--checkpoint", str(run), "--largest", "--output", str(run)]) == 2
    assert "is the training run" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert export_cli.main(["--checkpoint", str(run), "--largest", "--output", str(run / "largest"),
                            "--overwrite"]) == 0  # said explicitly: allowed
    assert (run / "largest" / "model.safetensors").is_file()
