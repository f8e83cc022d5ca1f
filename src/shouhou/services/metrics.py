"""A shop's SPEC §9 metrics over a window, read from the event log in one transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from shouhou.domain import events as e
from shouhou.domain.metrics import Logged, Metrics, compute
from shouhou.services.ports import LoggedEvent, UnitOfWork

#: How far back events are read for a metrics window (cases applied before the window).
LOOKBACK = timedelta(days=120)


def shop_metrics(uow: UnitOfWork, shop: str, at: datetime, window: timedelta) -> Metrics:
    """The SPEC §9 metrics of ``shop`` over ``window`` ending at ``at``, from the event log.

    A case applied for before the look-back (a 三包 repair runs for a year) is read whole, so
    that its application, rulings and timeouts still count when it ends inside the window."""
    with uow:
        log: list[Logged] = list(uow.log.for_shop(shop, at - window - LOOKBACK, at))
        applied = {x.stream_id for x in log if isinstance(x.event, e.Applied)}
        older = sorted({x.stream_id for x in log if x.stream == "case"} - applied)
        for case_id in older:
            before = at - window - LOOKBACK
            log += [
                LoggedEvent(stream="case", stream_id=case_id, event=stored.event)
                for stored in uow.cases.timeline(case_id)
                if stored.event.at < before
            ]
    return compute(log, since=at - window, until=at)
