"""Where every command prints: the console, stderr, and the error line a refusal ends with."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit (code 1 by default) to raise."""
    # One line however narrow the terminal: a path or URL in it stays whole, to copy.
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)
