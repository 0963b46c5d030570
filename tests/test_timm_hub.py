"""Every export is a timm model folder: ``timm.create_model("local-dir:DIR", pretrained=True)`` builds
the same model, with the same weights, as ``focusformer.load_subnet(DIR)``, for every family."""

from __future__ import annotations

import json

import pytest
import timm
import torch

from focusformer import load_subnet
from focusformer.config import load_config
from focusformer.export import save_export, save_subnet
from focusformer.hub import ENTRY_POINT, Provenance
from focusformer.spaces import create_supernet

CONFIGS = ["digits", "vitas-digits", "psvit-digits"]


def _export(name, tmp_path, randomize, provenance=Provenance()):
    config = load_config(name)
    space = config.space
    supernet = randomize(create_supernet(space), seed=3).eval()
    arch = space.sample(5)
    folder = tmp_path / name
    save_subnet(supernet.extract(arch), folder, provenance=provenance)
    return config, arch, folder


@pytest.mark.parametrize("name", CONFIGS)
def test_an_export_of_every_family_loads_through_timm_with_the_same_logits(name, tmp_path, randomize):
    config, arch, folder = _export(name, tmp_path, randomize)
    space = config.space
    images = torch.randn(3, space.in_chans, space.image_size, space.image_size)
    ours = load_subnet(folder)
    theirs = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert type(theirs) is type(ours) and theirs.arch == arch
    with torch.no_grad():
        torch.testing.assert_close(theirs(images), ours(images), rtol=0, atol=0)
    # pretrained=False is timm's "the architecture, fresh weights"; a new head for other classes
    fresh = timm.create_model(f"local-dir:{folder}")
    assert any(not torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), ours.state_dict().values()))
    five = timm.create_model(f"local-dir:{folder}", pretrained=True, num_classes=5)
    assert five(images).shape == (3, 5)
    body = [k for k in ours.state_dict() if not k.startswith("head.")]
    assert all(torch.equal(five.state_dict()[k], ours.state_dict()[k]) for k in body)


def test_the_folder_holds_timms_config_and_a_model_card(tmp_path, randomize):
    config = load_config("digits")
    provenance = Provenance.of_run(config, ["focusformer-specialize", "--checkpoint", "runs/x", "--budget", "500K"],
                                   budget="500K MACs", search_val_top1=91.25, test_top1=90.5)
    _, arch, folder = _export("digits", tmp_path, randomize, provenance)
    timm_config = json.loads((folder / "config.json").read_text())
    assert timm_config["architecture"] == ENTRY_POINT and timm_config["num_classes"] == 10
    assert timm_config["model_args"]["arch"] == arch.to_dict()
    assert timm_config["pretrained_cfg"]["input_size"] == [1, 8, 8]
    assert timm_config["pretrained_cfg"]["mean"] == list(provenance.mean) and provenance.mean
    card = (folder / "README.md").read_text()
    for text in ("digits", str(arch), "500K MACs", "91.25%", "90.50%",
                 "focusformer-specialize --checkpoint runs/x --budget 500K", "local-dir:"):
        assert text in card, text


def test_an_onnx_export_has_a_card_and_no_timm_config(tmp_path, randomize):
    pytest.importorskip("onnxscript")
    space = load_config("digits").space
    supernet = randomize(create_supernet(space), seed=3).eval()
    save_export(supernet.extract(space.largest()), tmp_path / "onnx", "onnx")
    assert (tmp_path / "onnx" / "README.md").is_file() and not (tmp_path / "onnx" / "config.json").exists()


def test_the_entry_point_alone_says_how_to_use_it():
    with pytest.raises(ValueError, match="local-dir:DIR"):
        timm.create_model(ENTRY_POINT)
