"""Errors a user can fix, and how command-line programs report them; a training fault."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: reported as one line and exit code 2, never as a traceback."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ConfigError(UserError, ValueError):
    """A configuration value is invalid; `field` names the config key."""


class DataError(UserError):
    """A data file or corpus cannot be used; `field` names the config key or the path."""


class NumericalFault(RuntimeError):
    """A loss, gradient or weight stopped being finite; the run stops, checkpoints stay good.

    Not a `UserError`: the input was valid, training diverged; inattn-train exits with 3.
    """
