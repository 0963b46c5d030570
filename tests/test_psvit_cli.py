"""Every command end to end on PSViT spaces (psvit-digits, 1d and 2d pooling): train with each
sampler, resume, specialize, search, export and plot, and PSViT-specific bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from family_checks import assert_resumes_exactly, images, specialize_and_search

from focusformer import load_subnet
from focusformer.cli import export as export_cli
from focusformer.cli import plot as plot_cli
from focusformer.cli import train as train_cli
from focusformer.config import load_config
from focusformer.spaces import PSViTArch, PSViTStage
from focusformer.training.checkpoint import load_supernet
from focusformer.training.trainer import Trainer

# The policy steers from its first update (no tau gate): a 3-epoch digits run is too short for the
# predictor's ranking to pass the gate reliably, and these tests are about the commands after it.
FOCUS = ["train.epochs=3", "train.lr=5e-3", "train.warmup_epochs=1", "train.sampler=focus",
         "focus.update_every=10", "focus.eval_candidates=4", "focus.eval_images=64", "focus.policy_steps=3",
         "focus.min_tau=-1", "focus.stable_updates=1"]


@pytest.fixture(scope="module", params=["1d", "2d"])
def focus_run(request, tmp_path_factory) -> tuple[str, Path]:
    run = tmp_path_factory.mktemp(f"psvit-{request.param}") / "focus"
    Trainer(load_config("psvit-digits", FOCUS + [f"space.pooling={request.param}"]), run, progress=False).fit()
    return request.param, run


@pytest.mark.parametrize("pooling", ["1d", "2d"])
@pytest.mark.parametrize("overrides", [
    ["train.sampler=uniform", "train.target_budgets=300K"],
    ["train.sampler=uniform", "train.sandwich=true"],
    FOCUS[1:],
], ids=["uniform", "sandwich", "focus"])
def test_training_resumes_exactly_with_every_sampler(pooling, overrides, tmp_path):
    config = load_config("psvit-digits", overrides + ["train.epochs=2", f"space.pooling={pooling}"])
    whole = assert_resumes_exactly(config, tmp_path)
    largest = json.loads((whole / "final.json").read_text())["largest"]["arch"]
    assert [s["width"] for s in largest["stages"]] == [24, 32, 48]


def test_specialize_search_export_and_plot(focus_run, tmp_path, capsys):
    pooling, run = focus_run
    space = load_config("psvit-digits", [f"space.pooling={pooling}"]).space
    specialized, found = specialize_and_search(run, space, tmp_path / "spec", capsys)
    assert isinstance(specialized, PSViTArch) and isinstance(found, PSViTArch)

    supernet = load_supernet(run)
    x = images(space, batch=4)
    arch_file = tmp_path / "arch.json"
    mine = PSViTArch((PSViTStage(16, 2.0, ("shared", "identity")), PSViTStage(32, 4.0, ("identity", "identity")),
                      PSViTStage(32, 2.0, ("layer", "shared"))))
    arch_file.write_text(mine.to_json())
    assert export_cli.main(["--checkpoint", str(run), "--arch", str(arch_file),
                            "--output", str(tmp_path / "mine")]) == 0
    exported = json.loads((tmp_path / "mine" / "arch.json").read_text())
    assert exported["space"]["family"] == "psvit" and exported["space"]["pooling"] == pooling
    assert exported["stages"][0]["cells"] == ["shared", "identity"]
    loaded = load_subnet(tmp_path / "mine")
    assert [len(s) for s in loaded.stages] == [2, 0, 3]  # identity cells dropped, a pair is two blocks
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), supernet(x, mine), atol=1e-5, rtol=0)

    assert plot_cli.main([str(run), "--output", str(tmp_path / "front.png"), "--cloud", "6"]) == 0
    assert (tmp_path / "front.png").stat().st_size > 0


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "space.widths=[[16, 20], [24], [32]]"], "space.widths[0]: width 20 is not a multiple of head_dim 8"),
    (["--set", "space.widths=[[16], [], [32]]"], "space.widths[1]: stage 1 has no width choices"),
    (["--set", "space.pooling=3d"], "space.pooling: '3d' is not allowed; choose one of '1d', '2d'"),
    (["--set", "space.widths=[[48], [32], [16]]"], "never narrows"),
    (["--set", "space.embed_dim=[16]"], "unknown key 'embed_dim'"),
    (["--target-budgets", "1G"], "outside this space's range"),
])
def test_bad_psvit_configs_are_one_line_errors(args, message, tmp_path, capsys):
    assert train_cli.main(["--config", "psvit-digits", *args, "--output", str(tmp_path / "r")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("focusformer-train: error:") and message in lines[0], lines
    assert not (tmp_path / "r").exists()
