"""The case transition table: the only way a case changes status.

Each row says which actors may take an action in a status and which statuses it may lead to.
The table is checked when this module is imported (see :func:`check_table`): every status is
reachable, terminals are terminal, no status is a trap, and every waiting status has a
deadline whose expiry moves the case on — so no case can wait forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shouhou.domain.model import TERMINAL_STATUSES, CaseStatus, Role, Stage
from shouhou.errors import NotAllowed, TransitionNotAllowed

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


BUYER, SELLER, SYSTEM, AGENT = (Role.BUYER,), (Role.SELLER,), (Role.SYSTEM,), (Role.AGENT,)
_REFUND_OR_RETURN = (S.REFUNDED, S.AWAITING_BUYER_RETURN)
_REMEDY_OUTCOMES = (S.REFUNDED, S.CLOSED, S.AWAITING_SELLER_RESHIP)
#: Where a case stands once the seller has agreed to it: waiting for the goods to come back,
#: for the seller's receipt, for the reship, for the buyer to confirm the new goods.
AGREED = (
    S.AWAITING_BUYER_RETURN,
    S.AWAITING_SELLER_RECEIPT,
    S.AWAITING_SELLER_RESHIP,
    S.AWAITING_BUYER_CONFIRMATION,
)
#: The statuses a buyer may escalate from, and a ruling of ``continue`` may return to.
ESCALABLE = (
    S.AWAITING_SELLER,
    S.SELLER_REFUSED,
    S.AWAITING_BUYER_RETURN,
    S.AWAITING_SELLER_RECEIPT,
    S.AWAITING_SELLER_RESHIP,
    S.AWAITING_BUYER_CONFIRMATION,
)

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
        *(
            Transition(
                source=status,
                action="request_intervention",
                targets=frozenset({S.IN_INTERVENTION}),
                actors=frozenset(BUYER),
            )
            for status in ESCALABLE
        ),
        *_rows(
            S.IN_INTERVENTION,
            BUYER,
            {"complete_evidence": [S.IN_INTERVENTION], "withdraw": [S.CLOSED]},
        ),
        *_rows(S.IN_INTERVENTION, BUYER + SELLER, {"submit_evidence": [S.IN_INTERVENTION]}),
        # agreeing again after an escalation from past the agreement resumes where it stood
        *_rows(S.IN_INTERVENTION, SELLER, {"agree": (S.REFUNDED, *AGREED)}),
        *_rows(S.IN_INTERVENTION, AGENT, {"rule": (S.REFUNDED, S.CLOSED, *ESCALABLE)}),
        *_rows(S.IN_INTERVENTION, SYSTEM, {"timeout": [S.IN_INTERVENTION]}),
    ]
)

#: Inside intervention, the stages in which each action may be taken, and by whom (SPEC §4):
#: evidence is revisable until its stage ends, then sealed; the seller may still agree or
#: rebut after the buyer completes evidence; only the review stage takes a ruling.
STAGE_ACTIONS: Mapping[str, Mapping[Stage, frozenset[Role]]] = {
    "submit_evidence": {
        Stage.EVIDENCE: frozenset({Role.BUYER, Role.SELLER}),
        Stage.SELLER_HANDLING: frozenset({Role.SELLER}),
    },
    "complete_evidence": {Stage.EVIDENCE: frozenset({Role.BUYER})},
    "agree": {
        Stage.EVIDENCE: frozenset({Role.SELLER}),
        Stage.SELLER_HANDLING: frozenset({Role.SELLER}),
    },
    "rule": {Stage.REVIEW: frozenset({Role.AGENT})},
}
#: The deadline of each intervention stage (none in review: an agent's queue takes it).
STAGE_DEADLINES: Mapping[Stage, str | None] = {
    Stage.EVIDENCE: "evidence",
    Stage.SELLER_HANDLING: "seller_handle_after_evidence",
    Stage.REVIEW: None,
}


def check_stage(stage: Stage | None, action: str, role: Role, *, case: str) -> None:
    """Refuse ``action`` in an intervention stage that does not take it from ``role``."""
    allowed = STAGE_ACTIONS.get(action)
    if allowed is None or stage is None:
        return
    roles = allowed.get(stage, frozenset())
    if role not in roles:
        raise NotAllowed(
            f"can't {action} as {role.value} in the {stage.value} stage of intervention",
            case=case,
            status=S.IN_INTERVENTION.value,
        )


#: The deadline a case gets on entering each waiting status (SPEC §2).
STATUS_DEADLINES: Mapping[CaseStatus, str] = {
    S.AWAITING_SELLER: "seller_respond",
    S.SELLER_REFUSED: "buyer_respond_after_refusal",
    S.AWAITING_BUYER_RETURN: "buyer_ship_return",
    S.AWAITING_SELLER_RECEIPT: "seller_confirm_receipt",
    S.AWAITING_SELLER_RESHIP: "seller_reship",
    S.AWAITING_BUYER_CONFIRMATION: "buyer_confirm_received",
    S.IN_INTERVENTION: "evidence",
}

_INDEX: dict[tuple[CaseStatus, str], Transition] = {(t.source, t.action): t for t in TABLE}
ACTIONS: frozenset[str] = frozenset(t.action for t in TABLE) | {"apply"}
#: The roles that take each action in some status: a role outside them is ``forbidden`` the
#: action whatever the case's status (SPEC §1: who may act is checked first).
ROLES: Mapping[str, frozenset[Role]] = {
    action: frozenset().union(*(t.actors for t in TABLE if t.action == action))
    for action in sorted(ACTIONS - {"apply"})
}


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
