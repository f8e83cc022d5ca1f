"""Counting deadlines on the Chinese working-day calendar, make-up working days (调休) included.

The calendar data comes from the maintained ``chinese_calendar`` package, which knows each year
once the State Council has published its holiday arrangement.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import chinese_calendar  # type: ignore[import-untyped]

from shouhou.domain.values import SHANGHAI
from shouhou.errors import PolicyError


def is_workday(day: date) -> bool:
    """Whether ``day`` is a working day in mainland China (调休 Saturdays are)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        raise PolicyError(
            f"the working-day calendar has no data for {day.year}; update chinese-calendar "
            "or count this deadline in natural days"
        ) from None


def add_business_days(start: datetime, days: int) -> datetime:
    """The same Beijing wall-clock time on the ``days``-th working day after ``start``'s day."""
    here = start.astimezone(SHANGHAI)
    day, counted = here.date(), 0
    while counted < days:
        day += timedelta(days=1)
        counted += is_workday(day)
    return datetime.combine(day, here.time(), tzinfo=SHANGHAI)
