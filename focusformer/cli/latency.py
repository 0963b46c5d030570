"""``focusformer-latency``: latency tables measured on the device subnets will run on.

``focusformer-latency build --space CONFIG --device cpu --output lut.json`` times every distinct
module of the space's subnets on this machine (warm-up, repeats, median), fits the calibration
on a few subnets timed whole, and writes the table; ``focusformer-specialize`` and
``focusformer-search`` then take ``--latency 2.5ms --lut lut.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..config import load_config, shipped_configs
from ..errors import ConfigError
from ..run_dir import CONFIG_FILE
from ..spaces import SearchSpace
from .common import ArgumentParser, check_not_in_run, check_output_dir, nonnegative_int, positive_int, run_command

PROG = "focusformer-latency"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Latency tables: module run times measured on the device you deploy on, for latency budgets.",
        epilog="Example: focusformer-latency build --space fashion-mnist --device cpu --output lut.json",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser)
    build = commands.add_parser(
        "build", help="time a space's modules on this machine and write a latency table",
        description="Time every distinct module of a space's subnets on this machine's device (warm-up, repeats, "
                    "median under torch.inference_mode), fit a calibration on subnets timed whole, and write "
                    "the table as JSON.",
    )
    build.add_argument("--space", required=True, metavar="CONFIG",
                       help=f"a shipped config ({', '.join(shipped_configs())}), a YAML file, or a run directory")
    build.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="default: %(default)s")
    build.add_argument("--batch-size", type=positive_int, default=1, help="default: %(default)s")
    build.add_argument("--threads", type=positive_int,
                       help="CPU threads while timing (default: 1, the steadiest on a shared machine; cpu only)")
    build.add_argument("--warmup", type=positive_int, default=10, help="untimed passes per module (default: %(default)s)")
    build.add_argument("--repeats", type=positive_int, default=50,
                       help="timed passes per module, the median kept (default: %(default)s)")
    build.add_argument("--calibration", type=nonnegative_int, default=20, metavar="N",
                       help="subnets timed whole (smallest, largest, random) to fit measured = the modules' times, "
                            "scaled per kind of module, + offset; 0: plain sums (default: %(default)s)")
    build.add_argument("--seed", type=int, default=0, help="seed of the calibration subnets (default: %(default)s)")
    build.add_argument("--output", type=Path, required=True, metavar="LUT.json")
    build.add_argument("--overwrite", action="store_true",
                       help="replace an existing file, or write inside a training run's directory")
    build.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _build(args))


def space_from(name: str) -> SearchSpace:
    """The space of a shipped config, a YAML file, or a run directory (its ``config.yaml``)."""
    path = Path(name)
    if not path.is_dir():
        return load_config(name).space
    if not (path / CONFIG_FILE).is_file():
        raise ConfigError(f"{path}: a directory without {CONFIG_FILE}; give a run directory or a config")
    return load_config(path / CONFIG_FILE).space


def _check_output(args: argparse.Namespace) -> None:
    output: Path = args.output
    if output.is_dir():
        raise ConfigError(f"--output {output} is a directory; give a file name such as {output / 'lut.json'}")
    if output.exists() and not args.overwrite:
        raise ConfigError(f"{output} already exists; pass --overwrite to replace it or choose another --output")
    check_not_in_run(output, "--output", args.overwrite)
    check_output_dir(output.parent, [], overwrite=True, hint="")


def _build(args: argparse.Namespace) -> None:
    from ..latency import TimingSettings, build_table  # imported late so --help stays fast
    from ..latency.timer import check_device

    if args.device == "cuda" and args.threads is not None:
        raise ConfigError("--threads applies only with --device cpu")
    threads = None if args.device == "cuda" else (args.threads or 1)
    settings = TimingSettings(args.device, args.batch_size, threads, args.warmup, args.repeats)
    check_device(settings.device)
    space = space_from(args.space)
    _check_output(args)
    start = time.perf_counter()
    table = build_table(space, settings, args.calibration, args.seed, progress=not args.no_progress)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    table.save(args.output)
    costs = table.cost_model(space)
    fit = table.calibration
    print(f"{space.name} on {table.describe()}: {len(table.measurements)} modules timed in "
          f"{time.perf_counter() - start:.1f}s; subnets {costs.min_cost:.3g} to {costs.max_cost:.3g} ms; "
          f"{fit.describe()} -> {args.output}")


if __name__ == "__main__":
    raise SystemExit(main())
