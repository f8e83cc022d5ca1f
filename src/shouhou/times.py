"""How a time leaves the system (API, webhooks, CLI): one format, to the second, with the
offset of the marketplace's zone (``$SHOUHOU_TIMEZONE``, Asia/Shanghai by default).

``2023-03-08T12:00:00+08:00``. Inputs accept any ISO 8601 time with an offset; the engine
computes in UTC and in the rulebook's own zone, whatever this one is.
"""

from __future__ import annotations

from datetime import datetime

from shouhou.domain.values import format_time
from shouhou.settings import display_zone


def show(moment: datetime) -> str:
    """``moment`` as every output writes it, e.g. ``2023-03-08T12:00:00+08:00``."""
    return format_time(moment, display_zone())


def show_optional(moment: datetime | None) -> str | None:
    """:func:`show`, or ``None`` for no time."""
    return None if moment is None else show(moment)
