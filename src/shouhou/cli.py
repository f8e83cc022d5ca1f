"""The ``shouhou`` command line (Typer). Thin: every rule lives in the engine."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shouhou import shop_cli
from shouhou.api import cli as api_cli
from shouhou.cli_options import DbOption, KeepDaysOption, db_url, keep
from shouhou.errors import ActionRefused, PolicyError

app = typer.Typer(help="shouhou (售后): the after-sales engine.", no_args_is_help=True)
policy_app = typer.Typer(help="Rulebook packs: list, show, validate.", no_args_is_help=True)
scenario_app = typer.Typer(
    help="Scenario files: executable examples of the rules.", no_args_is_help=True
)
case_app = typer.Typer(help="Look at one case.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
queue_app = typer.Typer(help="Agent work queues.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")
app.add_typer(policy_app, name="policy")
app.add_typer(scenario_app, name="scenario")
app.add_typer(case_app, name="case")
app.add_typer(db_app, name="db")
app.add_typer(shop_cli.shop_app, name="shop")
case_app.command("replies")(shop_cli.case_replies)
app.add_typer(api_cli.keys_app, name="keys")
app.command()(api_cli.serve)

console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


# --- policy ------------------------------------------------------------------------------


@policy_app.command("list")
def policy_list() -> None:
    """List the bundled packs and their versions."""
    from shouhou.policy.loader import Registry

    registry = Registry.default()
    table = Table("pack", "version", "kind", "title")
    for name in registry.names():
        for loaded in registry.versions(name):
            pack = loaded.pack
            table.add_row(
                pack.name, str(pack.version), pack.kind, f"{pack.title.zh} / {pack.title.en}"
            )
    console.print(table)


@policy_app.command("show")
def policy_show(name: str, version: Annotated[int | None, typer.Option()] = None) -> None:
    """Print a pack's rules with their provenance."""
    from shouhou.policy.loader import Registry
    from shouhou.policy.schema import BasePack

    try:
        versions = Registry.default().versions(name)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    loaded = next((v for v in versions if v.pack.version == version), versions[-1])
    pack = loaded.pack
    console.print(
        f"[bold]{pack.name}@{pack.version}[/bold] ({pack.kind}) {pack.title.zh} / {pack.title.en}"
    )
    table = Table("rule", "value", "on expiry / trigger", "source")
    if isinstance(pack, BasePack):
        for dname, spec in pack.deadlines.items():
            value = spec.duration if isinstance(spec.duration, str) else json.dumps(spec.duration)
            expiry = (
                spec.on_expiry
                if isinstance(spec.on_expiry, str)
                else json.dumps({str(k): v for k, v in spec.on_expiry.items()})
            )
            table.add_row(f"{pack.name}/{dname}", value, expiry, spec.provenance.label())
        for lname, limit in pack.limits.items():
            table.add_row(f"{pack.name}/{lname}", str(limit.value), "", limit.provenance.label())
    else:
        console.print(f"window {pack.window.start} … {pack.window.end} (Asia/Shanghai)")
        for rule in pack.rules:
            trigger = f"{rule.trigger.level}: {', '.join(rule.trigger.events)}"
            table.add_row(
                f"{pack.name}/{rule.id}", json.dumps(rule.set), trigger, rule.provenance.label()
            )
    console.print(table)


@policy_app.command("validate")
def policy_validate(files: list[Path]) -> None:
    """Validate pack files against the strict schema; exit 1 if any is invalid."""
    from shouhou.policy.loader import bundled, load_file

    parents = {loaded.pack.name: loaded for loaded in bundled()}
    bad = 0
    for path in files:
        try:
            loaded = load_file(path, parents)
        except PolicyError as exc:
            bad += 1
            err.print(f"[red]✗[/red] {exc}", highlight=False)
            continue
        console.print(f"[green]✓[/green] {path}: {loaded.ref} ({loaded.pack.kind})")
    if bad:
        raise typer.Exit(1)


# --- scenarios ---------------------------------------------------------------------------


@scenario_app.command("run")
def scenario_run(
    files: list[Path],
    db: Annotated[str, typer.Option("--db", help="Database for the run.")] = "sqlite:///:memory:",
) -> None:
    """Run scenario files; print JSON lines; exit 0 (all hold), 1 (a failure), 2 (invalid file)."""
    from shouhou.sim.scenario import print_json, run_files

    raise typer.Exit(run_files(files, print_json, db_url(db)))


