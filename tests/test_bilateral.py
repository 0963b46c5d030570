"""Bilateral weight sharing (ViTAS, from BCNet): every elastic width takes its channels from the left
end of a weight or from the right end; a training step sums both sides' logits; search scores the
mean of both sides; an export carries one side's weights and says which."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from focusformer import count_macs, count_params, load_subnet
from focusformer.cli import export as export_cli
from focusformer.config import load_config
from focusformer.data import load_data
from focusformer.export import save_subnet
from focusformer.search.scoring import CandidateScorer
from focusformer.spaces import SearchSpace, create_supernet
from focusformer.spaces.supernet import Supernet
from focusformer.training.checkpoint import config_from_checkpoint, load_checkpoint
from focusformer.training.trainer import Trainer

FAMILIES = ["digits", "vitas-digits", "psvit-digits", "psvit-digits-2d"]


def _bilateral_space(space_of, name: str) -> SearchSpace:
    if name == "psvit-digits-2d":
        return dataclasses.replace(space_of("psvit-digits"), pooling="2d", weight_sharing="bilateral")
    return dataclasses.replace(space_of(name), weight_sharing="bilateral")


def _archs(space: SearchSpace, count: int = 6) -> list:
    rng = np.random.default_rng(0)
    return [space.largest(), space.smallest(), *(space.sample(rng) for _ in range(count))]


def _images(space: SearchSpace, batch: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(batch, space.in_chans, space.image_size, space.image_size, generator=gen)


@pytest.fixture(params=FAMILIES)
def bilateral(request, space_of, randomize) -> tuple[SearchSpace, Supernet, torch.Tensor]:
    """A bilateral space of each family, its supernet with random weights (eval mode), and images."""
    space = _bilateral_space(space_of, request.param)
    return space, randomize(create_supernet(space)).eval(), _images(space)


def test_supernet_and_export_agree_at_both_sides(bilateral):
    space, supernet, x = bilateral
    with torch.no_grad():
        for arch in _archs(space):
            for side in ("left", "right"):
                dense = supernet.extract(arch, side).eval()
                torch.testing.assert_close(dense(x), supernet(x, arch, side), atol=1e-5, rtol=0)
                # the side leaves the counts alone: the exported model has the arch's parameters
                assert sum(p.numel() for p in dense.parameters()) == count_params(arch, space)
            both = supernet(x, arch, "bilateral")
            torch.testing.assert_close(both, supernet(x, arch, "left") + supernet(x, arch, "right"))


def test_sides_differ_below_full_width_and_agree_at_it(bilateral):
    space, supernet, x = bilateral
    with torch.no_grad():
        largest = space.largest()
        torch.testing.assert_close(supernet(x, largest, "left"), supernet(x, largest, "right"), atol=1e-5, rtol=0)
        smallest = space.smallest()
        assert not torch.allclose(supernet(x, smallest, "left"), supernet(x, smallest, "right"))


def test_right_export_holds_exactly_the_trailing_slices(space_of, randomize):
    """Independent of the slicing code: the trailing rows and columns, read off the parameters."""
    space = _bilateral_space(space_of, "vitas-digits")
    supernet = randomize(create_supernet(space))
    arch = space.smallest()
    block = arch.blocks[0]
    e, a, h, p = arch.embed_dim, block.attn_width, block.mlp_dim, str(arch.patch_size)
    state = supernet.subnet_state_dict(arch, "right")
    layer = supernet.blocks[0]
    qk = layer.attn.qk[str(block.num_heads)].weight.view(2, -1, layer.attn.v.in_features)
    expected = {
        "cls_token": supernet.cls_token[p][..., -e:],
        "pos_embed": supernet.pos_embed[p][..., -e:],
        "patch_embed.proj.weight": supernet.patch_embed[p].proj.weight[-e:],
        "blocks.0.norm1.weight": layer.norm1.weight[-e:],
        "blocks.0.attn.qkv.weight": torch.cat([qk[0, -a:, -e:], qk[1, -a:, -e:], layer.attn.v.weight[-a:, -e:]]),
        "blocks.0.attn.qkv.bias": torch.cat([layer.attn.qk[str(block.num_heads)].bias.view(2, -1)[:, -a:].flatten(),
                                             layer.attn.v.bias[-a:]]),
        "blocks.0.attn.proj.weight": layer.attn.proj.weight[-e:, -a:],
        "blocks.0.mlp.fc1.weight": layer.mlp.fc1.weight[-h:, -e:],
        "blocks.0.mlp.fc1.bias": layer.mlp.fc1.bias[-h:],
        "blocks.0.mlp.fc2.weight": layer.mlp.fc2.weight[-e:, -h:],
        "norm.bias": supernet.norm.bias[-e:],
        "head.weight": supernet.head.weight[:, -e:],
        "head.bias": supernet.head.bias,
    }
    assert e < space.embed_dim[-1] and a < space.qkv_dim[-1] // 3  # the slices are proper ones
    for key, tensor in expected.items():
        assert torch.equal(state[key], tensor), key


def test_weight_sharing_defaults(space_of):
    space = space_of("digits")
    assert space.weight_sharing == "left" and space.sides == ("left",)
    assert load_config("vitas-tiny").space.weight_sharing == "bilateral"


def _tiny_trainer(tmp_path, weight_sharing: str) -> Trainer:
    config = load_config("vitas-digits", overrides=[
        f"space.weight_sharing={weight_sharing}", "train.epochs=1", "train.batch_size=32",
        "train.drop_path=0", "train.mixup=0", "train.cutmix=0", "train.sampler=uniform",
    ])
    return Trainer(config, tmp_path / weight_sharing, progress=False)


def test_bilateral_step_loss_recomputed_independently(tmp_path):
    """One loss on the sum of both sides' logits, recomputed through the two exported dense models."""
    trainer = _tiny_trainer(tmp_path, "bilateral")
    images, labels = next(iter(torch.utils.data.DataLoader(trainer.data.train, batch_size=32)))
    arch = trainer.config.space.sample(np.random.default_rng(3))
    trainer.strategy.archs_for_step = lambda step, loss: [arch]
    dense = [trainer.network.extract(arch, side).train() for side in ("left", "right")]
    smoothing = trainer.config.train.label_smoothing
    with torch.no_grad():
        expected = F.cross_entropy(dense[0](images) + dense[1](images), labels, label_smoothing=smoothing)
    loss = trainer._train_step(images, labels)
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    # ... and the update reached both ends of the sliced weights (layer 0 is a block: min_depth 1)
    trained = trainer.network.blocks[0].mlp.fc1.weight
    h, e = arch.blocks[0].mlp_dim, arch.embed_dim
    assert not torch.equal(trained[:h, :e], dense[0].blocks[0].mlp.fc1.weight)
    assert not torch.equal(trained[-h:, -e:], dense[1].blocks[0].mlp.fc1.weight)


