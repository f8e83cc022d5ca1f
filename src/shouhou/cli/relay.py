"""``shouhou relay``: publish the event feed to NATS JetStream, forever or once."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from shouhou.cli.options import (
    DbOption,
    LogFormatOption,
    check_timezone,
    existing,
    log_format,
)
from shouhou.cli.output import current, fail
from shouhou.i18n import N_
from shouhou.services.relay import DEFAULT_STREAM

if TYPE_CHECKING:
    from shouhou.services.ports import ApiUnitOfWork
    from shouhou.worker.relay import Relay, Relayed

log = logging.getLogger("shouhou.relay")

#: Where the relay finds NATS unless told: ``--nats``, else this variable, else the local server.
NATS_URL_VARIABLE = "SHOUHOU_NATS_URL"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
#: How long the first connection to NATS may take, in seconds.
CONNECT_TIMEOUT_S = 10.0
#: A test hook: ``stdin`` makes the relay, once connected, print ``{"ready": …}`` and, after
#: each wave the stream acknowledged (before the next wave, or marking the batch), print
#: ``{"held": …}``, each time waiting for a line on stdin (tests/integration/test_relay.py
#: starts the next relay while one runs, and kills each at a hold).
HOLD_VARIABLE = "SHOUHOU_RELAY_HOLD"

HELP = N_(
    "Publish every committed event to NATS JetStream, on one subject per order "
    "(shouhou.<bucket>.case.<order>), in order per order, at least once.\n\n"
    "Each message carries the event id as Nats-Msg-Id, so the stream drops a message sent "
    "twice; a message that would land out of order is refused by the stream and the relay "
    "resumes from what the stream holds. Webhooks keep working beside it. SIGINT or SIGTERM "
    "lets the pass in progress finish, then stops."
)
NATS_HELP = N_("NATS server URL (default: $SHOUHOU_NATS_URL, else nats://127.0.0.1:4222).")
STREAM_HELP = N_("JetStream stream to publish to; created if it does not exist.")
PREFIX_HELP = N_("First token of every subject (default: the stream's name in lower case).")
ONCE_HELP = N_("Publish what is committed now, then stop.")
BATCH_HELP = N_("Events published and marked per pass.")
INTERVAL_HELP = N_("Seconds between polls when there is nothing to publish.")
#: What ``relay --once`` says it did, on stderr (stdout keeps one JSON line per pass).
DID = N_(
    "relay: {published} published, {duplicates} dropped by the stream as duplicates, "
    "{already} found in the stream already; the cursors cover {position} feed events"
)
OLD_SCHEMA = N_("{where} holds schema revision {found}, not {head}; run `shouhou db upgrade` first")
NO_NATS = N_("cannot reach NATS at {url}: {error}")
NOT_OUR_SUBJECTS = N_("stream {stream} does not take the subjects {wanted} (it takes: {taken})")


class TranslatedCommand(TyperCommand):
    """A command whose help is looked up in the catalogs when it is shown, in the language
    chosen by then (``--lang``, ``$SHOUHOU_LANG``, the locale)."""

    @property
    def help(self) -> str | None:
        return None if self._help is None else current().gettext(self._help)

    @help.setter
    def help(self, value: str | None) -> None:
        self._help = value

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _ = current().gettext
        for param in self.params:
            shown = getattr(param, "help", None)
            if shown:
                param.help = _(shown)  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


COMMAND: dict[str, Any] = {"cls": TranslatedCommand, "help": HELP}


def relay(
    db: DbOption = None,
    nats_url: Annotated[
        str | None, typer.Option("--nats", help=NATS_HELP, show_default=False)
    ] = None,
    stream: Annotated[str, typer.Option(help=STREAM_HELP)] = DEFAULT_STREAM,
    prefix: Annotated[str | None, typer.Option(help=PREFIX_HELP, show_default=False)] = None,
    once: Annotated[bool, typer.Option(help=ONCE_HELP)] = False,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help=BATCH_HELP)] = 500,
    interval: Annotated[float, typer.Option(min=0.0, help=INTERVAL_HELP)] = 0.5,
    log_format_: LogFormatOption = None,
) -> None:
    from shouhou.observability import configure_logging
    from shouhou.worker.relay import RelaySettings

    check_timezone()
    configure_logging(log_format(log_format_), text_format="%(message)s")
    url = nats_url or os.environ.get(NATS_URL_VARIABLE) or DEFAULT_NATS_URL
    settings = RelaySettings(stream=stream, prefix=prefix or stream.lower(), batch=batch)
    sql, new_uow = _open(db)
    try:
        asyncio.run(_run(new_uow, url, settings, once=once, interval=interval))
    finally:
        sql.dispose()


def _open(db: str | None) -> tuple[Any, Callable[[], ApiUnitOfWork]]:
    """The SQL engine and units of work on the database ``--db`` names, which must hold
    shouhou's schema at this version's revision; else exit 1 saying so. (No rulebooks and
    no migrations: the relay only reads the feed and moves its cursor.)"""
    from shouhou.db import engine as db_engine
    from shouhou.db.api_uow import SqlApiUnitOfWork

    _ = current().gettext
    url, revision = existing(db)
    head = db_engine.head_revision()
    if revision != head:
        where = db_engine.where(url)
        raise fail(_(OLD_SCHEMA).format(where=where, found=revision, head=head))
    sql = db_engine.create(url)

    def new_uow() -> ApiUnitOfWork:
        return SqlApiUnitOfWork(sql)

    return sql, new_uow


async def _run(new_uow: Any, url: str, settings: Any, *, once: bool, interval: float) -> None:
    import nats
    from nats.errors import Error as NatsError

    from shouhou.worker.relay import Relay

    _ = current().gettext

    async def report(exc: Exception) -> None:  # one line, not nats-py's traceback
        log.error("NATS: %s", str(exc) or type(exc).__name__)

    async def lost() -> None:
        log.error("NATS: disconnected; reconnecting")

    async def back() -> None:
        log.error("NATS: reconnected")

    try:
        # once connected, the client reconnects for ever; the first connection must come
        # at once, or the command fails saying so
        nc = await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=5,
                max_reconnect_attempts=-1,
                error_cb=report,
                disconnected_cb=lost,
                reconnected_cb=back,
            ),
            CONNECT_TIMEOUT_S,
        )
    except (TimeoutError, OSError, NatsError) as exc:
        raise fail(_(NO_NATS).format(url=url, error=str(exc) or type(exc).__name__)) from None
    try:
        hold = _hold if os.environ.get(HOLD_VARIABLE) == "stdin" else None
        runner = Relay(new_uow, nc.jetstream(), settings, hold=hold)
        try:
            await runner.ensure_stream()
        except ValueError as exc:
            raise fail(
                _(NOT_OUR_SUBJECTS).format(
                    stream=settings.stream, wanted=f"{settings.prefix}.>", taken=str(exc)
                )
            ) from None
        if hold is not None:
            await _wait_for_a_line({"ready": settings.stream})
        await _loop(runner, once=once, interval=interval)
    finally:
        await nc.close()


async def _loop(runner: Relay, *, once: bool, interval: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    total: dict[str, int] = {"published": 0, "duplicates": 0, "already": 0, "position": 0}
    while not stop.is_set():
        try:
            done = await runner.run_once()
        except Exception as exc:
            if once:
                raise
            # NATS or the database away for a moment: nothing is marked that the stream
            # does not hold, so the next pass takes it from the cursor.
            log.error(
                "relay pass failed (%s: %s); trying again in %gs",
                type(exc).__name__,
                exc,
                interval,
            )
            await _wait(stop, interval)
            continue
        if done.read:
            print(json.dumps(_said(done)), flush=True)
        for key in ("published", "duplicates", "already"):
            total[key] += getattr(done, key)
        total["position"] = done.position
        if done.read < runner.settings.batch:
            if once:
                break
            await _wait(stop, interval)
    if once:
        print(current().gettext(DID).format(**total), file=sys.stderr, flush=True)


def _said(done: Relayed) -> dict[str, int]:
    return {
        "read": done.read,
        "published": done.published,
        "duplicates": done.duplicates,
        "already": done.already,
        "refused": done.refused,
        "position": done.position,
    }


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _hold(done: Relayed) -> None:
    """The test hook: say how far the pass got, then wait for a line on stdin."""
    await _wait_for_a_line({"held": _said(done)})


async def _wait_for_a_line(said: dict[str, Any]) -> None:
    print(json.dumps(said), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
