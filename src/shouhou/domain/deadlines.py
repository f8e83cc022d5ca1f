"""Deadlines computed from rules and a start instant; never from a clock."""

from __future__ import annotations

from datetime import datetime

from shouhou.domain.events import DeadlineFired
from shouhou.domain.model import Deadline
from shouhou.domain.rules import DeadlineContext, DeadlineRule, Rules


def schedule(rules: Rules, ctx: DeadlineContext, *, due_at: datetime | None = None) -> Deadline:
    """The deadline ``ctx.name`` starting at ``ctx.start_at`` under ``rules``.

    ``due_at`` is used for rules without a duration (a presale's promised date).
    """
    rule = rules.deadline(ctx)
    if rule.duration is not None:
        due_at = rules.due_at(rule, ctx.start_at)  # in natural time or in working days
    return from_rule(rule, ctx.start_at, due_at=due_at)


def from_rule(
    rule: DeadlineRule, start_at: datetime, *, due_at: datetime | None = None
) -> Deadline:
    if due_at is not None:
        due = due_at
    elif rule.duration is not None:
        due = start_at + rule.duration
    else:
        raise ValueError(f"rule {rule.rule_id} has no duration and no date was given")
    return Deadline(
        name=rule.name,
        due_at=due,
        on_expiry=rule.on_expiry,
        rule_id=rule.rule_id,
        policy=rule.policy,
        started_at=start_at,
        duration=due - start_at,
    )


def is_due(deadline: Deadline | None, now: datetime) -> bool:
    """A deadline is passed when the clock is at or after its due time (never early)."""
    return deadline is not None and now >= deadline.due_at


def fired(deadline: Deadline, now: datetime) -> DeadlineFired:
    """The event recording that ``deadline`` fired at ``now`` (its due time)."""
    return DeadlineFired(
        at=now,
        actor="system",
        name=deadline.name,
        due_at=deadline.due_at,
        on_expiry=deadline.on_expiry,
        rule_id=deadline.rule_id,
        policy=deadline.policy,
    )
