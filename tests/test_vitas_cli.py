"""Every command end to end on a ViTAS space (vitas-digits): train with each sampler, resume,
specialize, search, export and plot, and ViTAS-specific bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from focusformer import count_macs, load_subnet
from focusformer.cli import export as export_cli
from focusformer.cli import plot as plot_cli
from focusformer.cli import search as search_cli
from focusformer.cli import specialize as specialize_cli
from focusformer.cli import train as train_cli
from focusformer.config import load_config
from focusformer.spaces import ViTASArch
from focusformer.training.checkpoint import load_supernet
from focusformer.training.trainer import Trainer

FOCUS = ["train.epochs=3", "train.lr=5e-3", "train.warmup_epochs=1", "train.sampler=focus",
         "focus.update_every=10", "focus.eval_candidates=4", "focus.eval_images=64", "focus.policy_steps=3"]


@pytest.fixture(scope="module")
def focus_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("vitas") / "focus"
    Trainer(load_config("vitas-digits", FOCUS), run, progress=False).fit()
    return run


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name


@pytest.mark.parametrize("overrides", [
    ["train.sampler=uniform", "train.target_budgets=150K,400K"],
    ["train.sampler=sandwich"],
    FOCUS[1:],
])
def test_training_resumes_exactly_with_every_sampler(overrides, tmp_path):
    config = load_config("vitas-digits", overrides + ["train.epochs=2"])
    whole = Trainer(config, tmp_path / "whole", progress=False)
    whole.fit()
    Trainer(config, tmp_path / "split", progress=False).fit(until_epoch=1)
    resumed = Trainer.resume(tmp_path / "split", progress=False)
    resumed.fit()
    _same_state(whole.supernet, resumed.supernet)
    assert json.loads((tmp_path / "whole" / "final.json").read_text())["largest"]["arch"]["patch_size"] == 2


def test_uniform_with_target_budgets_trains_subnets_near_them():
    config = load_config("vitas-digits", ["train.sampler=uniform", "train.target_budgets=150K"])
    from focusformer.sampling.strategies import build_strategy

    strategy = build_strategy(config, total_steps=10, score=None)
    (calibration,) = strategy.calibrations
    assert 0 < calibration.identity_prob < 1 and 0.9 * 150e3 <= calibration.mean_macs <= 150e3
    macs = [count_macs(strategy.archs_for_step(step)[0], config.space) for step in range(400)]
    plain = build_strategy(load_config("vitas-digits", ["train.sampler=uniform"]), total_steps=10, score=None)
    plain_macs = [count_macs(plain.archs_for_step(step)[0], config.space) for step in range(400)]
    assert np.mean(macs) < 0.8 * np.mean(plain_macs)
    assert 0.8 * 150e3 <= np.mean(macs) <= 1.1 * 150e3


def test_specialize_search_export_and_plot(focus_run, tmp_path, capsys):
    space = load_config("vitas-digits").space
    assert specialize_cli.main(["--checkpoint", str(focus_run), "--budget", "300K", "--json",
                                "--candidates", "8", "--export", str(tmp_path / "spec")]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    arch = space.arch_from_dict(record["arch"])
    assert isinstance(arch, ViTASArch) and record["macs"] == count_macs(arch, space) <= 300e3

    supernet = load_supernet(focus_run)
    model = load_subnet(tmp_path / "spec")
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), supernet(x, arch), atol=1e-5, rtol=0)

    assert search_cli.main(["--checkpoint", str(focus_run), "--budget", "300K", "--json", "--population", "8",
                            "--generations", "2", "--parents", "3", "--mutations", "4", "--crossovers", "4"]) == 0
    (found,) = json.loads(capsys.readouterr().out)
    assert found["macs"] <= 300e3 and isinstance(space.arch_from_dict(found["arch"]), ViTASArch)

    arch_file = tmp_path / "arch.json"
    arch_file.write_text(ViTASArch(4, 32, (None, (2, 96, 96), None, (4, 96, 48))).to_json())
    assert export_cli.main(["--checkpoint", str(focus_run), "--arch", str(arch_file),
                            "--output", str(tmp_path / "mine")]) == 0
    exported = json.loads((tmp_path / "mine" / "arch.json").read_text())
    assert exported["space"]["family"] == "vitas" and exported["blocks"][0] is None
    assert len(load_subnet(tmp_path / "mine").blocks) == 2  # identity layers dropped

    assert plot_cli.main([str(focus_run), "--output", str(tmp_path / "front.png"), "--cloud", "6"]) == 0
    assert (tmp_path / "front.png").stat().st_size > 0


@pytest.mark.parametrize(("args", "message"), [
    (["--config", "vitas-digits", "--set", "space.qkv_dim=[100]"], "not 3 x an attention width"),
    (["--config", "vitas-digits", "--set", "space.num_heads=[5]"], "split no qkv_dim choice"),
    (["--config", "vitas-digits", "--set", "space.patch_size=[3]"], "does not divide image_size 8"),
    (["--config", "vitas-digits", "--set", "space.family=nasvit"], "is not allowed"),
    (["--config", "vitas-digits", "--set", "space.head_dim=8"], "unknown key 'head_dim'"),
    (["--config", "vitas-digits", "--target-budgets", "1G"], "outside this space's range"),
    (["--sampler", "uniform", "--target-budgets", "300K"], "has none"),
])
def test_bad_vitas_configs_are_one_line_errors(args, message, tmp_path, capsys):
    assert train_cli.main([*args, "--output", str(tmp_path / "r")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("focusformer-train: error:") and message in lines[0], lines
    assert not (tmp_path / "r").exists()
