"""The layout of a training run's directory: the names that training writes and every command
reads, in one place."""

from __future__ import annotations

from pathlib import Path

#: The resumable checkpoint (weights, optimizer, sampler, the config it trained with).
CHECKPOINT_FILE = "last.pt"
#: The config the run trained with, as YAML.
CONFIG_FILE = "config.yaml"
#: One row per epoch.
SUMMARY_FILE = "summary.csv"
#: The final report, written when training ends.
FINAL_FILE = "final.json"
#: TensorBoard's event files.
EVENTS_DIR = "tensorboard"
#: Where a subnet run writes its trained model (``model.safetensors`` + ``arch.json``).
SUBNET_DIR = "subnet"
#: What the commands record about a run (specialize's and search's results, search states,
#: cached clouds); the one folder of a run that commands write into.
RESULTS_DIR = "results"
#: Files only a training run's directory holds (a config.yaml alone is not enough: users keep
#: their own configs under that name).
RUN_MARKERS = (CHECKPOINT_FILE, SUMMARY_FILE, FINAL_FILE)


def enclosing_run(path: Path) -> Path | None:
    """The training-run directory ``path`` is, or lies inside, if any."""
    path = path.resolve()
    for directory in (path, *path.parents):
        if any((directory / name).is_file() for name in RUN_MARKERS):
            return directory
    return None
