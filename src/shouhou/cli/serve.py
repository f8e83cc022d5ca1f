"""``shouhou serve``: the REST API and the worker in one process."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

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
from shouhou.cli.output import actor, console, fail, speak
from shouhou.domain.values import format_duration, parse_duration
from shouhou.i18n import N_

if TYPE_CHECKING:
    from shouhou.bootstrap import Engine
    from shouhou.services.ports import ApiUnitOfWork


#: What ``serve`` says of the port it can't listen on, and of the rulebook it runs on.
CANT_LISTEN = N_("can't listen on {host}:{port}: {why} (is another server running? try --port)")
RULEBOOK = N_("rulebook: {packs}")
#: The lines ``serve`` starts with: where the API and the console are, and what the worker does.
API_ON = N_("shouhou API on {url}  (OpenAPI docs: {docs})")
WEB_CONSOLE = N_("web console: {url}")
WORKER_EVERY = N_(
    "worker: deadlines and webhooks every {interval}s, deadline.approaching {lead} ahead, "
    "handled deadlines and delivered events kept {days} days"
)
#: What ``serve --demo-keys`` prints: a sign-in link per demo role, the keys, a request to try.
SIGN_IN_AS = N_("sign in as {who}: {link}")
ACTS_AS = N_("acts as")
API_KEY = N_("API key (Authorization: Bearer …)")
TRY = N_("try: {command}")


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _demo_keys(engine: Engine[ApiUnitOfWork]) -> list[tuple[str, str]]:
    """Keys for a platform, an agent, and the seller and buyer of an open case (or the first)."""
    from shouhou.services.keys import create_key
    from shouhou.services.ports import CaseFilter

    with engine.reader() as uow:
        waiting = uow.queries.cases(CaseFilter(sort="due_at"), 1)
        listed = waiting or uow.queries.cases(CaseFilter(), 1)
    shop, buyer = (listed[0].case.shop, listed[0].case.buyer) if listed else ("s1", "b1")
    made = []
    for principal in ("platform", "agent:a1", f"seller:{shop}", f"buyer:{buyer}"):
        key, token = create_key(engine.uow_factory(), principal, "demo", engine.clock.now())
        made.append((str(key.actor), token))
    return made


#: The demo roles that get a one-click console sign-in (the platform signs in with its key).
DEMO_ROLES = ("buyer", "seller", "agent")


def demo_logins(made: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """A random link path part for each demo buyer, seller and agent key: the console's
    one-click sign-ins, known only to this process (``--demo-keys``)."""
    import secrets

    role = {who.split(":")[0]: (who, token) for who, token in made}
    return {secrets.token_urlsafe(16): role[name] for name in DEMO_ROLES if name in role}


def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[bool, typer.Option(help="Also run the worker in this process.")] = True,
    interval: Annotated[float, typer.Option(help="Seconds between worker passes.")] = 1.0,
    approaching: Annotated[
        str, typer.Option(help="Send deadline.approaching this long before a deadline.")
    ] = "24h",
    demo_keys: Annotated[
        bool, typer.Option(help="Create demo API keys and print them (for make run).")
    ] = False,
    keep_days: KeepDaysOption = 30,
    policy: PolicyOption = None,
    log_format_: LogFormatOption = None,
    lang: LangOption = None,
) -> None:
    """Run the REST API (uvicorn) and the worker (deadlines, webhooks) together; Prometheus
    metrics of both at /metrics (no API key: firewall it)."""
    from shouhou.api import create_app
    from shouhou.api.server import listen, run
    from shouhou.bootstrap import Engine
    from shouhou.observability import Telemetry, configure_logging
    from shouhou.worker import Worker, WorkerSettings

    t = speak(lang)
    _ = t.gettext
    check_timezone()
    lead = _duration(approaching)
    registry, selected = rulebooks(policy)
    # The port first: a port in use is said before any URL or key is printed, or data written.
    try:
        sock = listen(host, port)
    except OSError as exc:
        why = exc.strerror or exc
        raise fail(_(CANT_LISTEN).format(host=host, port=port, why=why)) from None
    logs = log_format(log_format_)
    configure_logging(logs, text_format="%(asctime)s %(name)s %(message)s")
    try:
        engine = Engine.open(db_url(db), registry=registry, policies=selected)
    except BaseException:
        sock.close()
        raise
    telemetry = Telemetry()
    made = _demo_keys(engine) if demo_keys else []
    logins = demo_logins(made)
    app = create_app(engine, telemetry=telemetry, demo_logins=logins)
    base = f"http://{host}:{port}"
    console.print(escape(_(API_ON)).format(url=f"[bold]{base}[/bold]", docs=f"{base}/docs"))
    console.print(_(WEB_CONSOLE).format(url=f"{base}/"), highlight=False)
    console.print(_(RULEBOOK).format(packs=" + ".join(engine.policies)), highlight=False)
    if demo_keys:
        for nonce, (who, _token) in logins.items():
            link = f"{base}/console/demo/{nonce}"
            console.print(
                _(SIGN_IN_AS).format(who=actor(t, who), link=link),
                highlight=False,
                soft_wrap=True,
            )
        table = Table(_(ACTS_AS), _(API_KEY))
        for who, token in made:
            table.add_row(actor(t, who), token)
        console.print(table)
        command = f'curl -H "Authorization: Bearer {made[3][1]}" {base}/v1/cases'
        console.print(_(TRY).format(command=command), highlight=False, soft_wrap=True)
    stop = threading.Event()
    runner = None
    if worker:
        settings = keep(WorkerSettings(approaching=lead), keep_days)
        runner = Worker(engine, settings, telemetry=telemetry)
        thread = threading.Thread(
            target=runner.run_forever, args=(stop, interval), name="worker", daemon=True
        )
        thread.start()
        said = _(WORKER_EVERY).format(
            interval=interval, lead=format_duration(lead), days=settings.event_retention.days
        )
        console.print(said)
    try:
        run(app, sock, log_format=logs)
    except KeyboardInterrupt:
        pass  # Ctrl-C: uvicorn has shut down; stop the worker too
    finally:
        stop.set()
        if runner is not None:
            thread.join(timeout=10)
            runner.close()
        engine.close()
