"""Exceptions that carry a message meant for the user.

Command-line entry points catch :class:`FocusformerError` and print its message
on one line (exit code 2) instead of a traceback.
"""


class FocusformerError(Exception):
    """Base class for errors caused by user input (configs, data, checkpoints)."""


class ConfigError(FocusformerError):
    """A config file, search space or architecture is malformed or out of range."""


class DataError(FocusformerError):
    """A data set is missing, empty, corrupt or does not fit the search space."""


class CheckpointError(FocusformerError):
    """A checkpoint or exported subnet is missing, corrupt or incompatible."""
