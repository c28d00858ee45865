"""Errors of the directory. ``web`` maps them to HTTP problems in one place."""

from __future__ import annotations

from typing import Any


class DirectoryError(Exception):
    """Base of the directory's errors: a machine code and a human message."""

    code = "directory_error"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.extra = extra


class NotFound(DirectoryError):
    code = "not_found"


class Invalid(DirectoryError):
    """The input names something that does not exist or breaks a rule of the directory."""

    code = "invalid"


class Conflict(DirectoryError):
    """A unique value is taken, or the row is still referenced (``extra['referenced_by']``)."""

    code = "conflict"


class AuthenticationFailed(DirectoryError):
    code = "authentication_failed"
