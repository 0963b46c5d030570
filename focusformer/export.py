"""Standalone subnet files: ``model.safetensors`` (or ``model.onnx``) plus ``arch.json``, and a
timm ``config.json`` and model card ``README.md`` (:mod:`focusformer.hub`).

``arch.json`` holds the arch's own keys (so it is also a valid ``--arch`` file),
its MACs and parameter count, and the search space that fixes everything else
the model needs to be rebuilt. Loading runs no code from the files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import CheckpointError, ConfigError
from .fileio import atomic_write_text, atomic_writer, read_json
from .hub import MODEL_CARD_FILE, TIMM_CONFIG_FILE, Provenance, model_card, timm_config
from .onnx_export import ONNX_FILE, export_onnx
from .spaces import SearchSpace
from .spaces.base import ArchBase
from .spaces.counts import count_macs, count_params
from .spaces.elastic import Side

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
ARCH_FILE = "arch.json"
_METADATA_KEYS = ("macs", "params", "space", "format_version", "side")

ExportFormat = Literal["safetensors", "onnx"]
EXPORT_FORMATS: tuple[str, ...] = ("safetensors", "onnx")


def arch_record(arch: ArchBase, space: SearchSpace, side: Side = "left") -> dict[str, Any]:
    """What ``arch.json`` holds for ``arch`` exported with the weights of ``side``."""
    return {
        **arch.to_dict(),
        "macs": count_macs(arch, space),
        "params": count_params(arch, space),
        "side": side,
        "space": space.to_dict(),
        "format_version": FORMAT_VERSION,
    }


def read_arch_file(path: str | Path, space: SearchSpace) -> ArchBase:
    """Read an arch from JSON (a bare arch or an exported ``arch.json``) and validate it."""
    path = Path(path)
    data = read_json(path, "no such file", "not a readable JSON arch")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object with the arch's fields ({type(space).__name__})")
    arch_keys = {k: v for k, v in data.items() if k not in _METADATA_KEYS}
    try:
        return space.arch_from_dict(arch_keys)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_subnet(model: nn.Module, directory: str | Path, side: Side = "left",
                provenance: Provenance = Provenance()) -> Path:
    """Write ``model`` to ``directory`` (created if needed) as a timm model folder: the weights,
    ``arch.json``, timm's ``config.json`` and a model card (:mod:`focusformer.hub`); each file is
    written atomically. ``side`` is recorded in ``arch.json``: the side of the supernet its weights
    came from; ``provenance`` goes into the card and the config's preprocessing."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_writer(directory / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "focusformer_format": str(FORMAT_VERSION)})
    _write_arch_file(model, directory, side)
    atomic_write_text(directory / TIMM_CONFIG_FILE,
                      json.dumps(timm_config(model.space, model.arch, provenance), indent=2) + "\n")
    atomic_write_text(directory / MODEL_CARD_FILE, model_card(model.space, model.arch, provenance))
    return directory


def export_files(fmt: ExportFormat) -> tuple[str, ...]:
    """The files an export in format ``fmt`` writes."""
    if fmt == "onnx":
        return ONNX_FILE, ARCH_FILE, MODEL_CARD_FILE
    return WEIGHTS_FILE, ARCH_FILE, TIMM_CONFIG_FILE, MODEL_CARD_FILE


def save_export(model: nn.Module, directory: str | Path, fmt: ExportFormat = "safetensors",
                side: Side = "left", provenance: Provenance = Provenance()) -> Path:
    """:func:`save_subnet`, or for ``onnx`` a standalone ``model.onnx`` (dynamic batch), ``arch.json``
    and the model card. An earlier export's files of the other format are removed once the new
    ones are written: left beside them, timm or onnxruntime would load the earlier model."""
    directory = Path(directory)
    if fmt != "onnx":
        save_subnet(model, directory, side, provenance)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        export_onnx(model, directory / ONNX_FILE)
        _write_arch_file(model, directory, side)
        atomic_write_text(directory / MODEL_CARD_FILE, model_card(model.space, model.arch, provenance))
    for name in set(export_files("onnx") + export_files("safetensors")) - set(export_files(fmt)):
        (directory / name).unlink(missing_ok=True)
    return directory


def _write_arch_file(model: nn.Module, directory: Path, side: Side) -> None:
    record = arch_record(model.arch, model.space, side)
    atomic_write_text(directory / ARCH_FILE, json.dumps(record, indent=2) + "\n")


def read_export(directory: str | Path) -> tuple[SearchSpace, ArchBase]:
    """The search space and arch of the exported subnet in ``directory`` (its weights unread)."""
    directory = Path(directory)
    arch_path, weights_path = directory / ARCH_FILE, directory / WEIGHTS_FILE
    for path in (arch_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f"{directory}: not an exported subnet ({path.name} is missing)")
    try:
        record = json.loads(arch_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{arch_path}: corrupt ({exc})") from None
    if not isinstance(record, dict):
        raise CheckpointError(f"{arch_path}: expected a JSON object, got {type(record).__name__}")
    version = record.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise CheckpointError(
            f"{arch_path}: unsupported format_version {version!r} (this focusformer reads {FORMAT_VERSION})"
        )
    try:
        space = SearchSpace.from_dict(record["space"], where=f"{arch_path}: space")
        return space, read_arch_file(arch_path, space)
    except (KeyError, ConfigError) as exc:
        raise CheckpointError(f"{arch_path}: invalid ({exc})") from None


def load_subnet(directory: str | Path) -> nn.Module:
    """Load an exported subnet (its family's dense model) in eval mode; no supernet needed."""
    space, arch = read_export(directory)
    weights_path = Path(directory) / WEIGHTS_FILE
    model = space.build_subnet(arch)
    try:
        state = load_file(str(weights_path))
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"{weights_path}: corrupt or does not match arch.json ({exc})") from None
    return model.eval()
