"""What an operator watches: Prometheus metrics and log lines (text, or one JSON object a line).

One :class:`Telemetry` per process part that serves it (the API's ``/metrics``, a worker's
``--metrics-port``), each with a registry of its own, so that two engines in one process (the
tests) never share a counter. The backlog gauges are read from the store when scraped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shouhou.services.ports import Backlog
from shouhou.settings import display_zone

if TYPE_CHECKING:
    from shouhou.bootstrap import Engine

log = logging.getLogger("shouhou.observability")

#: Request latency buckets in seconds: most requests take milliseconds; a slow one, seconds.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The ``route`` label of a request no route matched (its raw path would be unbounded).
UNMATCHED = "unmatched"
#: The log formats, and the variable that picks one when no option does.
LOG_FORMATS = ("text", "json")
LOG_FORMAT_VARIABLE = "SHOUHOU_LOG_FORMAT"


class BacklogCollector(Collector):
    """``shouhou_deadlines_due`` and ``shouhou_deadlines_oldest_due_lag_seconds``, read from the
    store at each scrape (one index range scan of the due rows)."""

    def __init__(self, read: Callable[[datetime], Backlog], now: Callable[[], datetime]) -> None:
        self.read = read
        self.now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.now()
        try:
            backlog = self.read(now)
        except Exception:  # a scrape must not fail whole because the database is away
            log.warning("metrics: the deadline backlog could not be read", exc_info=True)
            return
        yield GaugeMetricFamily(
            "shouhou_deadlines_due",
            "Pending deadlines due now and not fired yet (near zero while the workers keep up).",
            value=backlog.due,
        )
        lag = 0.0
        if backlog.oldest_due_at is not None:
            lag = max(0.0, (now - backlog.oldest_due_at).total_seconds())
        yield GaugeMetricFamily(
            "shouhou_deadlines_oldest_due_lag_seconds",
            "How long the oldest due deadline has waited past its due time (0: none waits).",
            value=lag,
        )


class Telemetry:
    """The process's metrics, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "shouhou_http_requests",
            "API requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "shouhou_http_request_duration_seconds",
            "Time to answer an API request, by method and route template.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.fired = Counter(
            "shouhou_deadlines_fired",
            "Deadlines fired by the worker, by deadline name.",
            ("deadline",),
            registry=self.registry,
        )
        self.failed = Counter(
            "shouhou_deadlines_failed",
            "Deadlines that could not fire and were set aside as failed, by deadline name.",
            ("deadline",),
            registry=self.registry,
        )
        self.deliveries = Counter(
            "shouhou_webhook_deliveries",
            "Webhook delivery attempts by result: delivered, retrying (failed, to be tried "
            "again), failed (given up).",
            ("result",),
            registry=self.registry,
        )
        self._backlog: BacklogCollector | None = None

    def watch(self, engine: Engine[Any]) -> None:
        """Report ``engine``'s due deadlines at each scrape (the first engine watched counts)."""
        if self._backlog is not None:
            return

        def read(now: datetime) -> Backlog:
            with engine.reader() as uow:
                backlog: Backlog = uow.deadlines.backlog(now)
            return backlog

        self._backlog = BacklogCollector(read, engine.clock.now)
        self.registry.register(self._backlog)


# --- logs -----------------------------------------------------------------------------------

#: The attributes every LogRecord has; any other one was passed in ``extra`` and is a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's message again, with terminal colours
}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the record's extra fields
    (an access line's method, route, status and duration_ms)."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).astimezone(display_zone())
        line: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_format(option: str | None) -> str:
    """The log format of an option, else ``$SHOUHOU_LOG_FORMAT``, else ``text``."""
    chosen = (option or os.environ.get(LOG_FORMAT_VARIABLE) or "text").strip().lower()
    if chosen not in LOG_FORMATS:
        raise ValueError(f"log format {chosen!r}: choose text or json")
    return chosen


def configure_logging(fmt: str, *, text_format: str, level: int = logging.WARNING) -> None:
    """Send the process's logs to stderr as ``fmt`` (text or json): warnings and above from
    everyone, INFO and above from shouhou; in JSON, the API's access lines too."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(text_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("shouhou").setLevel(logging.INFO)
    # In text mode uvicorn prints its own access lines; ours carry the route and duration as
    # fields, which only the JSON lines have room for.
    logging.getLogger("shouhou.access").setLevel(logging.INFO if fmt == "json" else logging.WARNING)


__all__ = [
    "LOG_FORMATS",
    "BacklogCollector",
    "JsonFormatter",
    "Telemetry",
    "configure_logging",
    "log_format",
]
