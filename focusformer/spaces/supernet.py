"""The weight-entangled ViT supernet (AutoFormer).

Every elastic layer holds the weights of the largest choice; a smaller choice
uses their leading slice. The subnet to run is an argument of ``forward``, so
running one subnet leaves no state behind. Parameter names match timm's
``VisionTransformer``, so the largest subnet's weights are the supernet's own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import drop_path, trunc_normal_
from timm.models import named_apply
from timm.models.vision_transformer import init_weights_vit_timm
from torch import nn

from .autoformer import Arch, SearchSpace
from .dense import SubnetViT


class _Linear(nn.Linear):
    """A linear layer whose leading ``rows x cols`` block can be used on its own."""

    def sliced(self, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.weight[:rows, :cols], self.bias[:rows]


class _QKV(nn.Linear):
    """Fused q/k/v projection. Rows are ``[q; k; v]``, each ``heads x head_dim`` head-major.

    A subnet with attention width ``a`` uses the first ``a`` rows of q, of k and of v,
    weights and biases alike (slicing the fused matrix as one block would mix them).
    """

    def __init__(self, embed_dim: int, attn_width: int) -> None:
        super().__init__(embed_dim, 3 * attn_width)
        self.max_attn_width = attn_width

    def sliced(self, attn_width: int, embed_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        weight = self.weight.view(3, self.max_attn_width, -1)[:, :attn_width, :embed_dim]
        bias = self.bias.view(3, self.max_attn_width)[:, :attn_width]
        return weight.reshape(3 * attn_width, embed_dim), bias.reshape(3 * attn_width)


class _LayerNorm(nn.LayerNorm):
    def sliced(self, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.weight[:dim], self.bias[:dim]

    def elastic(self, x: torch.Tensor) -> torch.Tensor:
        dim = x.shape[-1]
        return F.layer_norm(x, (dim,), *self.sliced(dim), self.eps)


class _Attention(nn.Module):
    def __init__(self, embed_dim: int, attn_width: int) -> None:
        super().__init__()
        self.qkv = _QKV(embed_dim, attn_width)
        self.proj = _Linear(attn_width, embed_dim)


class _Mlp(nn.Module):
    def __init__(self, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = _Linear(embed_dim, hidden_dim)
        self.fc2 = _Linear(hidden_dim, embed_dim)


class SupernetBlock(nn.Module):
    """One transformer layer at its largest size, runnable at any smaller one."""

    def __init__(self, embed_dim: int, attn_width: int, mlp_hidden_dim: int, head_dim: int) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.norm1 = _LayerNorm(embed_dim, eps=1e-6)
        self.attn = _Attention(embed_dim, attn_width)
        self.norm2 = _LayerNorm(embed_dim, eps=1e-6)
        self.mlp = _Mlp(embed_dim, mlp_hidden_dim)

    def forward(self, x: torch.Tensor, num_heads: int, mlp_hidden_dim: int, drop_prob: float) -> torch.Tensor:
        x = x + drop_path(self._attention(self.norm1.elastic(x), num_heads), drop_prob, self.training)
        return x + drop_path(self._mlp(self.norm2.elastic(x), mlp_hidden_dim), drop_prob, self.training)

    def _attention(self, x: torch.Tensor, num_heads: int) -> torch.Tensor:
        batch, tokens, embed = x.shape
        width = num_heads * self.head_dim
        qkv = F.linear(x, *self.attn.qkv.sliced(width, embed))
        q, k, v = qkv.view(batch, tokens, 3, num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(batch, tokens, width)
        return F.linear(out, *self.attn.proj.sliced(embed, width))

    def _mlp(self, x: torch.Tensor, hidden: int) -> torch.Tensor:
        embed = x.shape[-1]
        x = F.gelu(F.linear(x, *self.mlp.fc1.sliced(hidden, embed)))
        return F.linear(x, *self.mlp.fc2.sliced(embed, hidden))

    def export_state(self, embed: int, num_heads: int, hidden: int) -> dict[str, torch.Tensor]:
        """This layer's weights at the given size, under timm's ``Block`` key names."""
        width = num_heads * self.head_dim
        tensors = {
            "norm1": self.norm1.sliced(embed),
            "attn.qkv": self.attn.qkv.sliced(width, embed),
            "attn.proj": self.attn.proj.sliced(embed, width),
            "norm2": self.norm2.sliced(embed),
            "mlp.fc1": self.mlp.fc1.sliced(hidden, embed),
            "mlp.fc2": self.mlp.fc2.sliced(embed, hidden),
        }
        state = {}
        for name, (weight, bias) in tensors.items():
            state[f"{name}.weight"], state[f"{name}.bias"] = weight, bias
        return state


class PatchEmbedding(nn.Module):
    def __init__(self, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor, embed: int) -> torch.Tensor:
        x = F.conv2d(images, self.proj.weight[:embed], self.proj.bias[:embed], stride=self.proj.stride)
        return x.flatten(2).transpose(1, 2)


class Supernet(nn.Module):
    """Weight-sharing ViT covering every arch of ``space``.

    ``supernet(images, arch)`` runs one subnet; ``supernet.extract(arch)`` copies it
    out as a standalone :class:`~focusformer.subnet.SubnetViT`.
    """

    def __init__(self, space: SearchSpace, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.space = space
        self.drop_path_rate = drop_path_rate
        largest = space.largest()
        embed = largest.embed_dim
        self.patch_embed = PatchEmbedding(space.in_chans, embed, space.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed))
        self.pos_embed = nn.Parameter(torch.zeros(1, space.num_tokens, embed))
        self.blocks = nn.ModuleList(
            SupernetBlock(embed, space.num_heads[-1] * space.head_dim, space.max_mlp_hidden_dim, space.head_dim)
            for _ in range(space.max_depth)
        )
        self.norm = _LayerNorm(embed, eps=1e-6)
        self.head = _Linear(embed, space.num_classes)
        named_apply(init_weights_vit_timm, self)
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    def forward(self, images: torch.Tensor, arch: Arch) -> torch.Tensor:
        self.space.validate(arch)
        embed = arch.embed_dim
        x = self.patch_embed(images, embed)
        cls = self.cls_token[..., :embed].expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed[..., :embed]
        # Stochastic depth grows linearly over the subnet's own depth, as in timm's ViT.
        last = max(arch.depth - 1, 1)
        for i in range(arch.depth):
            drop_prob = self.drop_path_rate * i / last
            x = self.blocks[i](x, arch.num_heads[i], arch.mlp_hidden_dim(i), drop_prob)
        x = self.norm.elastic(x)
        return F.linear(x[:, 0], *self.head.sliced(self.space.num_classes, embed))

    def subnet_state_dict(self, arch: Arch) -> dict[str, torch.Tensor]:
        """The weights ``arch`` inherits, as fresh tensors under timm's key names."""
        self.space.validate(arch)
        e = arch.embed_dim
        state = {
            "cls_token": self.cls_token[..., :e],
            "pos_embed": self.pos_embed[..., :e],
            "patch_embed.proj.weight": self.patch_embed.proj.weight[:e],
            "patch_embed.proj.bias": self.patch_embed.proj.bias[:e],
            "norm.weight": self.norm.weight[:e],
            "norm.bias": self.norm.bias[:e],
            "head.weight": self.head.weight[:, :e],
            "head.bias": self.head.bias,
        }
        for i in range(arch.depth):
            block_state = self.blocks[i].export_state(e, arch.num_heads[i], arch.mlp_hidden_dim(i))
            state.update({f"blocks.{i}.{k}": v for k, v in block_state.items()})
        return {k: v.detach().clone().contiguous() for k, v in state.items()}

    def extract(self, arch: Arch) -> SubnetViT:
        """A standalone dense model of ``arch`` with its own copy of the inherited weights."""
        model = SubnetViT(arch, self.space, drop_path_rate=self.drop_path_rate)
        model.load_state_dict(self.subnet_state_dict(arch))
        param = next(self.parameters())
        return model.to(device=param.device, dtype=param.dtype).train(self.training)
