"""``shouhou serve`` (the API and the worker in one process) and ``shouhou keys``."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from shouhou.cli_options import DbOption, KeepDaysOption, db_url, keep
from shouhou.domain.values import format_duration, parse_duration
from shouhou.errors import ActionRefused

if TYPE_CHECKING:
    from shouhou.bootstrap import Engine
    from shouhou.services.ports import ApiUnitOfWork

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@keys_app.command("create")
def keys_create(
    principal: Annotated[str, typer.Argument(help="buyer:ID, seller:SHOP, agent:ID or platform")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    db: DbOption = None,
) -> None:
    """Create an API key; its secret is printed once, only its hash is stored."""
    from shouhou.bootstrap import Engine
    from shouhou.services.keys import create_key

    engine = Engine.open(db_url(db))
    try:
        key, token = create_key(engine.uow_factory(), principal, name, engine.clock.now())
    except ActionRefused as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        engine.close()
    console.print(f"{key.id}  {key.actor}", highlight=False)
    print(token)


@keys_app.command("list")
def keys_list(db: DbOption = None) -> None:
    """List API keys (never their secrets)."""
    from shouhou.bootstrap import Engine

    engine = Engine.open(db_url(db))
    try:
        with engine.reader() as uow:
            found = uow.keys.all()
    finally:
        engine.close()
    table = Table("id", "bound to", "name", "starts with", "created", "revoked")
    for key in found:
        table.add_row(
            key.id,
            str(key.actor),
            key.name,
            key.prefix + "…",
            key.created_at.isoformat(timespec="seconds"),
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, db: DbOption = None) -> None:
    """Revoke an API key at once; exit 1 if there is no such active key."""
    from shouhou.bootstrap import Engine

    engine = Engine.open(db_url(db))
    try:
        with engine.uow_factory() as uow:
            done = uow.keys.revoke(key_id, engine.clock.now())
            uow.commit()
    finally:
        engine.close()
    if not done:
        err.print(f"[red]error:[/red] no active key {key_id}", highlight=False)
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


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
) -> None:
    """Run the REST API (uvicorn) and the worker (deadlines, webhooks) together."""
    import uvicorn

    from shouhou.api import create_app
    from shouhou.bootstrap import Engine
    from shouhou.worker import Worker, WorkerSettings

    lead = _duration(approaching)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("shouhou").setLevel(logging.INFO)
    engine = Engine.open(db_url(db))
    app = create_app(engine)
    base = f"http://{host}:{port}"
    console.print(f"shouhou API on [bold]{base}[/bold]  (OpenAPI docs: {base}/docs)")
    if demo_keys:
        made = _demo_keys(engine)
        table = Table("acts as", "API key (Authorization: Bearer …)")
        for who, token in made:
            table.add_row(who, token)
        console.print(table)
        console.print(
            f'try: curl -H "Authorization: Bearer {made[3][1]}" {base}/v1/cases',
            highlight=False,
            soft_wrap=True,
        )
    stop = threading.Event()
    runner = None
    if worker:
        settings = keep(WorkerSettings(approaching=lead), keep_days)
        runner = Worker(engine, settings)
        thread = threading.Thread(
            target=runner.run_forever, args=(stop, interval), name="worker", daemon=True
        )
        thread.start()
        console.print(
            f"worker: deadlines and webhooks every {interval}s, "
            f"deadline.approaching {format_duration(lead)} ahead, handled deadlines and "
            f"delivered events kept {settings.event_retention.days} days"
        )
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    except KeyboardInterrupt:
        pass  # Ctrl-C: uvicorn has shut down; stop the worker too
    finally:
        stop.set()
        if runner is not None:
            thread.join(timeout=10)
            runner.close()
        engine.close()
