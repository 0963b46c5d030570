"""Every command end to end on a ViTAS space (vitas-digits): train with each sampler, resume,
specialize, search, export and plot, and ViTAS-specific bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from family_checks import assert_resumes_exactly, specialize_and_search

from focusformer import count_macs, load_subnet
from focusformer.cli import export as export_cli
from focusformer.cli import plot as plot_cli
from focusformer.cli import train as train_cli
from focusformer.config import load_config
from focusformer.sampling.specialize import sampler_from_checkpoint
from focusformer.spaces import ViTASArch
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint
from focusformer.training.trainer import Trainer

# focus.min_tau=-1: the policy updates from the first measurement on (three epochs of digits are
# too few for the predictor to rank reliably); these tests are about the commands, not learning.
FOCUS = ["train.epochs=3", "train.lr=5e-3", "train.warmup_epochs=1", "train.sampler=focus",
         "focus.update_every=10", "focus.eval_candidates=4", "focus.eval_images=64", "focus.policy_steps=3",
         "focus.min_tau=-1"]


@pytest.fixture(scope="module")
def focus_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("vitas") / "focus"
    Trainer(load_config("vitas-digits", FOCUS), run, progress=False).fit()
    return run


@pytest.mark.parametrize("overrides", [
    ["train.sampler=uniform", "train.target_budgets=250K,400K"],
    ["train.sampler=uniform", "train.sandwich=true"],
    FOCUS[1:],
])
def test_training_resumes_exactly_with_every_sampler(overrides, tmp_path):
    config = load_config("vitas-digits", overrides + ["train.epochs=2"])
    whole = assert_resumes_exactly(config, tmp_path)
    assert json.loads((whole / "final.json").read_text())["largest"]["arch"]["patch_size"] == 2


def test_a_balanced_focus_run_resumes_exactly_and_specialize_keeps_it_balanced(tmp_path):
    config = load_config("vitas-digits", FOCUS[1:] + ["train.epochs=2", "focus.balanced=[patch_size]"])
    whole = assert_resumes_exactly(config, tmp_path)
    payload = load_checkpoint(whole)
    sampler = sampler_from_checkpoint(payload, config_from_checkpoint(payload, whole), str(whole))
    assert sampler.balanced_slots == {0} and payload["strategy"]["policy_updates"] > 0


def test_uniform_with_target_budgets_trains_subnets_near_them():
    config = load_config("vitas-digits", ["train.sampler=uniform", "train.target_budgets=250K"])
    from focusformer.sampling.strategies import build_strategy

    strategy = build_strategy(config, total_steps=10, score=None)
    (calibration,) = strategy.draws.calibrations
    assert 0 < calibration.identity_prob < 1 and 0.9 * 250e3 <= calibration.mean_macs <= 250e3
    macs = [count_macs(strategy.archs_for_step(step)[0], config.space) for step in range(400)]
    plain = build_strategy(load_config("vitas-digits", ["train.sampler=uniform"]), total_steps=10, score=None)
    plain_macs = [count_macs(plain.archs_for_step(step)[0], config.space) for step in range(400)]
    assert np.mean(macs) < 0.8 * np.mean(plain_macs)
    assert 0.8 * 250e3 <= np.mean(macs) <= 1.1 * 250e3


def test_specialize_search_export_and_plot(focus_run, tmp_path, capsys):
    space = load_config("vitas-digits").space
    specialized, found = specialize_and_search(focus_run, space, tmp_path / "spec", capsys)
    assert isinstance(specialized, ViTASArch) and isinstance(found, ViTASArch)

    arch_file = tmp_path / "arch.json"
    arch_file.write_text(ViTASArch(4, 32, ((2, 96, 96), None, None, (4, 96, 48))).to_json())
    assert export_cli.main(["--checkpoint", str(focus_run), "--arch", str(arch_file),
                            "--output", str(tmp_path / "mine")]) == 0
    exported = json.loads((tmp_path / "mine" / "arch.json").read_text())
    assert exported["space"]["family"] == "vitas" and exported["blocks"][1] is None
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
])
def test_bad_vitas_configs_are_one_line_errors(args, message, tmp_path, capsys):
    assert train_cli.main([*args, "--output", str(tmp_path / "r")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("focusformer-train: error:") and message in lines[0], lines
    assert not (tmp_path / "r").exists()