# --- cases -------------------------------------------------------------------------------


@case_app.command("show")
def case_show(
    case_id: str,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the case view as JSON.")] = False,
    lang: Annotated[str, typer.Option(help="Explanation language: zh or en.")] = "en",
) -> None:
    """Print one case: status, deadline, timeline and explanation."""
    from shouhou.bootstrap import Engine
    from shouhou.domain.values import format_yuan, local

    engine = Engine.open(db_url(db))
    try:
        view = engine.view(case_id, money=format_yuan)
    except ActionRefused as exc:
        raise _fail(exc.message) from None
    finally:
        engine.close()
    if as_json:
        print(json.dumps(view, ensure_ascii=False, indent=2))
        return
    console.print(
        f"[bold]case {view['id']}[/bold]  order {view['order']}  shop {view['shop']}  "
        f"buyer {view['buyer']}"
    )
    console.print(
        f"{view['kind']} · {view['reason']} · {view['phase']} · [bold]{view['status']}[/bold]"
        f"  requested ¥{view['requested_amount']}  refunded ¥{view['refund_amount']}"
    )
    if view["deadline"]:
        d = view["deadline"]
        due = local(datetime.fromisoformat(d["due_at"])).strftime("%Y-%m-%d %H:%M")
        console.print(f"deadline {d['name']} due {due} → {d['on_expiry']} ({d['rule_id']})")
    table = Table("#", "at (Beijing)", "actor", "event", "details")
    for ev in view["timeline"]:
        at = local(datetime.fromisoformat(ev["at"])).strftime("%m-%d %H:%M")
        table.add_row(str(ev["seq"]), at, ev["actor"], ev["type"], _summary(ev))
    console.print(table)
    console.print(f"[bold]why[/bold]: {view['explanation'][lang]}")
    for rule in view["explanation"]["rules"]:
        console.print(f"  • {rule['id']} ({rule['source']}): {rule[lang]}", markup=False)


@case_app.command("explain")
def case_explain(
    case_id: str,
    db: DbOption = None,
    lang: Annotated[str, typer.Option(help="zh or en.")] = "zh",
) -> None:
    """Print why a case stands where it does, with every rule behind it."""
    from shouhou.bootstrap import Engine

    engine = Engine.open(db_url(db))
    try:
        view = engine.view(case_id)
    except ActionRefused as exc:
        raise _fail(exc.message) from None
    finally:
        engine.close()
    console.print(view["explanation"][lang], markup=False)
    for rule in view["explanation"]["rules"]:
        console.print(f"  • {rule['id']} ({rule['source']}): {rule[lang]}", markup=False)


def _summary(ev: dict[str, Any]) -> str:
    """One short line for a timeline event."""
    from shouhou.domain.values import local

    if ev["type"] == "DeadlineSet":
        d = ev["deadline"]
        if d is None:
            return "no deadline"
        due = local(datetime.fromisoformat(d["due_at"])).strftime("%m-%d %H:%M")
        return f"{d['name']} due {due} → {d['on_expiry']} ({d['rule_id']})"
    if ev["type"] == "StatusChanged":
        return f"{ev['source']} → {ev['target']}"
    if ev["type"] == "DeadlineFired":
        return f"{ev['name']} ({ev['rule_id']})"
    skip = {"seq", "type", "at", "actor", "case_id", "order_id", "shop", "buyer"}
    return ", ".join(f"{k}={v}" for k, v in ev.items() if k not in skip and v not in ("", None))


