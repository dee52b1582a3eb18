"""User-facing errors: the CLI prints their message (no traceback) and exits with status 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: bad name, missing file, invalid config. The message says what to do."""


class DatasetError(UserError):
    """A dataset cannot be loaded or split as asked."""


class ConfigError(UserError):
    """An invalid suite file or command-line option."""


class TrackingError(UserError):
    """The tracking store cannot be reached or written."""
