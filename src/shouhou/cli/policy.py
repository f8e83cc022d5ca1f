"""``shouhou policy list|show|validate|diff|diagram``: the rulebook packs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shouhou.cli.output import console, err, fail
from shouhou.errors import PolicyError

policy_app = typer.Typer(
    help="Rulebook packs: list, show, validate, diff, diagram.", no_args_is_help=True
)


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


# --- the policy lab: diff and diagram (issue 17) ---------------------------------------------

PACK_HELP = (
    "a pack (tmall-standard, cny-2022, tmall-standard@1, a .yaml file), or packs joined by +"
    " (taobao+cny-2022); holiday packs alone go over tmall-standard"
)


def _show(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@policy_app.command("diff")
def policy_diff(
    a: Annotated[str, typer.Argument(help=PACK_HELP)],
    b: Annotated[str, typer.Argument(help=PACK_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rule by rule, what changes from rulebook A to rulebook B (holiday packs included)."""
    from shouhou.policy.diff import diff
    from shouhou.policy.selection import registry_for, select

    registry = registry_for([a, b])
    left, right = select(registry, a), select(registry, b)
    changes = diff(left.packs, right.packs)
    if as_json:
        payload = {
            "from": [p.ref for p in left.packs],
            "to": [p.ref for p in right.packs],
            "changes": [change.as_json() for change in changes],
        }
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    console.print(
        f"[bold]{' + '.join(p.ref for p in left.packs)}[/bold] → "
        f"[bold]{' + '.join(p.ref for p in right.packs)}[/bold]: {len(changes)} rule(s) differ",
        highlight=False,
    )
    marks = {
        "added": "[green]+[/green]",
        "removed": "[red]-[/red]",
        "changed": "[yellow]~[/yellow]",
    }
    for change in changes:
        where = " → ".join(
            f"{r.source} {r.short}".strip() for r in (change.before, change.after) if r
        )
        console.print(
            f"{marks[change.change]} [bold]{change.key}[/bold] {change.change}"
            f"  [dim]({where})[/dim]",
            highlight=False,
        )
        if change.change == "changed":
            for name, (old, new) in change.fields.items():
                console.print(f"    {name}: {_show(old)} → {_show(new)}", highlight=False)
        else:
            rule = change.after or change.before
            assert rule is not None
            for name, value in rule.values.items():
                if value is not None:
                    console.print(f"    {name}: {_show(value)}", highlight=False)


@policy_app.command("diagram")
def policy_diagram(
    pack: Annotated[str, typer.Argument(help=PACK_HELP)],
    fmt: Annotated[str, typer.Option("--format", help="svg, mermaid or dot.")] = "svg",
    out: Annotated[Path | None, typer.Option(help="Write to this file (default: stdout).")] = None,
) -> None:
    """The case state diagram from the transition table, each deadline on its edge; the
    holiday packs named with a base pack (base + holiday) become notes."""
    from shouhou.policy.diagram import FORMATS, build, render
    from shouhou.policy.selection import registry_for, select

    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}", 2)
    chosen = select(registry_for([pack]), pack)
    text = render(build(chosen.packs[0], list(chosen.packs[1:])), fmt)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")
