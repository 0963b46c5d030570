"""Standalone subnet files: save/load round trip, arch files, and every way loading can fail."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from timm.layers import Attention
from timm.models.vision_transformer import VisionTransformer

from focusformer import export as export_module
from focusformer.errors import CheckpointError, ConfigError
from focusformer.export import load_subnet, read_arch_file, save_subnet
from focusformer.spaces import Arch, create_supernet
from focusformer.spaces.counts import count_macs, count_params
from focusformer.spaces.dense import SubnetViT
from focusformer.spaces.supernet import Supernet

ARCH_KEYS = {"embed_dim", "depth", "num_heads", "mlp_ratio"}


@pytest.fixture(scope="module")
def digits(space_of):
    return space_of("digits")


@pytest.fixture(scope="module")
def supernet(digits, randomize):
    torch.manual_seed(0)
    return randomize(create_supernet(digits), seed=5).eval()


@pytest.fixture(scope="module")
def arch(digits):
    return digits.validate(Arch(32, 3, (3, 6, 4), (2.0, 4.0, 3.0)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, supernet, arch):
    """An exported subnet directory, written once; tests copy it before damaging it."""
    directory = tmp_path_factory.mktemp("export") / "subnet"
    model = supernet.extract(arch)
    assert save_subnet(model, directory) == directory
    return directory


@pytest.fixture
def copy_of(exported, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(exported, target)
    return target


def x_for(space, batch=4):
    gen = torch.Generator().manual_seed(11)
    return torch.randn(batch, space.in_chans, space.image_size, space.image_size, generator=gen)


# -- round trip --------------------------------------------------------------------------------
def test_round_trip_gives_same_logits(exported, supernet, arch, digits):
    loaded = load_subnet(exported)
    assert isinstance(loaded, SubnetViT)
    assert not loaded.training
    assert loaded.arch == arch and loaded.space == digits
    x = x_for(digits)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), supernet.extract(arch)(x), atol=0, rtol=0)
        torch.testing.assert_close(loaded(x), supernet(x, arch), atol=1e-5, rtol=0)


def test_the_export_writes_its_four_files_and_nothing_else(exported):
    assert sorted(p.name for p in exported.iterdir()) == ["README.md", "arch.json", "config.json", "model.safetensors"]


def test_arch_json_contents(exported, arch, digits):
    record = json.loads((exported / "arch.json").read_text())
    assert set(record) == ARCH_KEYS | {"macs", "params", "side", "space", "format_version"}
    assert record["side"] == "left"
    assert record["embed_dim"] == 32 and record["depth"] == 3
    assert record["num_heads"] == [3, 6, 4] and record["mlp_ratio"] == [2.0, 4.0, 3.0]
    assert record["macs"] == count_macs(arch, digits)
    assert record["params"] == count_params(arch, digits)
    assert record["params"] == sum(p.numel() for p in load_subnet(exported).parameters())
    assert record["space"] == digits.to_dict()
    assert record["space"]["name"] == "digits"
    assert isinstance(record["format_version"], int)
    assert record["format_version"] == export_module.FORMAT_VERSION


def test_save_overwrites_an_earlier_export(tmp_path, supernet, digits):
    directory = tmp_path / "out"
    first, second = digits.smallest(), digits.largest()
    save_subnet(supernet.extract(first), directory)
    save_subnet(supernet.extract(second), directory)
    loaded = load_subnet(directory)
    assert loaded.arch == second
    assert json.loads((directory / "arch.json").read_text())["macs"] == count_macs(second, digits)
    files = ["README.md", "arch.json", "config.json", "model.safetensors"]
    assert sorted(p.name for p in directory.iterdir()) == files


@pytest.mark.parametrize("name", ["fashion-mnist", "cifar100"])
def test_round_trip_other_spaces(name, space_of, tmp_path, randomize):
    space = space_of(name)
    torch.manual_seed(1)
    arch = space.sample(3)
    model = randomize(space.build_subnet(arch), seed=8).eval()
    save_subnet(model, tmp_path / name)
    loaded = load_subnet(tmp_path / name)
    x = x_for(space, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)
    assert loaded.space == space and loaded.arch == arch


def test_load_subnet_needs_no_supernet(exported, monkeypatch, digits):
    def refuse(*args, **kwargs):
        raise AssertionError("load_subnet must not build or use a Supernet")

    monkeypatch.setattr(Supernet, "__init__", refuse)
    monkeypatch.setattr(Supernet, "forward", refuse)
    monkeypatch.setattr(Supernet, "extract", refuse)
    loaded = load_subnet(exported)
    assert not any(isinstance(m, Supernet) for m in loaded.modules())
    with torch.no_grad():
        assert loaded(x_for(digits, 1)).shape == (1, digits.num_classes)


# -- file format -------------------------------------------------------------------------------
def expected_keys(depth: int) -> set[str]:
    keys = {"patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed",
            "norm.weight", "norm.bias", "head.weight", "head.bias"}
    for i in range(depth):
        for module in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            keys |= {f"blocks.{i}.{module}.weight", f"blocks.{i}.{module}.bias"}
    return keys


def test_safetensors_keys_are_timm_names(exported, arch, digits):
    with safe_open(str(exported / "model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in keys}
        metadata = f.metadata()
    assert keys == expected_keys(arch.depth)
    e, hd = arch.embed_dim, digits.head_dim
    assert shapes["patch_embed.proj.weight"] == (e, digits.in_chans, digits.patch_size, digits.patch_size)
    assert shapes["cls_token"] == (1, 1, e)
    assert shapes["pos_embed"] == (1, digits.num_tokens, e)
    assert shapes["blocks.1.attn.qkv.weight"] == (3 * 6 * hd, e)
    assert shapes["blocks.1.attn.proj.weight"] == (e, 6 * hd)
    assert shapes["blocks.1.mlp.fc1.weight"] == (4 * e, e)
    assert shapes["blocks.2.mlp.fc2.weight"] == (e, 3 * e)
    assert shapes["head.weight"] == (digits.num_classes, e)
    assert metadata.get("format") == "pt"


def test_exported_file_loads_into_timm_vision_transformer(tmp_path, supernet, digits):
    """A uniform arch's weights load straight into timm's class (strict) and agree."""
    arch = digits.validate(Arch(24, 3, (4, 4, 4), (3.0, 3.0, 3.0)))  # 4 heads x 8 = 32 != 24
    save_subnet(supernet.extract(arch), tmp_path / "u")

    class HeadDimAttention(Attention):
        def __init__(self, dim, num_heads=8, **kwargs):
            super().__init__(dim, num_heads=num_heads, attn_head_dim=digits.head_dim, **kwargs)

    reference = VisionTransformer(
        img_size=digits.image_size, patch_size=digits.patch_size, in_chans=digits.in_chans,
        num_classes=digits.num_classes, embed_dim=24, depth=3, num_heads=4, mlp_ratio=3.0,
        qkv_bias=True, global_pool="token", attn_layer=HeadDimAttention,
    )
    from safetensors.torch import load_file

    reference.load_state_dict(load_file(str(tmp_path / "u" / "model.safetensors")), strict=True)
    reference.eval()
    x = x_for(digits)
    with torch.no_grad():
        torch.testing.assert_close(reference(x), load_subnet(tmp_path / "u")(x), atol=1e-5, rtol=0)


# -- read_arch_file ----------------------------------------------------------------------------
def test_read_arch_file_accepts_bare_and_exported(tmp_path, exported, arch, digits):
    bare = tmp_path / "arch.json"
    bare.write_text(arch.to_json())
    assert read_arch_file(bare, digits) == arch
    assert read_arch_file(exported / "arch.json", digits) == arch
    # Integers where floats are expected are fine in hand-written files.
    bare.write_text(json.dumps({"embed_dim": 24, "depth": 2, "num_heads": [3, 4], "mlp_ratio": [2, 4]}))
    assert read_arch_file(bare, digits) == Arch(24, 2, (3, 4), (2.0, 4.0))


def test_read_arch_file_rejects_archs_outside_space(tmp_path, digits, space_of):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({"embed_dim": 40, "depth": 2, "num_heads": [3, 4], "mlp_ratio": [2.0, 4.0]}))
    with pytest.raises(ConfigError) as info:
        read_arch_file(path, digits)
    assert "embed_dim" in str(info.value) and "24, 32, 48" in str(info.value)
    # An arch exported from another space does not fit this one.
    other = space_of("fashion-mnist")
    path.write_text(json.dumps(export_module.arch_record(other.largest(), other)))
    with pytest.raises(ConfigError, match="not a choice"):
        read_arch_file(path, digits)
    path.write_text(json.dumps({"embed_dim": 24, "depth": 2, "num_heads": [3, 4], "mlp_ratio": [2.0, 4.0],
                                "colour": "red"}))
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        read_arch_file(path, digits)


@pytest.mark.parametrize("content, fragment", [(None, "no such file"), ("{not json", "not a readable JSON"),
                                               ("[24, 2]", "expected a JSON object"),
                                               (b"\xff\xfe\x00", "not a readable JSON")])
def test_read_arch_file_unreadable(tmp_path, digits, content, fragment):
    path = tmp_path / "arch.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        read_arch_file(path, digits)


# -- load_subnet failures ----------------------------------------------------------------------
def expect_checkpoint_error(directory, *fragments):
    with pytest.raises(CheckpointError) as info:
        load_subnet(directory)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_missing_directory(tmp_path):
    expect_checkpoint_error(tmp_path / "nowhere", "nowhere", "arch.json is missing")


def test_directory_without_weights(copy_of):
    (copy_of / "model.safetensors").unlink()
    expect_checkpoint_error(copy_of, "model.safetensors is missing")


def test_directory_without_arch_json(copy_of):
    (copy_of / "arch.json").unlink()
    expect_checkpoint_error(copy_of, "arch.json is missing")


@pytest.mark.parametrize("damage", ["half", "header only", "empty", "garbage", "bad header"])
def test_corrupt_weights(copy_of, damage):
    path = copy_of / "model.safetensors"
    raw = path.read_bytes()
    data = {
        "half": raw[: len(raw) // 2],
        "header only": raw[:8],
        "empty": b"",
        "garbage": bytes(range(256)) * 8,
        "bad header": raw[:8] + b"!" * 16 + raw[24:],
    }[damage]
    path.write_bytes(data)
    expect_checkpoint_error(copy_of, "model.safetensors", "corrupt")


@pytest.mark.parametrize("text", ["{", "", "not json at all", '{"embed_dim": 32,'])
def test_corrupt_arch_json(copy_of, text):
    (copy_of / "arch.json").write_text(text)
    expect_checkpoint_error(copy_of, "arch.json", "corrupt")


@pytest.mark.parametrize("text", ["[]", '"arch"', "3"])
def test_arch_json_that_is_not_an_object(copy_of, text):
    (copy_of / "arch.json").write_text(text)
    expect_checkpoint_error(copy_of, "arch.json")


@pytest.mark.parametrize("version", [2, 0, "1", None, "missing"])
def test_wrong_format_version(copy_of, version):
    path = copy_of / "arch.json"
    record = json.loads(path.read_text())
    if version == "missing":
        del record["format_version"]
    else:
        record["format_version"] = version
    path.write_text(json.dumps(record))
    expect_checkpoint_error(copy_of, "format_version")


@pytest.mark.parametrize(
    "change",
    [
        {"depth": 2, "num_heads": [3, 6], "mlp_ratio": [2.0, 4.0]},  # fewer layers than the weights
        {"depth": 4, "num_heads": [3, 6, 4, 4], "mlp_ratio": [2.0, 4.0, 3.0, 3.0]},  # more layers
        {"embed_dim": 48},  # other widths
        {"num_heads": [6, 6, 4]},  # other attention width in layer 0
        {"mlp_ratio": [2.0, 4.0, 4.0]},  # other MLP width in layer 2
    ],
)
def test_weights_that_do_not_match_arch_json(copy_of, change):
    path = copy_of / "arch.json"
    record = json.loads(path.read_text())
    record.update(change)
    path.write_text(json.dumps(record))
    expect_checkpoint_error(copy_of, "model.safetensors", "does not match arch.json")


def test_weights_with_missing_or_extra_tensors(copy_of):
    from safetensors.torch import load_file

    path = copy_of / "model.safetensors"
    state = load_file(str(path))
    missing = {k: v for k, v in state.items() if k != "head.bias"}
    save_file(missing, str(path))
    expect_checkpoint_error(copy_of, "does not match arch.json", "head.bias")
    save_file({**state, "extra.weight": torch.zeros(2)}, str(path))
    expect_checkpoint_error(copy_of, "does not match arch.json", "extra.weight")


def test_arch_json_outside_its_space_or_without_space(copy_of):
    path = copy_of / "arch.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "embed_dim": 40}))
    expect_checkpoint_error(copy_of, "arch.json", "invalid", "embed_dim")
    path.write_text(json.dumps({k: v for k, v in record.items() if k != "space"}))
    expect_checkpoint_error(copy_of, "arch.json", "invalid")
    path.write_text(json.dumps({**record, "space": {**record["space"], "patch_size": 3}}))
    expect_checkpoint_error(copy_of, "arch.json", "invalid", "patch_size")
    path.write_text(json.dumps({k: v for k, v in record.items() if k != "depth"}))
    expect_checkpoint_error(copy_of, "arch.json", "invalid", "depth")


def test_format_version_true_is_not_version_1(copy_of):
    path = copy_of / "arch.json"
    record = json.loads(path.read_text())
    record["format_version"] = True  # JSON true == 1 in Python; must still be rejected
    path.write_text(json.dumps(record))
    expect_checkpoint_error(copy_of, "format_version")


def test_an_export_from_before_space_families_still_loads(copy_of, supernet, arch, digits):
    """Exports written before search-space families name no family in arch.json: AutoFormer."""
    record = json.loads((copy_of / "arch.json").read_text())
    assert record["space"].pop("family") == "autoformer"
    (copy_of / "arch.json").write_text(json.dumps(record))
    loaded = load_subnet(copy_of)
    assert loaded.space == digits and loaded.arch == arch
    x = x_for(digits)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), supernet(x, arch), atol=1e-5, rtol=0)
