"""``focusformer-export``: write one subnet of a trained supernet as a standalone model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data import load_data
from ..devices import default_device
from ..errors import ConfigError
from ..export import ARCH_FILE, EXPORT_FORMATS, export_files, read_arch_file, save_export
from ..hub import Provenance
from ..onnx_export import require_onnx
from ..search.scoring import CandidateScorer
from ..spaces.base import ArchBase
from ..spaces.elastic import Side
from ..spaces.supernet import Supernet
from ..training.checkpoint import config_from_checkpoint, load_checkpoint, supernet_from_payload
from .budgeted import best_side
from .common import ArgumentParser, check_not_in_run, command_line, ensure_writable_output, run_command

PROG = "focusformer-export"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Export a subnet of a trained supernet as model.safetensors + arch.json (timm key names), "
                    "or as a standalone model.onnx + arch.json.",
        epilog="Example: focusformer-export --checkpoint runs/digits --largest --output exported/largest",
    )
    parser.add_argument("--checkpoint", type=Path, required=True, metavar="RUN",
                        help="a run directory (or its last.pt)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", type=Path, metavar="ARCH.json",
                       help="JSON with the arch's fields for the run's family (an exported arch.json works too)")
    which.add_argument("--largest", action="store_true", help="the largest subnet of the space")
    which.add_argument("--smallest", action="store_true", help="the smallest subnet of the space")
    parser.add_argument("--output", type=Path, required=True, metavar="DIR")
    parser.add_argument("--format", choices=EXPORT_FORMATS, default="safetensors",
                        help="safetensors weights (load_subnet, timm) or a standalone ONNX model with a dynamic "
                             "batch size (needs the onnx extra); default: %(default)s")
    parser.add_argument("--side", choices=("left", "right", "best"), default="best",
                        help="which end of the supernet's weights the subnet takes (bilateral weight sharing): "
                             "left, right, or best (the better on search-val; left for left weight sharing); "
                             "default: %(default)s")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export in DIR, or write inside a training run's directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _export(args))


def _export(args: argparse.Namespace) -> None:
    if args.format == "onnx":
        require_onnx()
    check_not_in_run(args.output, "--output", args.overwrite)
    payload = load_checkpoint(args.checkpoint)
    config = config_from_checkpoint(payload, args.checkpoint)
    supernet = supernet_from_payload(payload, config, args.checkpoint)
    space = supernet.space
    if args.side == "right" and space.weight_sharing != "bilateral":
        raise ConfigError(f"--side right: this run was trained with space.weight_sharing {space.weight_sharing}, "
                          "so only its left slices were trained; drop --side")
    if args.largest:
        arch = space.largest()
    elif args.smallest:
        arch = space.smallest()
    else:
        arch = read_arch_file(args.arch, space)
    ensure_writable_output(args.output, export_files(args.format), args.overwrite,
                           hint="pass --overwrite to replace it or choose another --output")
    side = _chosen_side(args.side, supernet, config, arch)
    save_export(supernet.extract(arch, side), args.output, args.format, side, Provenance.of_run(config, command_line()))
    record = json.loads((args.output / ARCH_FILE).read_text())
    at_side = f", {side} side" if space.weight_sharing == "bilateral" else ""
    print(f"exported {arch}: {record['macs'] / 1e6:.2f}M MACs, {record['params'] / 1e6:.3f}M params "
          f"({args.format}{at_side}) -> {args.output}")


def _chosen_side(asked: str, supernet: Supernet, config, arch: ArchBase) -> Side:
    """``left``/``right`` as asked; ``best``: the side with the better search-val top-1 (bilateral only)."""
    if asked != "best":
        return asked
    if config.space.weight_sharing != "bilateral":
        return "left"
    device = default_device()
    splits = load_data(config.data, config.space, config.train)
    scorer = CandidateScorer(supernet.to(device), splits.search_val, device, config.train.eval_batch_size,
                             amp=config.train.amp)
    side, scores = best_side(scorer, arch)
    supernet.cpu()
    print(f"search-val top-1: left {scores['left']:.2f}%, right {scores['right']:.2f}%; exporting the {side} side")
    return side


if __name__ == "__main__":
    raise SystemExit(main())
