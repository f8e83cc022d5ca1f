"""``shouhou worker``: fire due deadlines and deliver webhooks, forever or once."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shouhou.cli.options import (
    DbOption,
    KeepDaysOption,
    LangOption,
    LogFormatOption,
    PolicyOption,
    check_timezone,
    db_url,
    keep,
    log_format,
    rulebooks,
)
from shouhou.cli.output import speak
from shouhou.i18n import N_, Translator

if TYPE_CHECKING:
    from shouhou.worker import Tick

#: What ``worker --once`` says it did, on stderr (stdout keeps one JSON line per deadline).
DID = N_(
    "worker: {fired} deadline(s) fired, {set_aside} set aside, "
    "{delivered} delivery(ies) sent, {failed} failed, {purged} row(s) forgotten"
)
#: The log line of a pass that failed and will be tried again.
PASS_FAILED = N_("worker pass failed ({error}: {why}); trying again in {seconds}s")


def said(tick: Tick, t: Translator) -> str:
    """One line saying what a pass did, in ``t``'s language."""
    return t.gettext(DID).format(
        fired=len(tick.fired),
        set_aside=len(tick.set_aside),
        delivered=tick.delivered,
        failed=tick.failed_attempts,
        purged=tick.purged,
    )


def failed_pass(exc: Exception, interval: float, t: Translator | None) -> str:
    """The log line of a failed pass: in ``t``'s language for a person reading text logs, as
    written (English) for a program reading JSON logs (``t`` None)."""
    text = PASS_FAILED if t is None else t.gettext(PASS_FAILED)
    return text.format(error=type(exc).__name__, why=exc, seconds=f"{interval:g}")


log = logging.getLogger("shouhou.worker")


def worker(
    db: DbOption = None,
    once: Annotated[bool, typer.Option(help="Fire what is due now, then stop.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 1.0,
    keep_days: KeepDaysOption = 30,
    policy: PolicyOption = None,
    log_format_: LogFormatOption = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve this worker's Prometheus metrics on this port (/metrics; firewall it)."
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Address the metrics port listens on.")
    ] = "127.0.0.1",
    lang: LangOption = None,
) -> None:
    """Fire due deadlines (exactly once, in due order) and deliver webhooks, forever or once.

    A pass that fails (the database restarting, say) rolls back, is reported on stderr and is
    tried again after the interval; with --once the command fails instead. SIGINT (Ctrl-C) or
    SIGTERM lets the pass in progress finish, then stops. Once an hour it
    forgets what is older than --keep-days (events with a failed delivery are kept).
    """
    from prometheus_client import start_http_server

    from shouhou.bootstrap import Engine
    from shouhou.observability import Telemetry, configure_logging
    from shouhou.times import show
    from shouhou.worker import Worker, WorkerSettings

    t = speak(lang)
    check_timezone()
    logs = log_format(log_format_)
    configure_logging(logs, text_format="%(message)s")
    registry, selected = rulebooks(policy)  # the API's: deadlines fire by the same rules
    engine = Engine.open(db_url(db), registry=registry, policies=selected)
    telemetry = Telemetry()
    if metrics_port is not None:
        telemetry.watch(engine)
        start_http_server(metrics_port, metrics_host, registry=telemetry.registry)

    def report(fired: Any) -> None:
        print(
            json.dumps(
                {
                    "fired": fired.name,
                    fired.subject_type: fired.subject_id,
                    "due_at": show(fired.due_at),
                    "status": fired.status,
                }
            ),
            flush=True,
        )

    runner = Worker(engine, keep(WorkerSettings(), keep_days), on_fired=report, telemetry=telemetry)
    stop = _stop_on_signals()
    try:
        while not stop.is_set():
            try:
                tick = runner.run_once()
            except Exception as exc:
                if once:
                    raise
                # The database restarting, a lock held too long: the pass rolled back, so
                # nothing is half done; the next pass takes it from the start.
                log.error("%s", failed_pass(exc, interval, t if logs == "text" else None))
            if once:
                print(said(tick, t), file=sys.stderr, flush=True)
                return
            stop.wait(interval)
    finally:
        runner.close()
        engine.close()


def _stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM: the pass in progress finishes, then the loop stops.

    A KeyboardInterrupt raised inside a database call could leave the connection half closed
    and, turned into another error by the clean-up, be taken for a failed pass: the worker
    then went on, holding SQLite's write lock.
    """
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return stop
