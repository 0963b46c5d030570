"""The weight-entangled supernet: extraction, slicing, statelessness, gradients, timm parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from timm.layers import Attention
from timm.models.vision_transformer import VisionTransformer

from focusformer.config import load_config, shipped_configs
from focusformer.errors import ConfigError
from focusformer.spaces import Arch, SearchSpace, create_supernet
from focusformer.spaces.dense import SubnetViT
from focusformer.spaces.supernet import Supernet

#: The AutoFormer-family configs (other families have their own test modules).
SHIPPED = tuple(n for n in shipped_configs() if load_config(n).space.family == "autoformer")
SMALL = ("digits", "fashion-mnist", "cifar100")
BIG = ("autoformer-tiny", "autoformer-small", "autoformer-base")


@pytest.fixture(scope="module")
def supernet_of(space_of, randomize):
    """``supernet_of(name)``: one randomly initialised supernet per space, in eval mode, built once."""
    cache: dict[str, Supernet] = {}

    def get(name: str) -> Supernet:
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = randomize(create_supernet(space_of(name)), seed=1).eval()
        return cache[name]

    yield get
    cache.clear()


def images(space: SearchSpace, batch: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, space.in_chans, space.image_size, space.image_size, generator=gen)


def batch_size(name: str) -> int:
    return 1 if name in BIG else 3


def leading_index(key: str, arch: Arch, space: SearchSpace, layer_width=None):
    """Where the exported tensor ``key`` sits inside the supernet tensor of the same name.

    Written from the layout alone: embed dims, hidden units and heads keep their
    leading entries; the fused q/k/v projection keeps the leading rows of each of
    its three ``W``-row blocks (``W`` = max heads x head_dim).
    """
    e = arch.embed_dim
    W = max(space.num_heads) * space.head_dim
    if key in ("cls_token", "pos_embed"):
        return (slice(None), slice(None), slice(0, e))
    if key.startswith(("patch_embed.", "norm.")):
        return (slice(0, e),)
    if key == "head.weight":
        return (slice(None), slice(0, e))
    if key == "head.bias":
        return (slice(None),)
    _, layer, *rest = key.split(".")
    layer, name = int(layer), ".".join(rest)
    w = arch.num_heads[layer] * space.head_dim
    h = int(e * arch.mlp_ratio[layer])
    qkv_rows = torch.cat([torch.arange(0, w), torch.arange(W, W + w), torch.arange(2 * W, 2 * W + w)])
    return {
        "norm1.weight": (slice(0, e),),
        "norm1.bias": (slice(0, e),),
        "norm2.weight": (slice(0, e),),
        "norm2.bias": (slice(0, e),),
        "attn.qkv.weight": (qkv_rows[:, None], torch.arange(e)[None, :]),
        "attn.qkv.bias": (qkv_rows,),
        "attn.proj.weight": (slice(0, e), slice(0, w)),
        "attn.proj.bias": (slice(0, e),),
        "mlp.fc1.weight": (slice(0, h), slice(0, e)),
        "mlp.fc1.bias": (slice(0, h),),
        "mlp.fc2.weight": (slice(0, e), slice(0, h)),
        "mlp.fc2.bias": (slice(0, e),),
    }[name]


def uniform_arch(space: SearchSpace, embed: int, depth: int, heads: int, ratio: float) -> Arch:
    return space.validate(Arch(embed, depth, (heads,) * depth, (ratio,) * depth))


# -- extraction --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SHIPPED)
def test_extract_matches_supernet_forward_and_owns_its_weights(name, space_of, supernet_of):
    space, supernet = space_of(name), supernet_of(name)
    rng = np.random.default_rng(len(name))
    archs = [space.sample(rng)] if name in BIG else [space.sample(rng) for _ in range(3)] + [space.smallest()]
    x = images(space, batch_size(name))
    for arch in archs:
        model = supernet.extract(arch)
        assert isinstance(model, SubnetViT) and not model.training
        with torch.no_grad():
            expected = supernet(x, arch)
            got = model(x)
        assert got.shape == (x.shape[0], space.num_classes)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)

        # No storage shared with the supernet ...
        super_ptrs = {p.untyped_storage().data_ptr() for p in supernet.parameters()}
        assert not super_ptrs & {p.untyped_storage().data_ptr() for p in model.parameters()}
        # ... so writing into the extracted weights leaves the supernet as it was.
        before = {k: v.clone() for k, v in supernet.state_dict().items() if not k.startswith("blocks.")}
        before.update({k: v.clone() for k, v in supernet.blocks[0].state_dict().items()})
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        after = supernet.state_dict()
        for key, value in before.items():
            full_key = key if key in after else f"blocks.0.{key}"
            assert torch.equal(after[full_key], value), full_key
        if name == "digits":
            with torch.no_grad():
                torch.testing.assert_close(supernet(x, arch), expected, atol=0, rtol=0)


@pytest.mark.parametrize("name", SHIPPED)
def test_largest_arch_state_dict_is_the_supernets(name, space_of, supernet_of):
    space, supernet = space_of(name), supernet_of(name)
    full = supernet.state_dict()
    state = supernet.subnet_state_dict(space.largest())
    assert set(state) == set(full)
    if name not in BIG:  # same keys as a dense model of the largest arch, i.e. timm's names
        assert set(state) == set(space.build_subnet(space.largest()).state_dict())
    assert len(state) == 4 + 12 * space.max_depth + 4
    for key in ("patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "head.weight", "norm.bias",
                f"blocks.{space.max_depth - 1}.mlp.fc2.weight", "pos_embed"):
        assert torch.equal(state[key], full[key]), key


@pytest.mark.parametrize("name", SMALL + ("autoformer-tiny",))
def test_exported_tensors_are_the_leading_slices(name, space_of, supernet_of):
    space, supernet = space_of(name), supernet_of(name)
    # Fewer heads than the maximum in every layer, smaller embed and hidden dims.
    d = space.depth[0]
    arch = Arch(space.embed_dim[0], d, (space.num_heads[0],) * d, (space.mlp_ratio[0],) * d)
    assert arch.num_heads[0] < max(space.num_heads)
    state = supernet.subnet_state_dict(arch)
    full = supernet.state_dict()

    # q/k/v spelled out for the first layer: rows [0:w], [W:W+w], [2W:2W+w] of the fused matrix.
    W = max(space.num_heads) * space.head_dim
    w = arch.num_heads[0] * space.head_dim
    e = arch.embed_dim
    qkv_w, qkv_b = full["blocks.0.attn.qkv.weight"], full["blocks.0.attn.qkv.bias"]
    assert qkv_w.shape == (3 * W, max(space.embed_dim))
    out_w, out_b = state["blocks.0.attn.qkv.weight"], state["blocks.0.attn.qkv.bias"]
    assert out_w.shape == (3 * w, e) and out_b.shape == (3 * w,)
    for part, start in enumerate((0, W, 2 * W)):  # q, k, v
        assert torch.equal(out_w[part * w:(part + 1) * w], qkv_w[start:start + w, :e])
        assert torch.equal(out_b[part * w:(part + 1) * w], qkv_b[start:start + w])
    # The blocks of the fused matrix are not one contiguous leading slice.
    assert not torch.equal(out_w, qkv_w[: 3 * w, :e])
    assert not torch.equal(out_b, qkv_b[: 3 * w])

    # Every other tensor.
    assert set(state) == {k for k in full if not k.startswith("blocks.") or int(k.split(".")[1]) < d}
    for key, tensor in state.items():
        assert torch.equal(tensor, full[key][leading_index(key, arch, space)]), key


@pytest.mark.parametrize("name", SMALL)
def test_no_hidden_state_between_archs(name, space_of, supernet_of):
    space, supernet = space_of(name), supernet_of(name)
    x = images(space, 2, seed=3)
    a, b = space.largest(), space.sample(11)
    c = space.smallest()
    with torch.no_grad():
        first = supernet(x, a)
        other = supernet(x, b)
        supernet(x, c)
        again = supernet(x, a)
        other_again = supernet(x, b)
    assert torch.equal(first, again)
    assert torch.equal(other, other_again)
    assert not torch.allclose(first, other)
    # Extracting is stateless too.
    supernet.extract(c)
    with torch.no_grad():
        assert torch.equal(supernet(x, a), first)


# -- gradients ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["digits", "fashion-mnist"])
def test_gradient_flows_only_into_the_leading_slices(name, space_of, randomize):
    space = space_of(name)
    torch.manual_seed(0)
    supernet = randomize(create_supernet(space), seed=2).train()
    arch = Arch(space.embed_dim[1], space.depth[0], (space.num_heads[0], space.num_heads[1]) + (space.num_heads[0],)
                * (space.depth[0] - 2), (space.mlp_ratio[1], space.mlp_ratio[0]) + (space.mlp_ratio[0],)
                * (space.depth[0] - 2))
    assert arch.depth < space.max_depth and arch.embed_dim < max(space.embed_dim)
    x = images(space, 4, seed=5)
    target = torch.arange(4) % space.num_classes
    torch.nn.functional.cross_entropy(supernet(x, arch), target).backward()

    # The same step through the dense model gives the gradients the slices must hold.
    model = supernet.extract(arch)
    torch.nn.functional.cross_entropy(model(x), target).backward()
    dense_grads = {k: p.grad for k, p in model.named_parameters()}

    for key, param in supernet.named_parameters():
        if key.startswith("blocks.") and int(key.split(".")[1]) >= arch.depth:
            assert param.grad is None or not param.grad.any(), f"{key} beyond depth got a gradient"
            continue
        assert param.grad is not None, key
        index = leading_index(key, arch, space)
        inside = torch.zeros_like(param, dtype=torch.bool)
        inside[index] = True
        assert not param.grad[~inside].any(), f"{key}: gradient outside the slice"
        torch.testing.assert_close(param.grad[index], dense_grads[key], atol=1e-6, rtol=1e-4)
        assert param.grad[index].any(), key
    # Some block beyond the depth exists and was checked.
    assert any(k.startswith(f"blocks.{arch.depth}.") for k, _ in supernet.named_parameters())


# -- drop path ---------------------------------------------------------------------------------
def test_drop_path_active_in_train_mode_only(space_of, randomize):
    space = space_of("digits")
    torch.manual_seed(0)
    supernet = randomize(create_supernet(space, drop_path_rate=0.5), seed=3)
    plain = randomize(create_supernet(space, drop_path_rate=0.0), seed=3)
    arch = space.largest()
    x = images(space, 8)

    supernet.train()
    with torch.no_grad():
        outs = [supernet(x, arch) for _ in range(3)]
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[1], outs[2])

    supernet.eval(), plain.eval()
    with torch.no_grad():
        a, b, ref = supernet(x, arch), supernet(x, arch), plain(x, arch)
    assert torch.equal(a, b)
    torch.testing.assert_close(a, ref, atol=0, rtol=0)

    # Without drop path, train mode is deterministic (nothing else is random).
    plain.train()
    with torch.no_grad():
        assert torch.equal(plain(x, arch), plain(x, arch))


def test_extracted_model_uses_the_same_drop_path_schedule(space_of, randomize):
    """Linear from 0 at the first layer to the rate at the subnet's own last layer, as in timm."""
    space = space_of("fashion-mnist")
    rate = 0.4
    supernet = randomize(create_supernet(space, drop_path_rate=rate), seed=4).train()
    arch = space.sample(5)
    model = supernet.extract(arch)
    assert model.training
    expected = [rate * i / (arch.depth - 1) for i in range(arch.depth)]
    got = [getattr(block.drop_path1, "drop_prob", 0.0) for block in model.blocks]
    assert got == pytest.approx(expected)
    # Same random stream, same drops: both draw one mask per residual branch in the same order.
    x = images(space, 6)
    with torch.no_grad():
        torch.manual_seed(9)
        a = supernet(x, arch)
        torch.manual_seed(9)
        b = model(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


# -- validation --------------------------------------------------------------------------------
def test_arch_not_in_space_raises_config_error(space_of, supernet_of):
    space, supernet = space_of("digits"), supernet_of("digits")
    x = images(space, 1)
    bad = [
        Arch(40, 2, (3, 3), (2.0, 2.0)),  # embed_dim not a choice
        Arch(32, 5, (3,) * 5, (2.0,) * 5),  # deeper than the supernet
        Arch(32, 2, (3, 5), (2.0, 2.0)),  # head count not a choice
        Arch(32, 2, (3, 3), (2.0, 2.5)),  # mlp ratio not a choice
        Arch(96, 2, (3, 3), (2.0, 2.0)),  # wider than the supernet
    ]
    for arch in bad:
        with pytest.raises(ConfigError, match="not a choice"):
            supernet(x, arch)
        with pytest.raises(ConfigError, match="not a choice"):
            supernet.extract(arch)
        with pytest.raises(ConfigError, match="not a choice"):
            supernet.subnet_state_dict(arch)
        with pytest.raises(ConfigError, match="not a choice"):
            space.build_subnet(arch)


# -- THE reference: timm's own VisionTransformer -------------------------------------------------
def timm_vit(space: SearchSpace, arch: Arch) -> VisionTransformer:
    assert len(set(arch.num_heads)) == 1 and len(set(arch.mlp_ratio)) == 1

    class HeadDimAttention(Attention):
        # timm's Block cannot pass a head dim, and heads x head_dim need not equal the embed dim.
        def __init__(self, dim, num_heads=8, **kwargs):
            super().__init__(dim, num_heads=num_heads, attn_head_dim=space.head_dim, **kwargs)

    return VisionTransformer(
        img_size=space.image_size,
        patch_size=space.patch_size,
        in_chans=space.in_chans,
        num_classes=space.num_classes,
        embed_dim=arch.embed_dim,
        depth=arch.depth,
        num_heads=arch.num_heads[0],
        mlp_ratio=arch.mlp_ratio[0],
        qkv_bias=True,
        global_pool="token",
        attn_layer=HeadDimAttention,
    )


def reference_archs(name: str, space: SearchSpace) -> list[Arch]:
    if name == "autoformer-tiny":
        # 216 wide with 4 heads of 64 (attention width 256 != embed dim), and 192 with 4 heads.
        return [uniform_arch(space, 216, 12, 4, 3.5), uniform_arch(space, 192, 12, 4, 4.0)]
    return [
        uniform_arch(space, space.embed_dim[0], space.depth[1], space.num_heads[0], space.mlp_ratio[-1]),
        uniform_arch(space, space.embed_dim[-1], space.depth[-1], space.num_heads[-1], space.mlp_ratio[0]),
        # attention width (max heads x head_dim) wider than the embed dim
        uniform_arch(space, space.embed_dim[1], space.depth[0], space.num_heads[-1], space.mlp_ratio[1]),
        space.largest(),
    ]


@pytest.mark.parametrize("name", SMALL + ("autoformer-tiny",))
def test_uniform_archs_load_into_timm_vision_transformer(name, space_of, supernet_of):
    space, supernet = space_of(name), supernet_of(name)
    x = images(space, batch_size(name), seed=7)
    archs = reference_archs(name, space)
    assert any(a.num_heads[0] * space.head_dim != a.embed_dim for a in archs)
    for arch in archs:
        reference = timm_vit(space, arch)
        # strict=True: no missing or unexpected keys, every shape matches.
        reference.load_state_dict(supernet.subnet_state_dict(arch), strict=True)
        reference.eval()
        with torch.no_grad():
            torch.testing.assert_close(reference(x), supernet(x, arch), atol=1e-5, rtol=0)
            torch.testing.assert_close(reference(x), supernet.extract(arch)(x), atol=1e-5, rtol=0)
