"""The CLI's consoles, exit codes and one-line messages (``error:``, ``note:``)."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from recsys_core.exceptions import (
    ConfigError,
    DataError,
    DataValidationError,
    GateRejectedError,
    RecsysError,
)
from recsys_core.redaction import redact

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3

console = Console()
err = Console(stderr=True)


def exit_code(exc: BaseException) -> int:
    """3 for a run refused by validation or the gate, 2 for bad input (settings, options,
    data), 1 for every other failure."""
    from pydantic import ValidationError

    if isinstance(exc, DataValidationError | GateRejectedError):
        return EXIT_REFUSED
    if isinstance(exc, ConfigError | DataError | ValidationError):
        return EXIT_BAD_INPUT
    return EXIT_FAILURE


def error_message(exc: BaseException) -> str:
    """One line for the user: recsys's own errors say what to fix; others name their type."""
    from pydantic import ValidationError

    from recsys_core.validation_errors import in_words, plain

    if isinstance(exc, ValidationError):  # in words, without pydantic's links
        return redact(f"invalid settings: {in_words(exc)}")
    text = plain(str(exc)) if "errors.pydantic.dev" in str(exc) else str(exc).strip()
    text = text or type(exc).__name__
    if not isinstance(exc, RecsysError):
        text = f"{type(exc).__name__}: {text}"
    if isinstance(exc, MemoryError):
        text += " (not enough memory; try a smaller data set, k or model)"
    return redact(text)


def help_of(command) -> str:
    """A command's docstring as its ``--help`` text: each paragraph on one line, which the
    terminal then wraps at its width (the help keeps the source's line breaks otherwise, and a
    sentence broke mid-way: "with `recsys train`, whose / gate decides")."""
    import inspect

    paragraphs = inspect.cleandoc(command.__doc__ or "").split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def print_error(message: str) -> None:
    """``error: message`` on stderr."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` (redacted) and leave with exit code ``code``."""
    print_error(redact(message))
    raise typer.Exit(code)


def note(message: str) -> None:
    """``note: message`` on stderr: something the user should know, not an error."""
    from rich.markup import escape

    err.print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)