def test_scorer_means_both_sides(tmp_path, space_of, randomize):
    space = _bilateral_space(space_of, "vitas-digits")
    supernet = randomize(create_supernet(space))
    x = _images(space, 40)
    labels = torch.randint(0, space.num_classes, (40,), generator=torch.Generator().manual_seed(2))
    dataset = torch.utils.data.TensorDataset(x, labels)
    scorer = CandidateScorer(supernet, dataset, torch.device("cpu"), batch_size=16, amp=False)
    archs = _archs(space, 3)
    with torch.no_grad():
        by_side = {side: [100.0 * (supernet(x, a, side).argmax(-1) == labels).float().mean().item() for a in archs]
                   for side in ("left", "right")}
    sides = scorer.score_sides(archs)
    for k in range(len(archs)):
        assert sides[k]["left"] == pytest.approx(by_side["left"][k])
        assert sides[k]["right"] == pytest.approx(by_side["right"][k])
    assert scorer.score(archs) == pytest.approx([(l + r) / 2 for l, r in zip(by_side["left"], by_side["right"])])


@pytest.fixture(scope="module")
def bilateral_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("bilateral") / "run"
    config = load_config("vitas-digits", overrides=["space.weight_sharing=bilateral", "train.epochs=1",
                                                    "train.sampler=uniform", "train.batch_size=128"])
    Trainer(config, run, progress=False).fit()
    return run


def test_export_cli_picks_the_better_side_and_records_it(bilateral_run, tmp_path, capsys):
    out = tmp_path / "exported"
    assert export_cli.main(["--checkpoint", str(bilateral_run), "--smallest", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    printed_top1 = {side: float(printed.split(f"{side} ")[1].split("%")[0]) for side in ("left", "right")}
    record = json.loads((out / "arch.json").read_text())
    model = load_subnet(out)
    payload = load_checkpoint(bilateral_run)
    config = config_from_checkpoint(payload, bilateral_run)
    supernet = create_supernet(model.space)
    supernet.load_state_dict(payload["model"])
    # Each side's search-val top-1, counted here from the supernet's logits.
    search_val = load_data(config.data, config.space, config.train).search_val
    correct = {"left": 0, "right": 0}
    with torch.no_grad():
        for images, labels in torch.utils.data.DataLoader(search_val, batch_size=256):
            for side in correct:
                correct[side] += int((supernet.eval()(images, model.arch, side).argmax(1) == labels).sum())
    top1 = {side: 100.0 * n / len(search_val) for side, n in correct.items()}
    assert printed_top1 == pytest.approx(top1, abs=0.006)
    assert record["side"] == ("left" if top1["left"] >= top1["right"] else "right")
    x = _images(model.space)
    with torch.no_grad():
        torch.testing.assert_close(model(x), supernet.eval()(x, model.arch, record["side"]), atol=1e-5, rtol=0)
    assert record["macs"] == count_macs(model.arch, model.space)


def test_export_cli_side_right_on_a_left_run_is_refused(tmp_path, capsys):
    run = tmp_path / "left"
    config = load_config("digits", overrides=["train.epochs=1", "train.sampler=uniform", "train.batch_size=256"])
    Trainer(config, run, progress=False).fit()
    code = export_cli.main(["--checkpoint", str(run), "--largest", "--side", "right", "--output", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "only its left slices were trained" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_save_subnet_records_left_by_default(tmp_path, space_of):
    space = space_of("digits")
    save_subnet(create_supernet(space).extract(space.largest()), tmp_path / "a")
    assert json.loads((tmp_path / "a" / "arch.json").read_text())["side"] == "left"
