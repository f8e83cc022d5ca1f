"""``shouhou policy list|show|validate``: the rulebook packs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shouhou.cli.output import console, err, fail
from shouhou.errors import PolicyError

policy_app = typer.Typer(help="Rulebook packs: list, show, validate.", no_args_is_help=True)


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
        raise fail(str(exc)) from None
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
