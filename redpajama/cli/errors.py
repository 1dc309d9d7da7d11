"""Known errors -> one line of explanation and the next thing to try."""

from __future__ import annotations

from redpajama.errors import UserError
from redpajama.io.readers.base import InputFileError
from redpajama.runners.local import RunLockedError

DEBUG_HINT = "run again with REDPAJAMA_DEBUG=1 to see the traceback"


def describe(exc: BaseException) -> tuple[str, str | None, int]:
    """(message, hint, exit code) for an exception that reached the command line."""
    if isinstance(exc, UserError):
        return str(exc), exc.hint, 2
    if isinstance(exc, InputFileError):
        return str(exc), "check the path, or name the format with --input-format", 2
    if isinstance(exc, RunLockedError):
        return str(exc), None, 3
    if isinstance(exc, FileNotFoundError):
        if exc.filename is None:  # raised with a message of its own ("... run `redpajama X` first")
            return str(exc), None, 2
        detail = f" ({exc.strerror})" if exc.strerror and exc.strerror != "No such file or directory" else ""
        return f"no such file or folder: {exc.filename}{detail}", "check the path", 2
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename}", "choose a folder you can write to", 2
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; rerun the same command to resume", None, 130
    return f"{type(exc).__name__}: {exc}", DEBUG_HINT, 1
