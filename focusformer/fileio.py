"""Atomic file writes (a temporary file beside the target, fsync, then rename: a crash leaves
either the old file or the new one, never a half-written one), and reading JSON and YAML input
files with one-line errors."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import yaml

from .errors import ConfigError


@contextlib.contextmanager
def atomic_writer(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target`` atomically."""
    target = Path(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_directory(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(target: str | Path, text: str) -> None:
    with atomic_writer(target) as tmp:
        tmp.write_text(text)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_json(path: Path, missing: str, unreadable: str) -> Any:
    """The JSON in ``path``; ConfigError ``"PATH: missing"`` if there is no such file, and
    ``"PATH: unreadable (why)"`` if it cannot be read or parsed."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: {unreadable} ({exc})") from None


def read_yaml(path: str | Path) -> Any:
    """The YAML document at ``path``; ConfigError, in one line, if it is missing, unreadable,
    not text or not valid YAML (with the line and column)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a YAML file (not text)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML ({where}{getattr(exc, 'problem', None) or exc})") from None
