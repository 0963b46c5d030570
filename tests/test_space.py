"""Search spaces, archs, their encoding, and config/space validation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from focusformer.config import Config, load_config, shipped_configs
from focusformer.errors import ConfigError
from focusformer.spaces import INACTIVE, Arch, SearchSpace

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
#: The AutoFormer-family configs (other families have their own test modules).
SHIPPED = tuple(n for n in shipped_configs() if load_config(n).space.family == "autoformer")

DIGITS_SPACE = {
    "name": "tiny-test",
    "image_size": 8,
    "in_chans": 1,
    "patch_size": 2,
    "num_classes": 10,
    "head_dim": 8,
    "embed_dim": [24, 32, 48],
    "depth": [2, 3, 4],
    "num_heads": [3, 4, 6],
    "mlp_ratio": [2.0, 3.0, 4.0],
}


def is_member(arch: Arch, space: SearchSpace) -> bool:
    """Membership written out independently of SearchSpace.validate."""
    return (
        arch.embed_dim in space.embed_dim
        and arch.depth in space.depth
        and len(arch.num_heads) == arch.depth
        and len(arch.mlp_ratio) == arch.depth
        and all(h in space.num_heads for h in arch.num_heads)
        and all(r in space.mlp_ratio for r in arch.mlp_ratio)
    )


# -- shipped configs ---------------------------------------------------------------------------
def test_shipped_configs_are_the_yaml_files_in_configs_dir():
    on_disk = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    assert shipped_configs() == on_disk
    assert {"digits", "fashion-mnist", "cifar100", "autoformer-tiny", "autoformer-small",
            "autoformer-base"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_loads_and_matches_its_yaml(name):
    config = load_config(name)
    assert isinstance(config, Config)
    space = config.space
    raw = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())["space"]
    assert space.name == raw["name"] == name
    for key in ("image_size", "in_chans", "patch_size", "num_classes", "head_dim"):
        assert getattr(space, key) == raw[key]
    for key in ("embed_dim", "depth", "num_heads", "mlp_ratio"):
        assert list(getattr(space, key)) == sorted(raw[key])
    assert space.num_patches == (raw["image_size"] // raw["patch_size"]) ** 2
    assert space.num_tokens == space.num_patches + 1
    # The same space is reachable through the bare YAML path too.
    assert SearchSpace.from_yaml(CONFIG_DIR / f"{name}.yaml") == space


@pytest.mark.parametrize("name", SHIPPED)
def test_largest_smallest_and_samples_are_members(name, space_of):
    space = space_of(name)
    largest, smallest = space.largest(), space.smallest()
    for arch in (largest, smallest):
        assert is_member(arch, space)
        assert space.validate(arch) is arch
    assert largest.embed_dim == max(space.embed_dim) and largest.depth == max(space.depth)
    assert set(largest.num_heads) == {max(space.num_heads)}
    assert set(largest.mlp_ratio) == {max(space.mlp_ratio)}
    assert smallest.embed_dim == min(space.embed_dim) and smallest.depth == min(space.depth)
    assert set(smallest.num_heads) == {min(space.num_heads)}
    assert set(smallest.mlp_ratio) == {min(space.mlp_ratio)}
    rng = np.random.default_rng(123)
    for _ in range(50):
        arch = space.sample(rng)
        assert is_member(arch, space)
        assert isinstance(arch.embed_dim, int) and isinstance(arch.depth, int)
        assert all(isinstance(h, int) for h in arch.num_heads)
        assert all(isinstance(r, float) for r in arch.mlp_ratio)


@pytest.mark.parametrize("name", ["digits", "autoformer-base"])
def test_sample_is_deterministic_under_a_seed(name, space_of):
    space = space_of(name)
    assert space.sample(7) == space.sample(7)
    a = [space.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    # One generator drives a reproducible stream.
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    assert [space.sample(g1) for _ in range(10)] == [space.sample(g2) for _ in range(10)]


@pytest.mark.parametrize("name", SHIPPED)
def test_sample_varies_across_seeds(name, space_of):
    space = space_of(name)
    by_seed = {space.sample(seed) for seed in range(30)}
    assert len(by_seed) > 10
    gen = np.random.default_rng(0)
    stream = {space.sample(gen) for _ in range(30)}
    assert len(stream) > 10
    # Over many samples every choice of every dimension shows up.
    many = [space.sample(gen) for _ in range(400)]
    assert {a.embed_dim for a in many} == set(space.embed_dim)
    assert {a.depth for a in many} == set(space.depth)
    assert {h for a in many for h in a.num_heads} == set(space.num_heads)
    assert {r for a in many for r in a.mlp_ratio} == set(space.mlp_ratio)


# -- Arch --------------------------------------------------------------------------------------
def test_arch_is_frozen_and_hashable():
    arch = Arch(32, 2, (3, 4), (2.0, 3.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        arch.depth = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        arch.embed_dim = 48
    same = Arch(32, 2, [3, 4], [2, 3])  # lists and ints normalise to tuples of int / float
    assert same == arch and hash(same) == hash(arch)
    assert isinstance(same.num_heads, tuple) and isinstance(same.mlp_ratio, tuple)
    other = Arch(32, 2, (4, 3), (2.0, 3.0))
    assert other != arch
    assert len({arch, same, other}) == 2
    table = {arch: "a"}
    assert table[same] == "a"


def test_arch_from_numpy_scalars_serialises_like_plain_ints():
    arch = Arch(np.int64(32), np.int64(2), np.array([3, 4]), np.array([2.0, 3.0]))
    assert arch == Arch(32, 2, (3, 4), (2.0, 3.0))
    assert json.loads(arch.to_json()) == {"embed_dim": 32, "depth": 2, "num_heads": [3, 4],
                                          "mlp_ratio": [2.0, 3.0]}
    assert type(arch.embed_dim) is int and type(arch.depth) is int


def test_arch_rejects_per_layer_lists_of_wrong_length():
    with pytest.raises(ConfigError, match="depth 3"):
        Arch(32, 3, (3, 4), (2.0, 3.0, 4.0))
    with pytest.raises(ConfigError, match="num_heads"):
        Arch(32, 2, (3, 4), (2.0,))


@pytest.mark.parametrize("name", SHIPPED)
def test_arch_json_round_trip(name, space_of):
    space = space_of(name)
    for seed in range(10):
        arch = space.sample(seed)
        data = json.loads(arch.to_json())
        assert set(data) == {"embed_dim", "depth", "num_heads", "mlp_ratio"}
        assert type(data["embed_dim"]) is int and type(data["depth"]) is int
        assert isinstance(data["num_heads"], list) and isinstance(data["mlp_ratio"], list)
        assert data["embed_dim"] == arch.embed_dim and data["depth"] == arch.depth
        assert data["num_heads"] == list(arch.num_heads)
        assert data["mlp_ratio"] == list(arch.mlp_ratio)
        assert Arch.from_json(arch.to_json()) == arch
        assert Arch.from_dict(arch.to_dict()) == arch
        assert space.arch_from_dict(data) == arch


def test_arch_from_json_errors():
    with pytest.raises(ConfigError, match="not valid JSON"):
        Arch.from_json("{embed_dim: 3")
    with pytest.raises(ConfigError, match="depth"):
        Arch.from_json('{"embed_dim": 32, "num_heads": [3], "mlp_ratio": [2.0]}')
    with pytest.raises(ConfigError, match="unknown key 'width'"):
        Arch.from_json('{"embed_dim": 32, "depth": 1, "num_heads": [3], "mlp_ratio": [2.0], "width": 1}')
    with pytest.raises(ConfigError, match=r"num_heads\[1\]: expected an integer"):
        Arch.from_json('{"embed_dim": 32, "depth": 2, "num_heads": [3, 3.5], "mlp_ratio": [2.0, 2.0]}')
    with pytest.raises(ConfigError, match="embed_dim: expected an integer"):
        Arch.from_json('{"embed_dim": true, "depth": 1, "num_heads": [3], "mlp_ratio": [2.0]}')


# -- encoding ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SHIPPED)
def test_encode_decode_round_trip(name, space_of):
    space = space_of(name)
    assert space.encoding_length == 2 + 2 * max(space.depth)
    assert len(space.encoding_cardinalities) == space.encoding_length
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(300)] + [space.largest(), space.smallest()]
    codes = {}
    for arch in archs:
        code = space.encode(arch)
        assert code.shape == (space.encoding_length,)
        assert np.issubdtype(code.dtype, np.integer)
        # Slots written out by hand: depth index, embed index, then (heads, mlp) per layer.
        assert code[0] == sorted(space.depth).index(arch.depth)
        assert code[1] == sorted(space.embed_dim).index(arch.embed_dim)
        for i in range(arch.depth):
            assert code[2 + 2 * i] == sorted(space.num_heads).index(arch.num_heads[i])
            assert code[3 + 2 * i] == sorted(space.mlp_ratio).index(arch.mlp_ratio[i])
        assert (code[2 + 2 * arch.depth:] == INACTIVE).all()
        assert INACTIVE == -1
        active = code[: 2 + 2 * arch.depth]
        assert (active >= 0).all()
        assert (active < np.asarray(space.encoding_cardinalities[: len(active)])).all()
        assert space.decode(code) == arch
        assert space.decode(code.tolist()) == arch
        codes.setdefault(arch, tuple(code.tolist()))
    # Distinct archs give distinct codes (and equal archs equal codes).
    assert len(set(codes.values())) == len(codes)
    assert len(codes) > 250


def test_encode_rejects_archs_outside_space(space_of):
    space = space_of("digits")
    with pytest.raises(ConfigError, match="embed_dim"):
        space.encode(Arch(40, 2, (3, 3), (2.0, 2.0)))
    with pytest.raises(ConfigError, match="depth"):
        space.encode(Arch(32, 5, (3,) * 5, (2.0,) * 5))


def test_decode_rejects_non_canonical_codes(space_of):
    space = space_of("digits")  # depth choices 2, 3, 4 -> length 10
    good = space.encode(Arch(32, 2, (3, 6), (2.0, 4.0)))
    assert good.tolist() == [0, 1, 0, 0, 2, 2, -1, -1, -1, -1]
    bad_codes = {
        "inactive slot set": [0, 1, 0, 2, 2, 2, 0, -1, -1, -1],
        "active slot inactive": [0, 1, 0, 2, -1, 2, -1, -1, -1, -1],
        "negative depth index": [-1, 1, 0, 2, 2, 2, 0, 0, 0, 0],
        "negative embed index": [0, -1, 0, 2, 2, 2, -1, -1, -1, -1],
        "negative heads index": [0, 1, -2, 2, 2, 2, -1, -1, -1, -1],
        "depth index out of range": [3, 1, 0, 2, 2, 2, -1, -1, -1, -1],
        "mlp index out of range": [0, 1, 0, 3, 2, 2, -1, -1, -1, -1],
        "inactive value not -1": [0, 1, 0, 2, 2, 2, -2, -2, -2, -2],
    }
    for what, code in bad_codes.items():
        with pytest.raises(ConfigError, match="encoding"):
            space.decode(np.asarray(code))
            pytest.fail(f"decode accepted a code with {what}")
    for wrong_length in ([0, 1, 0, 2, 2, 2], good.tolist() + [-1], []):
        with pytest.raises(ConfigError, match="length 10"):
            space.decode(wrong_length)
    with pytest.raises(ConfigError):
        space.decode(good.reshape(2, 5))


# -- validation of spaces from YAML files --------------------------------------------------------
def write_space(tmp_path, **changes) -> Path:
    data = dict(DIGITS_SPACE)
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
        else:
            data[key] = value
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"space": data}))
    return path


_DROP = object()


def test_valid_yaml_space_loads_and_sorts_choices(tmp_path):
    path = write_space(tmp_path, embed_dim=[48, 24, 32], mlp_ratio=[4, 2.0, 3])
    space = SearchSpace.from_yaml(path)
    assert space.embed_dim == (24, 32, 48)
    assert space.mlp_ratio == (2.0, 3.0, 4.0)
    assert all(isinstance(r, float) for r in space.mlp_ratio)
    # A bare space file (no "space:" section) works too.
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump(DIGITS_SPACE))
    assert SearchSpace.from_yaml(bare) == SearchSpace.from_dict(DIGITS_SPACE)


@pytest.mark.parametrize(
    "changes, expected",
    [
        # unknown key: names it and lists the allowed keys
        ({"heads": [2]}, ["'heads'", "allowed keys", "embed_dim", "num_heads", "mlp_ratio", "patch_size"]),
        # wrong types
        ({"embed_dim": "wide"}, ["space.embed_dim", "expected a list of int", "wide"]),
        ({"embed_dim": [24, 32.5]}, ["space.embed_dim[1]", "expected an integer", "32.5"]),
        ({"mlp_ratio": [2.0, "x"]}, ["space.mlp_ratio[1]", "expected a number"]),
        ({"image_size": "8"}, ["space.image_size", "expected an integer"]),
        ({"patch_size": True}, ["space.patch_size", "expected an integer"]),
        ({"name": 3}, ["space.name", "expected a string"]),
        # empty / invalid choices
        ({"embed_dim": []}, ["space.embed_dim", "at least one choice"]),
        ({"num_heads": []}, ["space.num_heads", "at least one choice"]),
        ({"depth": [2, 0]}, ["space.depth", "positive"]),
        ({"num_heads": [3, 3]}, ["space.num_heads", "distinct"]),
        ({"mlp_ratio": [0.01]}, ["space.mlp_ratio", "below 1"]),
        # geometry
        ({"patch_size": 3}, ["space.patch_size", "3", "image_size 8"]),
        ({"head_dim": 0}, ["space.head_dim", "positive"]),
        # missing key
        ({"head_dim": _DROP}, ["missing required key 'head_dim'"]),
    ],
)
def test_bad_yaml_space_gives_config_error_naming_field(tmp_path, changes, expected):
    path = write_space(tmp_path, **changes)
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_yaml(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    # The same file as a whole config fails the same way.
    with pytest.raises(ConfigError) as info:
        load_config(path)
    for fragment in expected:
        assert fragment in str(info.value)


def test_unreadable_space_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        SearchSpace.from_yaml(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("space: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        SearchSpace.from_yaml(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        SearchSpace.from_yaml(scalar)


@pytest.mark.parametrize(
    "arch, expected",
    [
        # embed_dim not a choice: names the field and the allowed values
        ({"embed_dim": 40, "depth": 2, "num_heads": [3, 3], "mlp_ratio": [2.0, 2.0]},
         ["arch.embed_dim", "40", "allowed: 24, 32, 48"]),
        ({"embed_dim": 32, "depth": 5, "num_heads": [3] * 5, "mlp_ratio": [2.0] * 5},
         ["arch.depth", "5", "allowed: 2, 3, 4"]),
        ({"embed_dim": 32, "depth": 2, "num_heads": [3, 5], "mlp_ratio": [2.0, 2.0]},
         ["arch.num_heads[1]", "5", "allowed: 3, 4, 6"]),
        ({"embed_dim": 32, "depth": 2, "num_heads": [3, 4], "mlp_ratio": [2.5, 2.0]},
         ["arch.mlp_ratio[0]", "2.5", "allowed: 2, 3, 4"]),
        # per-layer lists whose length is not the depth
        ({"embed_dim": 32, "depth": 3, "num_heads": [3, 4], "mlp_ratio": [2.0, 2.0, 2.0]},
         ["num_heads", "depth 3", "got 2 and 3"]),
    ],
)
def test_arch_outside_space_names_field_and_allowed_values(space_of, arch, expected):
    space = space_of("digits")
    with pytest.raises(ConfigError) as info:
        space.arch_from_dict(arch)
    for fragment in expected:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"
    if len(arch["num_heads"]) == arch["depth"]:
        with pytest.raises(ConfigError):
            space.validate(Arch(**arch))


# -- load_config -------------------------------------------------------------------------------
def test_load_config_overrides():
    base = load_config("digits")
    config = load_config("digits", ["train.epochs=3", "train.lr=0.01", "space.embed_dim=[16, 8]",
                                    "data.search_val_size=10", "train.clip_grad=null"])
    assert config.train.epochs == 3 and isinstance(config.train.epochs, int)
    assert config.train.lr == 0.01
    assert config.space.embed_dim == (8, 16)
    assert config.data.search_val_size == 10
    assert config.train.clip_grad is None
    # Everything not overridden is untouched.
    assert config.train.batch_size == base.train.batch_size
    assert config.space.depth == base.space.depth
    assert base.train.epochs != 3


@pytest.mark.parametrize(
    "override, fragments",
    [
        ("train.epochs", ["train.epochs", "SECTION.KEY=VALUE"]),
        ("epochs=3", ["epochs", "SECTION.KEY=VALUE"]),
        ("train.a.b=3", ["train.a.b", "SECTION.KEY=VALUE"]),
        (".epochs=3", ["SECTION.KEY=VALUE"]),
        ("model.depth=3", ["unknown section 'model'", "space", "data", "train"]),
        ("train.epochs=[1", ["not valid YAML"]),
    ],
)
def test_load_config_bad_override_syntax(override, fragments):
    with pytest.raises(ConfigError) as info:
        load_config("digits", [override])
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


@pytest.mark.parametrize(
    "override, fragments",
    [
        ("train.epochz=3", ["unknown key 'epochz'", "epochs"]),
        ("train.epochs=three", ["train.epochs", "expected an integer"]),
        ("train.epochs=0", ["train.epochs", "at least 1"]),
        ("data.dataset=mnist", ["data.dataset", "'mnist'", "'digits'", "'cifar100'"]),
        ("space.patch_size=3", ["space.patch_size", "image_size 8"]),
    ],
)
def test_load_config_override_with_bad_value(override, fragments):
    with pytest.raises(ConfigError) as info:
        load_config("digits", [override])
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


def test_load_config_unknown_section_and_missing_files(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"space": DIGITS_SPACE, "model": {"depth": 2}}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "unknown key 'model'" in str(info.value)
    assert "data, focus, space, subnet, train" in str(info.value)
    path.write_text(yaml.safe_dump({"train": {"epochs": 2}}))
    with pytest.raises(ConfigError, match="missing required key 'space'"):
        load_config(path)
    path.write_text(yaml.safe_dump({"space": DIGITS_SPACE}))
    config = load_config(path)  # data and train take their defaults
    assert config.space == SearchSpace.from_dict(DIGITS_SPACE)
    assert config.train == type(config.train)()
    with pytest.raises(ConfigError, match="no such"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError) as info:
        load_config("no-such-shipped-config")
    assert "digits" in str(info.value)  # lists the shipped configs


def test_config_yaml_round_trip(tmp_path):
    config = load_config("cifar100", ["train.epochs=2"])
    path = tmp_path / "again.yaml"
    path.write_text(config.to_yaml())
    assert load_config(path) == config


def test_decode_rejects_non_integer_codes(space_of):
    space = space_of("digits")
    code = space.encode(space.largest()).astype(float)
    code[1] = 0.7
    with pytest.raises(ConfigError, match="integers"):
        space.decode(code)


def test_float_fields_accept_exponent_notation_that_yaml_reads_as_text():
    # PyYAML reads 5e-4 (no dot) as a string; a learning rate written that way must still work.
    assert load_config("digits", ["train.lr=5e-4"]).train.lr == 5e-4
    with pytest.raises(ConfigError, match="train.lr: expected a number"):
        load_config("digits", ["train.lr=fast"])
