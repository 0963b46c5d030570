"""Training checkpoints: one ``last.pt`` per run directory.

Saved atomically (temporary file, fsync, rename) and loaded with
``torch.load(weights_only=True)``, so a checkpoint from an untrusted source
cannot run code. Everything in it is tensors and plain Python data.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import Config
from ..errors import CheckpointError, ConfigError
from ..fileio import atomic_writer
from ..run_dir import CHECKPOINT_FILE, SUBNET_DIR
from ..spaces import create_supernet
from ..spaces.supernet import Supernet
from ..version import __version__

FORMAT_VERSION = 1


def checkpoint_path(run: str | Path) -> Path:
    """``run`` is a run directory or a checkpoint file."""
    run = Path(run)
    return run / CHECKPOINT_FILE if run.is_dir() else run


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    payload = {"format_version": FORMAT_VERSION, "focusformer_version": __version__, **payload}
    with atomic_writer(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(run: str | Path) -> dict[str, Any]:
    """Load and sanity-check a checkpoint; every failure is a :class:`CheckpointError`."""
    path = checkpoint_path(run)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint here (expected a run directory holding {CHECKPOINT_FILE})")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - on a file that is no checkpoint torch's unpickler raises anything
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(
            f"{path}: truncated or corrupt checkpoint ({reason}); restore it from a copy or start a new run"
        ) from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path}: not a focusformer checkpoint")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload['format_version']} written by focusformer "
            f"{payload.get('focusformer_version', '?')}; this version {__version__} reads format {FORMAT_VERSION}"
        )
    return payload


def config_from_checkpoint(payload: dict[str, Any], path: str | Path) -> Config:
    try:
        return Config.from_dict(_as_trained(payload["config"]), where="")
    except (KeyError, ConfigError) as exc:
        raise CheckpointError(f"{path}: its config is invalid ({exc})") from None


def _as_trained(data: Any) -> Any:
    """A saved config, read as the run was trained by the version that saved it.

    Before ``data.split_seed``, search-val was held out by ``train.seed`` and no reward images were:
    read it so, and the run is scored on the images it held out, not on ones it trained on. Before
    the sandwich rule was one switch, ``train.sampler: sandwich`` was uniform with ``train.sandwich``.
    """
    if not isinstance(data, dict):
        return data
    train = data.get("train") if isinstance(data.get("train"), dict) else {}
    if isinstance(data.get("data"), dict) and "split_seed" not in data["data"]:
        data = {**data, "data": {**data["data"], "split_seed": train.get("seed", 0), "reward_size": 0}}
    if train.get("sampler") == "sandwich":
        data = {**data, "train": {**train, "sampler": "uniform", "sandwich": True}}
    return data


def capture_rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {**np_state, "state": {**np_state["state"], "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64))}},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np_state = state["numpy"]
    np.random.set_state({**np_state, "state": {**np_state["state"], "key": np_state["state"]["key"].numpy().astype(np.uint32)}})
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_supernet(run: str | Path) -> Supernet:
    """The trained supernet of a run, in eval mode on the CPU."""
    payload = load_checkpoint(run)
    return supernet_from_payload(payload, config_from_checkpoint(payload, run), run)


def check_supernet_run(config: Config, run: str | Path) -> None:
    """CheckpointError, naming where its model is, if ``run`` trained one subnet rather than a supernet."""
    if config.subnet.arch is not None:
        run_dir = Path(run) if Path(run).is_dir() else Path(run).parent
        raise CheckpointError(f"{run}: a subnet run (focusformer-train --subnet) holds one trained subnet, not a "
                              f"supernet to specialize or search; its model is exported in {run_dir / SUBNET_DIR}")


def supernet_from_payload(payload: dict[str, Any], config: Config, run: str | Path) -> Supernet:
    """A loaded checkpoint's weights in a supernet of its config's space, in eval mode on the CPU: its
    moving average where the run kept one (``train.model_ema``), the weights it evaluates."""
    check_supernet_run(config, run)
    supernet = create_supernet(config.space)
    try:
        supernet.load_state_dict(payload["model_ema" if config.train.model_ema else "model"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{run}: weights do not match the checkpoint's search space ({exc})") from None
    return supernet.eval()
