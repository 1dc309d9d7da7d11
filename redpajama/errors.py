"""Errors a user can fix: the CLI prints their message and hint as one line each, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A known problem with the user's input or setup, with the next thing to try."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
