"""Webhooks: endpoint secrets, event filters, and ``deadline.approaching`` announcements.

(Receivers verify what they get with :mod:`shouhou.webhooks`.)
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from shouhou.services.ports import ApiUnitOfWork, Approaching, OutboxMessage
from shouhou.times import show

#: Longest error text kept for a delivery attempt, in characters.
MAX_ERROR_CHARS = 500


#: How failed attempts were recorded before: ``HTTP 500: <the first 200 characters of the
#: answer>`` and ``ConnectError: <the exception's text>``, which may quote the receiver.
_WITH_BODY = re.compile(r"^HTTP (\d{3}): .*", re.DOTALL)
_WITH_TEXT = re.compile(r"^([A-Z][A-Za-z]+): .*", re.DOTALL)


def public_error(error: str | None) -> str | None:
    """A recorded delivery error as the API shows it: the reason, never a receiver's text."""
    if error is None:
        return None
    return _WITH_TEXT.sub(r"failed (\1)", _WITH_BODY.sub(r"HTTP \1", error))


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """``case.*`` matches ``case.agreed``; ``*`` matches everything; otherwise exact names."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def new_secret() -> str:
    """A webhook signing secret in the Standard Webhooks form (``whsec_`` + base64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def approaching_message(due: Approaching, now: datetime) -> OutboxMessage:
    return OutboxMessage(
        type="deadline.approaching",
        subject_type=due.subject_type,
        subject_id=due.subject_id,
        occurred_at=now,
        data={
            **due.facts,
            "deadline": {
                "name": due.name,
                "due_at": show(due.due_at),
                "on_expiry": due.on_expiry,
                "rule_id": due.rule_id,
                "policy": due.policy,
            },
        },
    )


def announce_approaching(uow: ApiUnitOfWork, now: datetime, lead: timedelta, limit: int) -> int:
    """Write ``deadline.approaching`` for deadlines due within ``lead``; one transaction."""
    with uow:
        due = uow.webhooks.approaching(now, now + lead, limit)
        # another worker may announce the same ones meanwhile: each goes out once, by either
        mine = [one for one in due if uow.webhooks.announced(one.deadline_id, now)]
        uow.outbox.add([approaching_message(one, now) for one in mine])
        uow.commit()
    return len(mine)
