"""What every command shares: one-line errors with exit code 2 instead of tracebacks."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from ..errors import FocusformerError
from ..run_dir import enclosing_run

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``prog: error: ...``), exit code 2, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def run_command(prog: str, body: Callable[[], int | None]) -> int:
    """Run ``body``; user errors print ``prog: error: message`` and return 2."""
    try:
        return body() or 0
    except FocusformerError as exc:
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())  # always one line
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def command_line() -> list[str]:
    """This command as typed: its name and arguments (for the model card of what it exports)."""
    return [Path(sys.argv[0]).name, *sys.argv[1:]]


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    return _int_at_least(text, 0, "0 or a positive integer")


def _int_at_least(text: str, minimum: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value:g}")
    return value


def check_output_dir(directory: Path, existing: Sequence[str], overwrite: bool, hint: str) -> None:
    """Fail early, creating nothing, if ``directory`` cannot take our files or already holds
    any of ``existing`` (unless ``overwrite``)."""
    found = [name for name in existing if (directory / name).exists()]
    if found and not overwrite:
        raise FocusformerError(f"{directory} already holds {found[0]}; {hint}")
    if directory.exists() and not directory.is_dir():
        raise FocusformerError(f"{directory} exists and is not a directory")
    ancestor = directory
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise FocusformerError(f"cannot create {directory}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise FocusformerError(f"output directory {directory} is not writable")
    try:  # os.access says yes to root even where nothing can be made (/sys, a read-only mount)
        os.rmdir(tempfile.mkdtemp(prefix=".focusformer-probe-", dir=ancestor))
    except OSError as exc:
        raise FocusformerError(f"output directory {directory} is not writable ({exc.strerror})") from None


@contextlib.contextmanager
def removed_if_unfinished(directory: Path | None) -> Iterator[None]:
    """If the block raises, remove what it created of ``directory`` (the outermost of it and its
    parents that did not exist before, with all it holds): a command refused before it did any
    work leaves no empty run directory behind. ``None`` removes nothing."""
    created = None
    for path in (directory, *directory.parents) if directory is not None else ():
        if path.exists():
            break
        created = path
    try:
        yield
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


def ensure_writable_output(directory: Path, existing: Sequence[str], overwrite: bool, hint: str) -> None:
    """:func:`check_output_dir`, then create ``directory``."""
    check_output_dir(directory, existing, overwrite, hint)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FocusformerError(f"cannot create output directory {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise FocusformerError(f"output directory {directory} is not writable")


def check_not_in_run(path: Path, flag: str, overwrite: bool = False, can_overwrite: bool = True) -> None:
    """Refuse an output that is a training run's directory or lies inside one, unless ``overwrite``:
    a run's directory belongs to the run (``results/`` aside, which commands manage themselves)."""
    run = enclosing_run(path)
    if run is None or overwrite:
        return
    where = "is" if run == path.resolve() else "is inside"
    hint = " (or pass --overwrite to write there anyway)" if can_overwrite else ""
    raise FocusformerError(f"{flag} {path} {where} the training run {run}; choose a path outside it{hint}")