@queue_app.command("interventions")
def queue_interventions(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Cases in platform intervention: awaiting a ruling first, then by stage deadline."""
    from shouhou.bootstrap import Engine
    from shouhou.domain.values import format_yuan, local

    engine = Engine.open(db_url(db))
    try:
        waiting = engine.intervention_queue()
    finally:
        engine.close()
    if as_json:
        for case in waiting:
            due = case.deadline.due_at.isoformat() if case.deadline else None
            stage = case.stage.value if case.stage else None
            print(
                json.dumps(
                    {
                        "case": case.id,
                        "stage": stage,
                        "due_at": due,
                        "shop": case.shop,
                        "buyer": case.buyer,
                        "reason": case.reason.value,
                    }
                )
            )
        return
    table = Table("case", "stage", "due (Beijing)", "shop", "buyer", "reason", "requested")
    for case in waiting:
        due = local(case.deadline.due_at).strftime("%m-%d %H:%M") if case.deadline else "now"
        table.add_row(
            case.id,
            case.stage.value if case.stage else "",
            due,
            case.shop,
            case.buyer,
            case.reason.value,
            format_yuan(case.requested_amount),
        )
    console.print(table)
    console.print(f"{len(waiting)} case(s) in intervention")


@app.command()
def attach(file: Path, db: DbOption = None) -> None:
    """Keep an evidence file (photo, PDF or MP4, ≤10 MiB); prints the name to submit it by."""
    from shouhou.bootstrap import Engine

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _fail(f"can't read {file}: {exc.strerror}") from None
    engine = Engine.open(db_url(db))
    try:
        stored = engine.attach(data, file.name)
    except ActionRefused as exc:
        raise _fail(exc.message) from None
    finally:
        engine.close()
    print(
        json.dumps({"sha256": stored.sha256, "media_type": stored.media_type, "size": stored.size})
    )


# --- storage and worker ------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate the schema to the newest version."""
    from shouhou.db import engine as db_engine

    sql = db_engine.create(db_url(db))
    db_engine.upgrade(sql)
    sql.dispose()
    console.print("schema is up to date")


@app.command()
def worker(
    db: DbOption = None,
    once: Annotated[bool, typer.Option(help="Fire what is due now, then stop.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 1.0,
    keep_days: KeepDaysOption = 30,
) -> None:
    """Fire due deadlines (exactly once, in due order) and deliver webhooks, forever or once.

    A pass that fails (the database restarting, say) rolls back, is reported on stderr and is
    tried again after the interval; with --once the command fails instead. Once an hour it
    forgets what is older than --keep-days (events with a failed delivery are kept).
    """
    from shouhou.bootstrap import Engine
    from shouhou.worker import Worker, WorkerSettings

    engine = Engine.open(db_url(db))

    def report(fired: Any) -> None:
        print(
            json.dumps(
                {
                    "fired": fired.name,
                    fired.subject_type: fired.subject_id,
                    "due_at": fired.due_at.isoformat(),
                    "status": fired.status,
                }
            ),
            flush=True,
        )

    runner = Worker(engine, keep(WorkerSettings(), keep_days), on_fired=report)
    try:
        while True:
            try:
                runner.run_once()
            except Exception as exc:
                if once:
                    raise
                # The database restarting, a lock held too long: the pass rolled back, so
                # nothing is half done; the next pass takes it from the start.
                print(
                    f"worker pass failed ({type(exc).__name__}: {exc}); "
                    f"trying again in {interval:g}s",
                    file=sys.stderr,
                    flush=True,
                )
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        runner.close()
        engine.close()


@app.command()
def demo(
    db: Annotated[Path, typer.Option(help="SQLite file for the demo marketplace.")] = Path(
        "var/demo.db"
    ),
    fresh: Annotated[bool, typer.Option(help="Start from an empty file.")] = False,
    days: Annotated[int, typer.Option(min=1, max=60, help="Days of new orders.")] = 7,
    settle_days: Annotated[
        int, typer.Option(min=0, max=90, help="Days the cases then run on without new orders.")
    ] = 21,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same week).")] = 7,
    orders_per_day: Annotated[int, typer.Option(min=1, max=2000, help="New orders a day.")] = 120,
) -> None:
    """Create a demo marketplace and run a realistic week of cases on the virtual clock."""
    from shouhou.sim.demo import run_demo

    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    elif db.exists():
        raise _fail(f"{db} exists; pass --fresh to start over")
    run_demo(
        f"sqlite:///{db}",
        days=days,
        settle_days=settle_days,
        seed=seed,
        orders_per_day=orders_per_day,
        console=console,
    )


def main() -> None:
    try:
        app()
    except PolicyError as exc:
        err.print(f"[red]policy error:[/red] {exc}", highlight=False)
        sys.exit(2)
