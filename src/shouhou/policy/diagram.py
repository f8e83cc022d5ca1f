"""The case state diagram of a rulebook, drawn from the transition table (STYLE rule 3).

Every edge comes from :data:`shouhou.domain.transitions.TABLE`; a ``timeout`` edge carries the
deadline of its status with the duration and on-expiry outcome the base pack gives it; each
holiday rule that changes a deadline is a note on the status that deadline belongs to. Three
renderings: Mermaid, Graphviz DOT (text only: no graphviz binary is needed to write it) and a
self-contained SVG laid out here in layers, so the drawing works offline.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from html import escape

from shouhou.domain.model import TERMINAL_STATUSES, CaseStatus
from shouhou.domain.transitions import START, STATUS_DEADLINES, TABLE
from shouhou.policy.loader import LoadedPack
from shouhou.policy.schema import ORDER_DEADLINES, BasePack, DeadlineSpec, HolidayPack
from shouhou.policy.schema import Filter as PackFilter

FORMATS = ("svg", "mermaid", "dot")


@dataclass(frozen=True)
class Edge:
    source: CaseStatus
    target: CaseStatus
    label: str
    timeout: bool = False
    short: str = ""  # the label where space is short (the SVG): name and duration only


@dataclass(frozen=True)
class Note:
    status: CaseStatus | None  # None: a note on the whole diagram
    text: str


@dataclass(frozen=True)
class Diagram:
    title: str
    statuses: tuple[CaseStatus, ...]
    edges: tuple[Edge, ...]
    notes: tuple[Note, ...]
    layers: tuple[tuple[CaseStatus, ...], ...]


def duration_text(spec: DeadlineSpec) -> str:
    """``5d``, or the variants: ``express 10d, post 30d, default 10d``."""
    if isinstance(spec.duration, str):
        return spec.duration
    return ", ".join(f"{key} {value}" for key, value in spec.duration.items())


def expiry_text(spec: DeadlineSpec) -> str:
    """``refund``, or each outcome with its kinds: ``refund (refund_only); agree (…)``."""
    if isinstance(spec.on_expiry, str):
        return spec.on_expiry
    kinds: dict[str, list[str]] = defaultdict(list)
    for kind, action in spec.on_expiry.items():
        kinds[action].append(str(kind))
    return "; ".join(f"{action} ({', '.join(names)})" for action, names in kinds.items())


def _filter_text(word: str, flt: PackFilter | None) -> str:
    if flt is None:
        return ""
    parts = [
        ", ".join(str(v) for v in values)
        for values in (flt.kind, flt.shipping_method, flt.return_method)
        if values
    ]
    return f"; {word} {' / '.join(parts)}" if parts else ""


def _layers(edges: tuple[Edge, ...]) -> tuple[tuple[CaseStatus, ...], ...]:
    """Waiting statuses by their distance from the start; terminal statuses last."""
    depth = {START: 0}
    todo = [START]
    while todo:
        here = todo.pop(0)
        for edge in edges:
            new = edge.target not in depth and edge.target not in TERMINAL_STATUSES
            if edge.source == here and new:
                depth[edge.target] = depth[here] + 1
                todo.append(edge.target)
    last = max(depth.values()) + 1
    for status in CaseStatus:
        depth.setdefault(status, last)
    order = list(CaseStatus)
    return tuple(tuple(s for s in order if depth[s] == level) for level in range(last + 1))


def build(base: LoadedPack, holidays: list[LoadedPack]) -> Diagram:
    """The diagram of ``base`` with ``holidays`` as notes."""
    pack = base.pack
    if not isinstance(pack, BasePack):
        raise ValueError(f"{base.ref} is not a base pack")
    actions: dict[tuple[CaseStatus, CaseStatus], list[str]] = defaultdict(list)
    edges: list[Edge] = []
    for row in TABLE:
        for target in sorted(row.targets, key=list(CaseStatus).index):
            if row.action == "timeout":
                name = STATUS_DEADLINES[row.source]
                if row.source == CaseStatus.IN_INTERVENTION:
                    names = ["evidence", "seller_handle_after_evidence"]
                else:
                    names = [name]
                label = "; ".join(
                    f"⏱ {n} {duration_text(pack.deadlines[n])} → {expiry_text(pack.deadlines[n])}"
                    for n in names
                )
                short = "; ".join(f"⏱ {n} {duration_text(pack.deadlines[n])}" for n in names)
                edges.append(Edge(row.source, target, label, timeout=True, short=short))
            else:
                actions[(row.source, target)].append(row.action)
    edges += [Edge(s, t, ", ".join(names)) for (s, t), names in actions.items()]
    notes = [
        Note(
            None,
            "order deadlines: "
            + "; ".join(
                f"{n} {duration_text(pack.deadlines[n])} → {expiry_text(pack.deadlines[n])}"
                for n in ORDER_DEADLINES
            ),
        )
    ]
    owner = {name: status for status, name in STATUS_DEADLINES.items()}
    owner["seller_handle_after_evidence"] = CaseStatus.IN_INTERVENTION
    for holiday in holidays:
        hp = holiday.pack
        if not isinstance(hp, HolidayPack):
            raise ValueError(f"{holiday.ref} is not a holiday pack")
        window = f"{hp.window.start:%Y-%m-%d %H:%M} … {hp.window.end:%Y-%m-%d %H:%M}"
        for rule in hp.rules:
            events = ", ".join(rule.trigger.events)
            for name, value in rule.set.items():
                text = (
                    f"{holiday.ref}/{rule.id}: {name} {value} ({window} Asia/Shanghai; "
                    f"{rule.trigger.level}-level on {events}"
                    f"{_filter_text('only', rule.only)}{_filter_text('except', rule.exclude)})"
                )
                notes.append(Note(owner[name], text))
    all_edges = tuple(edges)
    return Diagram(
        title=f"{base.ref}" + "".join(f" + {h.ref}" for h in holidays),
        statuses=tuple(CaseStatus),
        edges=all_edges,
        notes=tuple(notes),
        layers=_layers(all_edges),
    )


# --- renderings ----------------------------------------------------------------------------


def mermaid(diagram: Diagram) -> str:
    """A Mermaid ``stateDiagram-v2``."""
    out = ["---", f"title: {diagram.title}", "---", "stateDiagram-v2"]
    out.append(f"    [*] --> {START.value}")
    for edge in diagram.edges:
        label = edge.label.replace(":", " ").replace(";", ",")
        out.append(f"    {edge.source.value} --> {edge.target.value}: {label}")
    for status in sorted(TERMINAL_STATUSES, key=list(CaseStatus).index):
        out.append(f"    {status.value} --> [*]")
    for note in diagram.notes:
        where = (note.status or START).value
        side = "left" if note.status is None else "right"
        out += [f"    note {side} of {where}", f"        {note.text}", "    end note"]
    return "\n".join(out) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(diagram: Diagram) -> str:
    """A Graphviz ``digraph`` (text; render it wherever graphviz is installed)."""
    out = [
        "digraph shouhou {",
        f"  label={_dot_quote(diagram.title)};",
        "  rankdir=TB; node [shape=box, style=rounded, fontname=Helvetica];",
        "  edge [fontname=Helvetica, fontsize=9];",
    ]
    for status in diagram.statuses:
        extra = ", peripheries=2" if status in TERMINAL_STATUSES else ""
        out.append(f"  {status.value} [label={_dot_quote(status.value)}{extra}];")
    for edge in diagram.edges:
        style = ", color=firebrick, fontcolor=firebrick, style=dashed" if edge.timeout else ""
        out.append(
            f"  {edge.source.value} -> {edge.target.value} [label={_dot_quote(edge.label)}{style}];"
        )
    for i, note in enumerate(diagram.notes):
        out.append(f"  note{i} [shape=note, fontsize=9, label={_dot_quote(note.text)}];")
        if note.status is not None:
            out.append(f"  note{i} -> {note.status.value} [style=dotted, arrowhead=none];")
    out.append("}")
    return "\n".join(out) + "\n"


#: Geometry of the SVG, in pixels.
NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN, LINE = 230, 40, 40, 150, 30, 15


def svg(diagram: Diagram) -> str:
    """A standalone SVG: statuses in layers, action edges grey, timeout edges dashed red,
    notes listed below the drawing (numbered on their status)."""
    widest = max(len(layer) for layer in diagram.layers)
    width = MARGIN * 2 + widest * NODE_W + (widest - 1) * GAP_X
    pos: dict[CaseStatus, tuple[float, float]] = {}
    for level, layer in enumerate(diagram.layers):
        row_w = len(layer) * NODE_W + (len(layer) - 1) * GAP_X
        left = (width - row_w) / 2
        for i, status in enumerate(layer):
            pos[status] = (left + i * (NODE_W + GAP_X), MARGIN + 30 + level * (NODE_H + GAP_Y))
    drawing_h = MARGIN + 30 + len(diagram.layers) * (NODE_H + GAP_Y)
    timeouts = len({e.label for e in diagram.edges if e.timeout})
    height = drawing_h + MARGIN + LINE * (len(diagram.notes) + timeouts + 2)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif">',
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>',
        '<marker id="arrow-t" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#b22222"/></marker>',
        "</defs>",
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
        f'<text x="{MARGIN}" y="{MARGIN}" font-size="16" font-weight="bold">'
        f"{escape(diagram.title)}</text>",
    ]
    pair_count: dict[frozenset[CaseStatus], int] = defaultdict(int)
    for edge in diagram.edges:
        parts.append(_svg_edge(edge, pos, pair_count))
    # the SVG's timeout edges carry name and duration; their outcomes are listed below
    outcomes = sorted({e.label for e in diagram.edges if e.timeout})
    notes = [Note(None, "deadline " + text.removeprefix("⏱ ")) for text in outcomes]
    notes += diagram.notes
    numbered: dict[CaseStatus, list[int]] = defaultdict(list)
    for i, note in enumerate(notes, start=1):
        if note.status is not None:
            numbered[note.status].append(i)
    for status, (x, y) in pos.items():
        terminal = status in TERMINAL_STATUSES
        fill = "#eef5ee" if terminal else "#eef2fa"
        parts.append(
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="10" '
            f'fill="{fill}" stroke="#334" stroke-width="{2.5 if terminal else 1.2}"/>'
        )
        marks = "".join(f" [{n}]" for n in numbered.get(status, []))
        parts.append(
            f'<text x="{x + NODE_W / 2:.0f}" y="{y + NODE_H / 2 + 5:.0f}" font-size="13" '
            f'text-anchor="middle">{escape(status.value + marks)}</text>'
        )
    y = drawing_h + MARGIN
    parts.append(f'<text x="{MARGIN}" y="{y:.0f}" font-size="12" font-weight="bold">notes</text>')
    for i, note in enumerate(notes, start=1):
        y += LINE
        parts.append(
            f'<text x="{MARGIN}" y="{y:.0f}" font-size="11">[{i}] {escape(note.text)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _svg_edge(
    edge: Edge,
    pos: dict[CaseStatus, tuple[float, float]],
    pair_count: dict[frozenset[CaseStatus], int],
) -> str:
    color = "#b22222" if edge.timeout else "#777"
    marker = "arrow-t" if edge.timeout else "arrow"
    dash = ' stroke-dasharray="5,3"' if edge.timeout else ""
    sx, sy = pos[edge.source]
    label = escape(edge.short or edge.label)
    if edge.source == edge.target:  # a loop above the node's right end
        x, y = sx + NODE_W - 30, sy
        path = f"M{x:.0f},{y:.0f} C{x - 10:.0f},{y - 45:.0f} {x + 40:.0f},{y - 45:.0f} "
        path += f"{x + 25:.0f},{y:.0f}"
        lx, ly = x + 10, y - 40
    else:
        tx, ty = pos[edge.target]
        # a pair of statuses joined both ways (or twice) bends each edge apart
        key = frozenset({edge.source, edge.target})
        bend = 40 * pair_count[key] * (1 if list(CaseStatus).index(edge.source) % 2 else -1)
        pair_count[key] += 1
        x1, y1 = sx + NODE_W / 2, sy + (NODE_H if ty > sy else 0 if ty < sy else NODE_H / 2)
        x2, y2 = tx + NODE_W / 2, ty + (0 if ty > sy else NODE_H if ty < sy else NODE_H / 2)
        if ty == sy:
            x1 = sx + (NODE_W if tx > sx else 0)
            x2 = tx + (0 if tx > sx else NODE_W)
        mx, my = (x1 + x2) / 2 + bend, (y1 + y2) / 2 + (bend / 2 if ty == sy else 0)
        path = f"M{x1:.0f},{y1:.0f} Q{mx:.0f},{my:.0f} {x2:.0f},{y2:.0f}"
        # the label a third of the way from the source: edges leaving one status fan out
        # there, where their labels overlap less than at the crowded midpoints
        u = 1 / 3
        lx = (1 - u) ** 2 * x1 + 2 * (1 - u) * u * mx + u * u * x2
        ly = (1 - u) ** 2 * y1 + 2 * (1 - u) * u * my + u * u * y2
    return (
        f'<g><path d="{path}" fill="none" stroke="{color}" stroke-width="1.2"{dash} '
        f'marker-end="url(#{marker})"/>'
        f'<text x="{lx:.0f}" y="{ly:.0f}" font-size="9" fill="{color}" text-anchor="middle">'
        f"{label}</text></g>"
    )


def render(diagram: Diagram, fmt: str) -> str:
    """The diagram in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "mermaid":
        return mermaid(diagram)
    if fmt == "dot":
        return dot(diagram)
    if fmt == "svg":
        return svg(diagram)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
