"""The only place that reads the wall clock. Everything else is handed ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shouhou.domain.values import require_aware


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to, forwards (for scenarios and the simulator)."""

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start, "clock start")

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        require_aware(moment, "clock time")
        if moment < self._now:
            raise ValueError(
                f"time can't go backwards: {moment.isoformat()} is before {self._now.isoformat()}"
            )
        self._now = moment

    def advance(self, delta: timedelta) -> datetime:
        self.set(self._now + delta)
        return self._now
