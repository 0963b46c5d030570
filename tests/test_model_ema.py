"""Supernets construct like any module (no dispatching ``__new__``), so whatever copies a model
works on every family: ``copy.deepcopy``, ``pickle``, timm's ``ModelEmaV3``, torch's
``AveragedModel``; and ``train.model_ema`` keeps, checkpoints and evaluates a moving average."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
import torch
from timm.utils import ModelEmaV3
from torch.optim.swa_utils import AveragedModel

from focusformer.config import load_config
from focusformer.spaces import create_supernet, get_family
from focusformer.training.checkpoint import load_checkpoint, load_supernet
from focusformer.training.trainer import Trainer

CONFIGS = ["digits", "vitas-digits", "psvit-digits"]


def _logits(supernet, space, images):
    with torch.no_grad():
        return supernet.eval()(images, space.largest())


@pytest.mark.parametrize("name", CONFIGS)
def test_every_familys_supernet_copies_pickles_and_averages(name, space_of, randomize):
    space = space_of(name)
    supernet = randomize(create_supernet(space), seed=1).eval()
    assert type(supernet) is get_family(space.family).supernet
    images = torch.randn(2, space.in_chans, space.image_size, space.image_size)
    expected = _logits(supernet, space, images)
    for copied in (copy.deepcopy(supernet), pickle.loads(pickle.dumps(supernet)),
                   ModelEmaV3(supernet).module, AveragedModel(supernet).module):
        assert copied is not supernet and type(copied) is type(supernet)
        torch.testing.assert_close(_logits(copied, space, images), expected, rtol=0, atol=0)
    ema = ModelEmaV3(supernet, decay=0.5)
    with torch.no_grad():
        for p in supernet.parameters():
            p.add_(1.0)
    ema.update(supernet)
    moved = next(n for n, p in supernet.named_parameters() if p.numel() > 1)
    half = dict(ema.module.named_parameters())[moved] - dict(supernet.named_parameters())[moved]
    torch.testing.assert_close(half, torch.full_like(half, -0.5))  # halfway between old and new


EMA = ["train.epochs=2", "train.batch_size=128", "train.model_ema=true", "train.model_ema_decay=0.99",
       "train.sampler=uniform"]


def test_model_ema_is_evaluated_checkpointed_and_resumed_bit_for_bit(tmp_path):
    config = load_config("digits", EMA)
    whole = Trainer(config, tmp_path / "whole", progress=False)
    whole.fit()
    payload = load_checkpoint(tmp_path / "whole")
    live, averaged = payload["model"], payload["model_ema"]
    assert any(not torch.equal(live[k], averaged[k]) for k in live)  # the average is not the live weights
    # Specialize, search and export read the average; final.json reports it.
    for name, tensor in load_supernet(tmp_path / "whole").state_dict().items():
        assert torch.equal(tensor, averaged[name]), name
    final = json.loads((tmp_path / "whole" / "final.json").read_text())
    assert final["largest"]["test_top1"] == whole._scorer(whole.data.test).score([config.space.largest()])[0]
    assert whole.evaluated is whole.ema.module
    # Stopped after an epoch and resumed: the same live and averaged weights, bit for bit.
    Trainer(config, tmp_path / "split", progress=False).fit(until_epoch=1)
    resumed = Trainer.resume(tmp_path / "split", progress=False)
    resumed.fit()
    again = load_checkpoint(tmp_path / "split")
    for key in ("model", "model_ema"):
        for name, tensor in payload[key].items():
            assert torch.equal(tensor, again[key][name]), (key, name)


def test_without_model_ema_nothing_is_averaged(tmp_path):
    trainer = Trainer(load_config("digits", ["train.epochs=1", "train.sampler=uniform"]), tmp_path, progress=False)
    assert trainer.ema is None and trainer.evaluated is trainer.network
    trainer.fit()
    assert "model_ema" not in load_checkpoint(tmp_path)
