"""The case transition table: the only way a case changes status.

Each row says which actors may take an action in a status and which statuses it may lead to.
The table is checked when this module is imported (see :func:`check_table`): every status is
reachable, terminals are terminal, no status is a trap, and every waiting status has a
deadline whose expiry moves the case on — so no case can wait forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shouhou.domain.model import TERMINAL_STATUSES, CaseStatus, Role
from shouhou.errors import TransitionNotAllowed

S = CaseStatus
START = S.AWAITING_SELLER


@dataclass(frozen=True, kw_only=True)
class Transition:
    source: CaseStatus
    action: str
    targets: frozenset[CaseStatus]
    actors: frozenset[Role]
    restarts_deadline: bool = False


def _rows(
    source: CaseStatus, actors: Iterable[Role], moves: Mapping[str, Iterable[CaseStatus]]
) -> list[Transition]:
    who = frozenset(actors)
    return [
        Transition(source=source, action=action, targets=frozenset(targets), actors=who)
        for action, targets in moves.items()
    ]


BUYER, SELLER, SYSTEM = (Role.BUYER,), (Role.SELLER,), (Role.SYSTEM,)
_REFUND_OR_RETURN = (S.REFUNDED, S.AWAITING_BUYER_RETURN)
_REMEDY_OUTCOMES = (S.REFUNDED, S.CLOSED, S.AWAITING_SELLER_RESHIP)

TABLE: tuple[Transition, ...] = tuple(
    [
        Transition(
            source=S.AWAITING_SELLER,
            action="modify",
            targets=frozenset({S.AWAITING_SELLER}),
            actors=frozenset(BUYER),
            restarts_deadline=True,
        ),
        *_rows(
            S.AWAITING_SELLER,
            BUYER,
            {
                "withdraw": [S.CLOSED],
                "accept_remedy": _REMEDY_OUTCOMES,
                "decline_remedy": [S.AWAITING_SELLER],
            },
        ),
        *_rows(
            S.AWAITING_SELLER,
            SELLER,
            {
                "agree": _REFUND_OR_RETURN,
                "refuse": [S.SELLER_REFUSED],
                "intercept": [S.AWAITING_SELLER_RECEIPT],
                "propose_remedy": [S.AWAITING_SELLER],
            },
        ),
        *_rows(S.AWAITING_SELLER, SYSTEM, {"timeout": _REFUND_OR_RETURN}),
        *_rows(
            S.SELLER_REFUSED,
            BUYER,
            {
                "modify": [S.AWAITING_SELLER],
                "withdraw": [S.CLOSED],
                "accept_remedy": _REMEDY_OUTCOMES,
                "decline_remedy": [S.SELLER_REFUSED],
            },
        ),
        *_rows(
            S.SELLER_REFUSED,
            SELLER,
            {"agree": _REFUND_OR_RETURN, "propose_remedy": [S.SELLER_REFUSED]},
        ),
        *_rows(S.SELLER_REFUSED, SYSTEM, {"timeout": [S.CLOSED]}),
        *_rows(
            S.AWAITING_BUYER_RETURN,
            BUYER,
            {"ship_return": [S.AWAITING_SELLER_RECEIPT], "withdraw": [S.CLOSED]},
        ),
        *_rows(S.AWAITING_BUYER_RETURN, SYSTEM, {"timeout": [S.CLOSED]}),
        *_rows(S.AWAITING_SELLER_RECEIPT, BUYER, {"withdraw": [S.CLOSED]}),
        *_rows(
            S.AWAITING_SELLER_RECEIPT,
            SELLER,
            {
                "confirm_receipt": [S.REFUNDED, S.AWAITING_SELLER_RESHIP],
                "refuse_receipt": [S.SELLER_REFUSED],
            },
        ),
        *_rows(S.AWAITING_SELLER_RECEIPT, SYSTEM, {"timeout": [S.REFUNDED]}),
        *_rows(S.AWAITING_SELLER_RESHIP, BUYER, {"withdraw": [S.CLOSED]}),
        *_rows(S.AWAITING_SELLER_RESHIP, SELLER, {"reship": [S.AWAITING_BUYER_CONFIRMATION]}),
        *_rows(S.AWAITING_SELLER_RESHIP, SYSTEM, {"timeout": [S.REFUNDED]}),
        *_rows(
            S.AWAITING_BUYER_CONFIRMATION,
            BUYER,
            {"confirm_received": [S.COMPLETED], "withdraw": [S.CLOSED]},
        ),
        *_rows(S.AWAITING_BUYER_CONFIRMATION, SYSTEM, {"timeout": [S.COMPLETED]}),
    ]
)

#: The deadline a case gets on entering each waiting status (SPEC §2).
STATUS_DEADLINES: Mapping[CaseStatus, str] = {
    S.AWAITING_SELLER: "seller_respond",
    S.SELLER_REFUSED: "buyer_respond_after_refusal",
    S.AWAITING_BUYER_RETURN: "buyer_ship_return",
    S.AWAITING_SELLER_RECEIPT: "seller_confirm_receipt",
    S.AWAITING_SELLER_RESHIP: "seller_reship",
    S.AWAITING_BUYER_CONFIRMATION: "buyer_confirm_received",
}

_INDEX: dict[tuple[CaseStatus, str], Transition] = {(t.source, t.action): t for t in TABLE}
ACTIONS: frozenset[str] = frozenset(t.action for t in TABLE) | {"apply"}


def find(status: CaseStatus, action: str, *, case: str | None = None) -> Transition:
    """The row for ``action`` in ``status``; TransitionNotAllowed when there is none
    (always so in a terminal status, whose rows the table check keeps empty)."""
    row = _INDEX.get((status, action))
    if row is None:
        raise TransitionNotAllowed(
            f"can't {action} when {status.value}", status=status.value, case=case
        )
    return row


def actions_in(status: CaseStatus) -> list[Transition]:
    """Every row leaving ``status``, in table order."""
    return [t for t in TABLE if t.source == status]


def _reachable(start: CaseStatus, table: Iterable[Transition]) -> set[CaseStatus]:
    rows = list(table)
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for row in rows:
            if row.source == here:
                for target in row.targets - seen:
                    seen.add(target)
                    todo.append(target)
    return seen


def check_table(
    table: Iterable[Transition],
    start: CaseStatus,
    deadlines: Mapping[CaseStatus, str],
) -> list[str]:
    """Everything wrong with a transition table, as sentences (empty when it is sound)."""
    rows = list(table)
    problems: list[str] = []
    seen: set[tuple[CaseStatus, str]] = set()
    for row in rows:
        if (row.source, row.action) in seen:
            problems.append(f"{row.source.value}/{row.action} appears twice")
        seen.add((row.source, row.action))
        if row.source in TERMINAL_STATUSES:
            problems.append(f"terminal status {row.source.value} has an outgoing {row.action}")
        if not row.targets or not row.actors:
            problems.append(f"{row.source.value}/{row.action} has no targets or no actors")
    unreachable = set(CaseStatus) - _reachable(start, rows)
    problems += [f"status {s.value} is unreachable" for s in sorted(unreachable)]
    for status in set(CaseStatus) - TERMINAL_STATUSES:
        if not _reachable(status, rows) & TERMINAL_STATUSES:
            problems.append(f"status {status.value} is a trap: no terminal status is reachable")
        if status not in deadlines:
            problems.append(f"waiting status {status.value} has no deadline")
        elif (status, "timeout") not in seen:
            problems.append(f"status {status.value} has a deadline but no timeout move")
    return problems


_PROBLEMS = check_table(TABLE, START, STATUS_DEADLINES)
if _PROBLEMS:  # pragma: no cover - guarded by tests/unit/test_transitions.py
    raise RuntimeError("unsound transition table: " + "; ".join(_PROBLEMS))
