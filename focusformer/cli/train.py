"""``focusformer-train``: train a supernet (with no arguments: the digits config, about a minute on 2 CPU cores)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from ..config import (
    DEFAULT_CONFIG,
    DEIT_BASE_BATCH,
    Config,
    DistillName,
    SamplerName,
    SubnetConfig,
    SubnetInit,
    check_applicable,
    load_config,
    shipped_configs,
)
from ..errors import ConfigError, FocusformerError
from ..export import export_files
from ..run_dir import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    EVENTS_DIR,
    FINAL_FILE,
    RESULTS_DIR,
    RUN_MARKERS,
    SUBNET_DIR,
    SUMMARY_FILE,
)
from .common import (
    ArgumentParser,
    ensure_writable_output,
    positive_float,
    positive_int,
    removed_if_unfinished,
    run_command,
)

if TYPE_CHECKING:
    from ..distributed import Ranks

PROG = "focusformer-train"

# Command-line flags that are shorthands for config overrides.
_FLAG_OVERRIDES = {
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "sampler": "train.sampler",
    "data_dir": "data.data_dir",
    "checkpoint_every": "train.checkpoint_every",
    "target_budgets": "train.target_budgets",
    "sandwich": "train.sandwich",
    "distill": "train.distill",
}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Train a weight-sharing ViT supernet. With no arguments, trains the digits config.",
        epilog="Example: focusformer-train --config fashion-mnist --epochs 5 --set train.drop_path=0.1",
    )
    parser.add_argument("--config",
                        help=f"a YAML file or a shipped config ({', '.join(shipped_configs())}); default: "
                             f"{DEFAULT_CONFIG}, or with --subnet the shipped config of the subnet's space")
    parser.add_argument("--output", type=Path,
                        help="run directory (default: runs/<space name>-<date>-<time>)")
    parser.add_argument("--epochs", type=positive_int)
    parser.add_argument("--batch-size", type=positive_int)
    parser.add_argument("--lr", type=positive_float, help="peak learning rate")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--sampler", choices=get_args(SamplerName),
                        help="how subnets are chosen each step (default: the config's, normally focus)")
    parser.add_argument("--sandwich", action="store_const", const=True,
                        help="also train the largest and the smallest subnet every step (any sampler)")
    parser.add_argument("--distill", choices=get_args(DistillName),
                        help="in-place distillation from the largest subnet: kl or alpha-divergence "
                             "(needs --sandwich)")
    parser.add_argument("--target-budgets", metavar="LIST",
                        help="MAC budgets you deploy at, e.g. 8M,15M,25M: every sampler trains subnets in "
                             "their bands (on spaces with identity layers, such as ViTAS's, uniform sampling "
                             "calibrates the identity probability to them instead)")
    parser.add_argument("--data-dir", help="where the dataset lives (default: the dataset's usual place)")
    parser.add_argument("--checkpoint-every", type=int, metavar="N",
                        help="also save last.pt every N steps within an epoch (a kill loses at most N steps)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config value, e.g. --set train.mixup=0 (repeatable)")
    parser.add_argument("--subnet", type=Path, metavar="DIR",
                        help="train one exported subnet (a directory focusformer-specialize, -search or -export "
                             "wrote) as a dense model instead of a supernet; the trained model is written to "
                             "RUN/subnet/ (model.safetensors + arch.json)")
    parser.add_argument("--init", choices=get_args(SubnetInit),
                        help="with --subnet: start from its exported weights (fine-tune; the default) or from "
                             "timm's initialisation (retrain from scratch)")
    parser.add_argument("--resume", type=Path, metavar="RUN",
                        help="continue the run in directory RUN from its last.pt (its config is reused); with --epochs N, "
                             "extend (or shorten) it to N epochs, the schedule becoming that of an N-epoch run")
    parser.add_argument("--overwrite", action="store_true",
                        help="start over in an --output that already holds a run: its files (checkpoint, logs, "
                             "recorded searches) are removed, others kept")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--dist-timeout", type=positive_float, default=30.0, metavar="MINUTES",
                        help="under torchrun: how long a process waits for the others before the run fails "
                             "(default: %(default)g)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _train(args))


def _given_settings(args: argparse.Namespace) -> dict[str, str]:
    """Config keys set on the command line, each with the flag that set it."""
    given = {key.strip(): f"--set {key.strip()}" for key, _, _ in (o.partition("=") for o in args.overrides)}
    for flag, key in _FLAG_OVERRIDES.items():
        if getattr(args, flag) is not None:
            given[key] = f"--{flag.replace('_', '-')}"
    return given


def _check_config_kept(args: argparse.Namespace, output: Path) -> None:
    """A run writes its resolved config to ``OUTPUT/config.yaml``: refuse when that is the --config file."""
    written = output / CONFIG_FILE
    if (args.config is not None and written.exists() and Path(args.config).exists()
            and written.samefile(args.config) and not args.overwrite):
        raise FocusformerError(f"--output {output} would overwrite the --config file {written} with the resolved "
                               "config; choose another --output (or pass --overwrite)")


def _train(args: argparse.Namespace) -> int:
    from ..distributed import distributed_session  # imported late so --help stays fast

    with distributed_session(timedelta(minutes=args.dist_timeout)) as ranks:
        return _train_in(args, ranks)


def _train_in(args: argparse.Namespace, ranks: Ranks) -> int:
    """Train on this process's share; under torchrun every rank runs this, rank 0 alone prints."""
    from ..training.trainer import Trainer, TrainingInterrupted

    say = print if ranks.is_main else (lambda *_, **__: None)
    if args.init is not None and args.subnet is None:
        raise FocusformerError("--init applies only with --subnet; drop it or add --subnet DIR")
    if args.resume is not None:
        changed = [f"--{name.replace('_', '-')}" for name in ("output", "overwrite", "config", "subnet", "init",
                                                               *_FLAG_OVERRIDES)
                   if name != "epochs" and getattr(args, name) not in (None, False)]
        if changed or args.overrides:
            raise FocusformerError(
                f"--resume reuses the run's own config (only --epochs may change it); drop {(changed + ['--set'])[0]}"
            )
        trainer = Trainer.resume(args.resume, progress=not args.no_progress, ranks=ranks, epochs=args.epochs)
        epochs = trainer.config.train.epochs
        if trainer.epoch == epochs and trainer.resized_from is None and (trainer.output_dir / FINAL_FILE).is_file():
            say(f"{args.resume} has finished its {epochs} epochs ({trainer.output_dir / FINAL_FILE}); nothing to "
                f"resume. To train it longer, pass --epochs N with N > {epochs}")
            return 0
        say(f"resuming {args.resume} at step {trainer.step} (epoch {trainer.epoch + 1}, "
            f"step {trainer.step_in_epoch} of {trainer.steps_per_epoch}); {_scale(trainer.config, ranks)}")
        before, now = trainer.resized_from, trainer.config.train.epochs
        if before is not None:
            say(f"{'extending' if now > before else 'shortening'} the run from {before} to {now} epochs: the "
                f"learning-rate schedule is now that of a {now}-epoch run (as timm's --resume), so the rate at "
                f"step {trainer.step} is {trainer.optimizer.param_groups[0]['lr']:.3g}")
    else:
        flags = {key: getattr(args, flag) for flag, key in _FLAG_OVERRIDES.items() if getattr(args, flag) is not None}
        if args.subnet is not None:
            config = subnet_run_config(args.subnet, args.init or "inherited", args.config, args.overrides, flags)
        else:
            config = load_config(args.config or DEFAULT_CONFIG, args.overrides, flags)
        check_applicable(config, _given_settings(args))
        if args.overwrite and args.output is None:
            raise FocusformerError("--overwrite applies only with --output (the default output is a new directory)")
        # Rank 0's name: ranks starting a second apart would otherwise stamp different ones.
        default = Path("runs") / f"{config.space.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        output = ranks.from_main(args.output or default)
        _check_config_kept(args, output)
        if args.subnet is not None and output.resolve().is_relative_to(args.subnet.resolve()):
            raise FocusformerError(f"--output {output} lies inside --subnet {args.subnet}; choose an --output outside it")
        # Data checks run while the trainer is built: a refusal there removes what this made.
        with removed_if_unfinished(output if ranks.is_main else None):
            ensure_writable_output(output, [CHECKPOINT_FILE], args.overwrite,
                                   hint="pass --resume to continue it or --overwrite to start over")
            trainer = Trainer(config, output, progress=not args.no_progress, ranks=ranks)
        if args.overwrite and ranks.is_main:
            removed = remove_earlier_run(output)
            if removed:
                say(f"--overwrite: removed the earlier run's {', '.join(removed)} from {output}")
        what = (f"{config.space.name} ({config.train.sampler} sampler" if args.subnet is None else
                f"subnet {config.subnet_arch} of {config.space.name} (init {config.subnet.init}")
        say(f"training {what}, {config.train.epochs} epochs, device {trainer.device}) -> {output}; "
            f"{_scale(config, ranks)}")
    try:
        trainer.fit()
    except TrainingInterrupted as stopped:
        if ranks.is_main:
            print(f"{PROG}: {stopped}", file=sys.stderr)
        return 128 + stopped.signum
    return 0


