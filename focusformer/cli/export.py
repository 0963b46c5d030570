"""``focusformer-export``: write one subnet of a trained supernet as a standalone model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..training.checkpoint import load_supernet
from ..export import ARCH_FILE, EXPORT_FORMATS, export_files, read_arch_file, save_export
from ..onnx_export import require_onnx
from .common import ArgumentParser, check_not_in_run, ensure_writable_output, run_command

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
    supernet = load_supernet(args.checkpoint)
    space = supernet.space
    if args.largest:
        arch = space.largest()
    elif args.smallest:
        arch = space.smallest()
    else:
        arch = read_arch_file(args.arch, space)
    ensure_writable_output(args.output, export_files(args.format), args.overwrite,
                           hint="pass --overwrite to replace it or choose another --output")
    save_export(supernet.extract(arch), args.output, args.format)
    record = json.loads((args.output / ARCH_FILE).read_text())
    print(f"exported {arch}: {record['macs'] / 1e6:.2f}M MACs, {record['params'] / 1e6:.3f}M params "
          f"({args.format}) -> {args.output}")


if __name__ == "__main__":
    raise SystemExit(main())
