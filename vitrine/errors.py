"""The errors of what a user asked for (torch-free): an unknown name, a bad config, a
missing file. The ``vitrine`` command prints their message alone; anything else is a bug and
keeps its traceback."""

from __future__ import annotations

__all__ = ["ConfigError", "MissingFile", "UnknownName", "UserError"]


class UserError(Exception):
    """What was asked for cannot be done as asked; the message says why."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # a KeyError's message, unquoted


class UnknownName(UserError, KeyError):
    """A model, preset, device or other name that is not known; the message lists the known."""


class ConfigError(UserError, ValueError):
    """A config, option or argument value that is not valid."""


class MissingFile(UserError, FileNotFoundError):
    """A file the command needs (a config, a checkpoint, a model folder) is not there."""