#: What a training run writes into its directory, and what searches record there (glob
#: patterns per folder): all of it describes the run that wrote it, so a run started over in the
#: same directory removes it. Only these names go: the user's own files there stay.
RUN_OUTPUTS = {
    ".": (CHECKPOINT_FILE, CONFIG_FILE, SUMMARY_FILE, FINAL_FILE),
    EVENTS_DIR: ("events.out.tfevents.*",),
    SUBNET_DIR: tuple(dict.fromkeys(export_files("safetensors") + export_files("onnx"))),  # an export
    RESULTS_DIR: ("*.jsonl", "*.state.json", "cloud-*.json"),
}


def remove_earlier_run(output: Path) -> list[str]:
    """Remove an earlier run's files from ``output`` if it holds a run (its checkpoint, summary or
    final report), and the folders they leave empty; the names removed."""
    if not any((output / name).is_file() for name in RUN_MARKERS):
        return []
    removed = []
    for folder, patterns in RUN_OUTPUTS.items():
        found = sorted({path for pattern in patterns for path in (output / folder).glob(pattern) if path.is_file()})
        for path in found:
            path.unlink()
        if folder == ".":
            removed += [path.name for path in found]
        elif found:
            removed.append(f"{folder}/")
            with contextlib.suppress(OSError):  # the user's own files keep it
                (output / folder).rmdir()
    return removed


