"""Where every command prints: the console, stderr, the language, and the error line a
refusal ends with."""

from __future__ import annotations

from collections.abc import Iterable

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from shouhou.errors import Invalid
from shouhou.i18n import FALLBACK, Translator, default_lang, translator

console = Console()
err = Console(stderr=True)


class _Chosen:
    """The language the global ``--lang`` chose for this run (None: not given)."""

    lang: str | None = None


def choose(lang: str | None) -> None:
    """Remember the global ``--lang`` (already checked) for the command that runs next."""
    _Chosen.lang = lang


def speak(lang: str | None = None) -> Translator:
    """The translator a command prints with: its own ``--lang``, else the global ``--lang``,
    else ``$SHOUHOU_LANG`` or the locale; a bad ``$SHOUHOU_LANG`` exits 2."""
    chosen = lang or _Chosen.lang
    if chosen is None:
        try:
            chosen = default_lang()
        except Invalid as exc:
            err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False)
            raise typer.Exit(2) from None
    _Chosen.lang = chosen
    return translator(chosen)


def current() -> Translator:
    """The translator of the language chosen so far; en if ``$SHOUHOU_LANG`` is unusable (for
    the last words of a command that fails anyway)."""
    try:
        return translator(_Chosen.lang or default_lang())
    except Invalid:
        return translator(FALLBACK)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit (code 1 by default) to raise."""
    label = current().gettext("error:")
    # One line however narrow the terminal: a path or URL in it stays whole, to copy.
    err.print(f"[red]{label}[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def id_column(header: str, ids: Iterable[str]) -> Column:
    """A table column of ``ids``, at least as wide as the longest so that each is shown whole
    on one line (to copy into the next command); folded, never cut, if the screen is narrower."""
    widest = max([cell_len(header), *(cell_len(i) for i in ids)])
    # A set width as well as a min_width: Rich narrows the widest columns first when a table is
    # too wide, then widens a column back to its min_width, and the table ends up cut at the
    # screen's edge; a column of set width is left alone, the others give way.
    return Column(header, overflow="fold", no_wrap=False, min_width=widest, width=widest)


def table(*columns: str | Column, title: str | None = None) -> Table:
    """A table whose cells fold rather than end in an ellipsis, so nothing shown is cut."""
    made = Table(*columns, title=title)
    for column in made.columns:
        column.overflow = "fold"
    return made


def actor(t: Translator, text: str) -> str:
    """An actor (``seller:s1``, ``system``) with its role as a word of ``t``'s language."""
    role, colon, who = text.partition(":")
    return f"{t.term(role, 'Role')}{colon}{who}"
