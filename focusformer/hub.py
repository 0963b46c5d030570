"""Exported subnets as timm model folders: ``timm.create_model("local-dir:DIR", pretrained=True)``.

An export folder holds ``model.safetensors`` and ``arch.json`` (read by
:func:`focusformer.load_subnet`) and, beside them, what timm reads from a local folder or a Hugging
Face hub repository: ``config.json`` (``architecture``, ``num_classes``, ``model_args``,
``pretrained_cfg``) and a model card, ``README.md``. Importing focusformer registers the timm
entry point :func:`focusformer_subnet`, which builds any family's dense subnet from the
``model_args`` (its space and arch), so one folder loads three ways: ``load_subnet(DIR)``,
``timm.create_model("local-dir:DIR", pretrained=True)`` and, once pushed to the hub,
``timm.create_model("hf-hub:ORG/NAME", pretrained=True)``. As everywhere in timm,
``pretrained=False`` builds the architecture with fresh weights.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from timm.models import load_pretrained, register_model
from torch import nn

from .budget import format_count
from .config import Config
from .data import normalization
from .spaces import ArchBase, SearchSpace
from .spaces.counts import count_macs, count_params

__all__ = ["ENTRY_POINT", "TIMM_CONFIG_FILE", "MODEL_CARD_FILE", "Provenance", "focusformer_subnet",
           "timm_config", "model_card"]

ENTRY_POINT = "focusformer_subnet"
TIMM_CONFIG_FILE = "config.json"
MODEL_CARD_FILE = "README.md"


@dataclass(frozen=True)
class Provenance:
    """What an export's model card and timm config say beyond the arch: where it came from."""

    #: The command that made the export, as typed.
    command: str = ""
    #: The budget it was searched for, as a label (``25M MACs``); empty when it was chosen directly.
    budget: str = ""
    search_val_top1: float | None = None
    test_top1: float | None = None
    #: The data set it was trained on, and the per-channel normalisation of images in ``[0, 1]``.
    dataset: str = ""
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @classmethod
    def of_run(cls, config: Config, command: Sequence[str] = (), budget: str = "",
               search_val_top1: float | None = None, test_top1: float | None = None) -> Provenance:
        """What a run of ``config`` tells: its data and normalisation, and the command given (argv)."""
        mean, std = normalization(config.data, config.space)
        return cls(shlex.join(command), budget, search_val_top1, test_top1, config.data.dataset, mean, std)


def timm_config(space: SearchSpace, arch: ArchBase, provenance: Provenance) -> dict[str, Any]:
    """``config.json`` as timm reads it from a model folder: the entry point, its arguments (the space
    and the arch) and the preprocessing the weights expect."""
    pretrained_cfg: dict[str, Any] = {
        "input_size": [space.in_chans, space.image_size, space.image_size],
        "fixed_input_size": True,
        "interpolation": "bicubic",
        "crop_pct": 1.0,
        "num_classes": space.num_classes,
        "classifier": "head",
    }
    if provenance.mean:
        pretrained_cfg.update(mean=list(provenance.mean), std=list(provenance.std))
    return {
        "architecture": ENTRY_POINT,
        "num_classes": space.num_classes,
        "model_args": {"space": space.to_dict(), "arch": arch.to_dict()},
        "pretrained_cfg": pretrained_cfg,
    }


def model_card(space: SearchSpace, arch: ArchBase, provenance: Provenance) -> str:
    """A short model card (``README.md``): what the model is, what it costs, how it scored, how it
    was made and how to load it."""
    def top1(value: float | None) -> str:
        return "not measured" if value is None else f"{value:.2f}%"

    lines = [
        "---",
        "library_name: timm",
        "tags: [image-classification, timm, focusformer]",
        "---",
        f"# {space.name}: {space.family} subnet",
        "",
        f"A subnet of the `{space.name}` search space ({space.family} family) with its weights from a "
        "focusformer supernet, exported as a standalone model.",
        "",
        "| | |",
        "|---|---|",
        f"| arch | `{arch}` |",
        f"| MACs (per image) | {format_count(count_macs(arch, space))} |",
        f"| parameters | {format_count(count_params(arch, space))} |",
        f"| input | {space.in_chans} x {space.image_size} x {space.image_size}, {space.num_classes} classes |",
    ]
    if provenance.budget:
        lines.append(f"| budget asked | {provenance.budget} |")
    if provenance.dataset:
        lines.append(f"| data | {provenance.dataset} |")
    lines += [
        f"| search-val top-1 | {top1(provenance.search_val_top1)} |",
        f"| test top-1 | {top1(provenance.test_top1)} |",
        "",
    ]
    if provenance.command:
        lines += ["Made by:", "", "```bash", provenance.command, "```", ""]
    lines += [
        "Load it (focusformer installed, which registers the model with timm):",
        "",
        "```python",
        "import focusformer, timm",
        'model = timm.create_model("local-dir:PATH/TO/THIS/FOLDER", pretrained=True)  # or "hf-hub:ORG/NAME"',
        'model = focusformer.load_subnet("PATH/TO/THIS/FOLDER")                       # the same weights',
        "```",
        "",
    ]
    return "\n".join(lines)


@register_model
def focusformer_subnet(pretrained: bool = False, *, space: dict[str, Any] | None = None,
                       arch: dict[str, Any] | None = None, pretrained_cfg: Any = None,
                       pretrained_cfg_overlay: dict[str, Any] | None = None, cache_dir: str | Path | None = None,
                       num_classes: int | None = None, drop_path_rate: float = 0.0,
                       pretrained_model_args: dict[str, Any] | None = None, **kwargs: Any) -> nn.Module:
    """timm's entry point for a focusformer export: the dense subnet of ``arch`` in ``space`` (both as
    ``config.json``'s ``model_args`` hold them), with the folder's weights when ``pretrained``.

    ``num_classes`` other than the space's gives a fresh classifier (timm then skips the head's
    weights, as it does for its own models).
    """
    if space is None or arch is None:
        raise ValueError(f"{ENTRY_POINT} builds an exported focusformer subnet from its folder: "
                         'timm.create_model("local-dir:DIR") or ("hf-hub:ORG/NAME")')
    unknown = sorted(k for k, v in kwargs.items() if v is not None)
    if unknown:
        raise ValueError(f"{ENTRY_POINT} does not take {', '.join(unknown)}: its arch and space fix the model")
    search_space = SearchSpace.from_dict(space)
    if num_classes is not None and num_classes != search_space.num_classes:
        search_space = dataclasses.replace(search_space, num_classes=num_classes)
    model = search_space.build_subnet(search_space.arch_from_dict(arch), drop_path_rate=drop_path_rate)
    cfg = dict(pretrained_cfg.to_dict() if hasattr(pretrained_cfg, "to_dict") else pretrained_cfg or {})
    cfg.update(pretrained_cfg_overlay or {})
    cfg.setdefault("architecture", ENTRY_POINT)
    model.pretrained_cfg = model.default_cfg = cfg
    if pretrained:
        load_pretrained(model, pretrained_cfg=cfg, num_classes=search_space.num_classes,
                        in_chans=search_space.in_chans, cache_dir=cache_dir)
    return model
