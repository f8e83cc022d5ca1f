"""The one error tree of shouhou.

    ShouhouError
     ├── ActionRefused            an action was refused; ``code`` is part of the public contract
     │    ├── NotAllowed          not_allowed   not valid in this status
     │    │    └── TransitionNotAllowed         the transition table has no such move
     │    ├── NotEligible         not_eligible  a rule forbids it now (too early, too late, limit)
     │    ├── Forbidden           forbidden     this actor may not
     │    ├── Invalid             invalid       bad parameters
     │    ├── NotFound            not_found     no such case, order or complaint
     │    └── Conflict            conflict      stale version: someone else changed it first
     │         └── StillRunning                 a request with the same Idempotency-Key is
     │                                          still running (``retry_after`` seconds)
     ├── PolicyError              a rulebook pack is malformed or inconsistent
     ├── ScenarioError            a scenario file is malformed (carries the line number)
     ├── NoDatabase               the database a URL names is not there or can't be reached
     ├── OverQuota                an actor used up a daily quota (``until``: when it resets);
     │                            the API answers 429 with ``Retry-After``
     ├── OutOfStep                a pending deadline row disagrees with its subject (a bug;
     │                            also a RuntimeError)
     └── CannotFire               a due deadline failed to fire (``due``, ``error``): the
                                  deadline runner sets it aside

Every refusal names the rule behind it (``rule``: a rulebook rule id, or for refusals that
come from the engine's structure ``shouhou/transition-table``, ``shouhou/parties``,
``shouhou/parameters`` or ``shouhou/versions``) and, where a time rule blocks, the instant
from which the action would be allowed (``allowed_from``). Edges (CLI, API, scenario runner)
translate these once, through :meth:`ActionRefused.to_dict`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from shouhou.times import show

if TYPE_CHECKING:
    from shouhou.services.ports import DueDeadline


class ShouhouError(Exception):
    """Base of every error shouhou raises on purpose."""


class ActionRefused(ShouhouError):
    """An action was refused; nothing was changed."""

    code: ClassVar[str] = "refused"
    #: The rule named when the refusal comes from the engine's structure, not a rulebook entry.
    default_rule: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        rule: str | None = None,
        allowed_from: datetime | None = None,
        case: str | None = None,
        status: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule or self.default_rule
        self.allowed_from = allowed_from
        self.case = case
        self.status = status

    def to_dict(self) -> dict[str, Any]:
        """The refusal as a plain mapping (the wire shape of every edge)."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.rule is not None:
            out["rule"] = self.rule
        if self.allowed_from is not None:
            out["allowed_from"] = show(self.allowed_from)
        if self.case is not None:
            out["case"] = self.case
        if self.status is not None:
            out["status"] = self.status
        return out


class NotAllowed(ActionRefused):
    code = "not_allowed"
    default_rule = "shouhou/transition-table"


class TransitionNotAllowed(NotAllowed):
    """The transition table has no move for this status and action."""


class NotEligible(ActionRefused):
    code = "not_eligible"


class Forbidden(ActionRefused):
    code = "forbidden"
    default_rule = "shouhou/parties"


class Invalid(ActionRefused):
    code = "invalid"
    default_rule = "shouhou/parameters"


class NotFound(ActionRefused):
    code = "not_found"


class Conflict(ActionRefused):
    code = "conflict"
    default_rule = "shouhou/versions"


class StillRunning(Conflict):
    """Another request with the same ``Idempotency-Key`` is still running; its answer will be
    replayed to a request sent again after ``retry_after`` seconds."""

    default_rule = "shouhou/idempotency"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PolicyError(ShouhouError):
    """A rulebook pack failed validation."""


class ScenarioError(ShouhouError):
    """A scenario file is invalid; ``line`` is 1-based where known."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        where = f"{file or '<scenario>'}" + (f":{line}" if line else "")
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line
        self.reason = message


class NoDatabase(ShouhouError):
    """The database a URL names is not there, can't be reached, or is not shouhou's."""


class OverQuota(ShouhouError):
    """``actor`` used up a daily quota; nothing was done. It resets at ``until``."""

    code: ClassVar[str] = "too_many_requests"

    def __init__(self, message: str, *, actor: str, until: datetime, retry_after_s: int) -> None:
        super().__init__(message)
        self.message = message
        self.actor = actor
        self.until = until
        #: Whole seconds from the refusal to ``until`` (HTTP ``Retry-After``).
        self.retry_after_s = retry_after_s


class OutOfStep(ShouhouError, RuntimeError):
    """A pending deadline row disagrees with its subject: a bug, never retried."""


class CannotFire(ShouhouError):
    """Firing ``due`` failed with ``error``, one of ``services.deadlines.SET_ASIDE_ON``."""

    def __init__(self, due: DueDeadline, error: Exception) -> None:
        super().__init__(f"{due.subject_type} {due.subject_id}: {due.name}: {error!r}")
        self.due = due
        self.error = error


#: What reading stored data that no longer fits the code raises (a renamed event type, a
#: snapshot missing a field, a value of the wrong kind): the same row fails the same way every
#: time, so whoever reads it sets that row aside rather than retrying it.
UNREADABLE = (ValueError, LookupError, TypeError)
