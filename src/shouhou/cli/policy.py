"""``shouhou policy list|show|validate|diff|diagram``: the rulebook packs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from shouhou.cli.options import LangOption
from shouhou.cli.output import console, err, fail, id_column, speak, table
from shouhou.errors import PolicyError
from shouhou.i18n import N_, Translator

#: The kinds of pack, as a person reads them.
KINDS = {"base": N_("base"), "holiday": N_("holiday")}

policy_app = typer.Typer(
    help="Rulebook packs: list, show, validate, diff, diagram.", no_args_is_help=True
)


@policy_app.command("list")
def policy_list(lang: LangOption = None) -> None:
    """List the bundled packs and their versions."""
    from shouhou.policy.loader import Registry

    t = speak(lang)
    _ = t.gettext
    registry = Registry.default()
    shown = table(id_column(_("pack"), registry.names()), _("version"), _("kind"), _("title"))
    for name in registry.names():
        for loaded in registry.versions(name):
            pack = loaded.pack
            shown.add_row(
                pack.name,
                str(pack.version),
                _(KINDS[pack.kind]),
                t.pick(pack.title.zh, pack.title.en),
            )
    console.print(shown)


@policy_app.command("show")
def policy_show(
    name: str, version: Annotated[int | None, typer.Option()] = None, lang: LangOption = None
) -> None:
    """Print a pack's rules, what each says, and their provenance."""
    from shouhou.policy.loader import Registry
    from shouhou.policy.schema import BasePack

    t = speak(lang)
    _ = t.gettext
    try:
        versions = Registry.default().versions(name)
    except PolicyError as exc:
        raise fail(str(exc)) from None
    loaded = next((v for v in versions if v.pack.version == version), versions[-1])
    pack = loaded.pack
    title = t.pick(pack.title.zh, pack.title.en)
    kind = _(KINDS[pack.kind])
    console.print(f"[bold]{pack.name}@{pack.version}[/bold] ({kind}) {title}")
    rows: list[tuple[str, str, str, str, str]] = []
    if isinstance(pack, BasePack):
        for dname, spec in pack.deadlines.items():
            value = spec.duration if isinstance(spec.duration, str) else _mapping(spec.duration)
            expiry = spec.on_expiry if isinstance(spec.on_expiry, str) else _mapping(spec.on_expiry)
            text = _said(t, spec.text.zh, spec.text.en, value)
            rows.append((f"{pack.name}/{dname}", text, value, expiry, spec.provenance.label()))
        for lname, limit in pack.limits.items():
            text = _said(t, limit.text.zh, limit.text.en, str(limit.value))
            rows.append(
                (f"{pack.name}/{lname}", text, str(limit.value), "", limit.provenance.label())
            )
    else:
        window = _("window {start} … {end} (Asia/Shanghai)")
        console.print(window.format(start=pack.window.start, end=pack.window.end))
        for rule in pack.rules:
            trigger = f"{rule.trigger.level}: {', '.join(rule.trigger.events)}"
            text = t.pick(rule.text.zh, rule.text.en)
            rows.append(
                (
                    f"{pack.name}/{rule.id}",
                    text,
                    _mapping(rule.set),
                    trigger,
                    rule.provenance.label(),
                )
            )
    # At 80 columns a table of five columns squeezes the ids and the texts into slivers: the
    # rule's text goes under its id, in a column as wide as the longest id (so each id stays
    # whole on one line), and what the rule sets goes under its value.
    shown = table(
        id_column(_("rule"), [row[0] for row in rows]),
        _("value → on expiry / trigger"),
        _("source"),
    )
    shown.show_lines = True
    for rule_id, text, value, expiry, source in rows:
        sets = f"{value}\n→ {expiry}" if expiry else value
        shown.add_row(f"[bold]{escape(rule_id)}[/bold]\n{escape(text)}", escape(sets), source)
    console.print(shown)


def _mapping(values: Mapping[Any, Any]) -> str:
    """A mapping of a pack (durations by variant, outcomes by kind) one ``key: value`` a line."""
    return "\n".join(f"{key}: {value}" for key, value in values.items())


def _said(t: Translator, zh: str, en: str, value: str) -> str:
    """What a rule says in the language of ``t``, its ``{duration}`` filled when it has one."""
    from shouhou.domain.values import format_duration, format_duration_zh, parse_duration

    try:
        duration = parse_duration(value)
    except ValueError:
        return t.pick(zh, en)  # a duration by variant, or not a duration at all
    spans = format_duration_zh(duration), format_duration(duration)
    return t.pick(zh.replace("{duration}", spans[0]), en.replace("{duration}", spans[1]))


@policy_app.command("validate")
def policy_validate(files: list[Path], lang: LangOption = None) -> None:
    """Validate pack files against the strict schema; exit 1 if any is invalid."""
    from shouhou.policy.loader import bundled, load_file

    _ = speak(lang).gettext
    parents = {loaded.pack.name: loaded for loaded in bundled()}
    bad = 0
    for path in files:
        try:
            loaded = load_file(path, parents)
        except PolicyError as exc:
            bad += 1
            err.print(f"[red]✗[/red] {exc}", highlight=False)
            continue
        kind = _(KINDS[loaded.pack.kind])
        console.print(f"[green]✓[/green] {path}: {loaded.ref} ({kind})", highlight=False)
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