def subnet_run_config(subnet: Path, init: str, config_name: str | None, overrides: list[str],
                      flags: dict) -> Config:
    """The config of a run that trains the exported subnet in ``subnet``: its space and arch from
    ``arch.json``, the data and recipe from ``config_name`` (default: the shipped config named as
    the subnet's space), one set of weights (left sharing), uniform (fixed-arch) steps."""
    from ..export import read_export  # imported late so --help stays fast

    space, arch = read_export(subnet)
    if config_name is None:
        if space.name not in shipped_configs():
            raise ConfigError(f"--subnet {subnet}: its space {space.name!r} is no shipped config; pass --config "
                              "for the data and training recipe")
        config_name = space.name
    if "train.sampler" in flags:  # any sampler picks subnets of a supernet, uniform too
        raise ConfigError("--sampler: a subnet run trains one arch; drop --sampler")
    config = load_config(config_name, overrides, flags)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, sampler="uniform"))
    return dataclasses.replace(config, space=dataclasses.replace(space, weight_sharing="left"),
                               subnet=SubnetConfig(arch=arch.to_dict(), init=init, source=str(subnet)))


def _scale(config: Config, ranks: Ranks) -> str:
    """World size, global batch and the learning rate the schedule peaks at."""
    train = config.train
    per_rank = f" = {ranks.world_size} processes x {train.batch_size // ranks.world_size}" if ranks.distributed else ""
    scaled = f" (train.lr {train.lr:g} x {train.batch_size}/{DEIT_BASE_BATCH})" if train.scale_lr else ""
    return f"global batch {train.batch_size}{per_rank}, peak lr {train.peak_lr:.3g}{scaled}"


if __name__ == "__main__":
    raise SystemExit(main())
