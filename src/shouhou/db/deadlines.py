"""The deadline store on SQL: each subject's pending deadline, synced as it changes, and the
claim of due ones (``FOR NO KEY UPDATE … SKIP LOCKED`` on PostgreSQL, see
:mod:`shouhou.db.uow`; the writer's lock on SQLite), fired in a batch before commit."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from shouhou.db import queries
from shouhou.db.buckets import Homes, Walk
from shouhou.db.cursor import Cursor
from shouhou.domain.model import Deadline
from shouhou.errors import Conflict
from shouhou.services.ports import Backlog, DueDeadline

#: How many of the oldest due deadlines a claim on PostgreSQL looks at to choose its bucket.
DUE_SCAN = 256

#: What identifies a pending deadline row: name, due time, rule.
Slot = tuple[str, datetime, str]
#: The pending deadline that each subject loaded or synced in this unit of work has in the
#: table (None: none), so that an unchanged deadline costs no statement and a changed one no
#: read. Subjects not in it are looked up.
Known = dict[tuple[str, str], Slot | None]


def slot(deadline: Deadline | None) -> Slot | None:
    """What identifies ``deadline``'s row while it is pending (None: no deadline)."""
    return None if deadline is None else (deadline.name, deadline.due_at, deadline.rule_id)


class SqlDeadlines:
    """Deadlines of orders and cases: scheduled, cancelled, claimed when due and fired."""

    def __init__(
        self, conn: Connection, cur: Cursor, known: Known, homes: Homes, walk: Walk
    ) -> None:
        self.conn = conn
        self.cur = cur
        self.known = known
        self.homes = homes
        self.walk = walk
        self.scheduled: set[tuple[str, str]] = set()  # subjects given a deadline here
        #: What this unit of work claimed, by subject: (name, due time). A claimed
        #: row is locked (PostgreSQL) or the writer holds the database (SQLite), so only this
        #: unit of work can change it until it ends.
        self.claimed: dict[tuple[str, str], tuple[str, datetime]] = {}
        #: Claimed deadlines fired here and not yet marked, as parameters of ``fire``. They
        #: are marked together before any other statement on deadlines, and before commit.
        self.firing: list[dict[str, Any]] = []

    def _stored(self, subject_type: str, subject_id: str) -> Slot | None:
        key = (subject_type, subject_id)
        if key in self.known:
            return self.known[key]
        self.flush()
        row = self.cur.one("pending", self._subject(subject_type, subject_id))
        return None if row is None else (row[1], self.cur.d.read_moment(row[2]), row[3])

    def sync(self, subject_type: str, subject_id: str, deadline: Deadline | None) -> None:
        stored, wanted = self._stored(subject_type, subject_id), slot(deadline)
        if stored == wanted:
            return
        self.flush()
        subject = self._subject(subject_type, subject_id)
        changed = "its deadline changed meanwhile"
        # PostgreSQL cancels the pending one in the statement that schedules the next
        merged = stored is not None and deadline is not None and self.cur.d.postgresql
        if stored is not None and not merged and self.cur.run("cancel", subject).rowcount != 1:
            raise Conflict(f"{subject_type} {subject_id}: {changed}")
        if deadline is not None:
            statement = "reschedule" if merged else "schedule"  # reschedule: none pending, no row
            scheduled = self.cur.run(
                statement,
                {
                    **subject,
                    "name": deadline.name,
                    "due_at": self.cur.d.moment(deadline.due_at),
                    "on_expiry": deadline.on_expiry,
                    "rule_id": deadline.rule_id,
                    "policy": deadline.policy,
                },
            )
            if scheduled.rowcount != 1:
                raise Conflict(f"{subject_type} {subject_id}: {changed}")
            self.scheduled.add((subject_type, subject_id))
        self.known[(subject_type, subject_id)] = wanted

    def _subject(self, subject_type: str, subject_id: str) -> dict[str, Any]:
        bucket = self.homes.of(subject_type, subject_id)
        return {"bucket": bucket, "subject_type": subject_type, "subject_id": subject_id}

    def fire(
        self, subject_type: str, subject_id: str, name: str, due_at: datetime, fired_at: datetime
    ) -> None:
        key = (subject_type, subject_id)
        row = self._fire_row(subject_type, subject_id, name, due_at, fired_at)
        if self.claimed.get(key) == (name, due_at) and self._unchanged(key, name, due_at):
            # Claimed here and unchanged since, so pending: marked with the batch.
            del self.claimed[key]
            self.firing.append(row)
            self.known[key] = None
            return
        self.flush()
        if self.cur.run("fire", row).rowcount != 1:
            raise Conflict(f"{subject_type} {subject_id}: deadline {name} was already handled")
        self.known[key] = None

    def _fire_row(
        self, subject_type: str, subject_id: str, name: str, due_at: datetime, fired_at: datetime
    ) -> dict[str, Any]:
        moment = self.cur.d.moment
        return {
            **self._subject(subject_type, subject_id),
            "name": name,
            "due_at": moment(due_at),
            "fired_at": moment(fired_at),
        }

    def next_due(self, now: datetime) -> DueDeadline | None:
        """The earliest due deadline; on PostgreSQL locked with its order, or None."""
        claimed = self.claim_due(now, 1)
        return claimed[0] if claimed else None

    def claim_due(self, now: datetime, limit: int) -> list[DueDeadline]:
        """SQLite: the earliest due across the buckets, in one statement (the writer holds the
        database). PostgreSQL: the earliest due of one bucket, chosen among the buckets of the
        oldest due deadlines by a walk from where this process's last claim took; due order
        holds in each bucket (docs/decisions/0021-fixed-buckets.md)."""
        self.flush()
        moment = self.cur.d.moment(now)
        if self.cur.d.postgresql:
            rows = self._claim_buckets(moment, limit)
        else:
            rows = self.cur.run("next_due", {"now": moment, "limit": limit}).fetchall()
        read = self.cur.d.read_moment
        for row in rows:
            self.homes.known[(row[1], row[2])] = int(row[5])
        claimed = [
            DueDeadline(
                id=row_id,
                subject_type=subject_type,
                subject_id=subject_id,
                name=name,
                due_at=read(due_at),
            )
            for row_id, subject_type, subject_id, name, due_at, _bucket in rows
        ]
        if not self.cur.d.readonly:
            for due in claimed:
                self.claimed[(due.subject_type, due.subject_id)] = (due.name, due.due_at)
            if len(rows) > 1:
                self._prefetch(rows)
        return claimed

    def _prefetch(self, rows: list[Any]) -> None:
        """Read the claimed subjects (cases with their orders, orders) in a statement per
        kind (and, on PostgreSQL, per bucket) instead of one each as they fire."""
        cur, homes = self.cur, self.homes
        for kind in ("case", "order"):
            keys = [(int(row[5]), row[2]) for row in rows if row[1] == kind]
            if len(keys) < 2:
                continue
            if cur.d.postgresql:
                buckets: dict[int, list[str]] = {}
                for bucket, key in keys:
                    buckets.setdefault(bucket, []).append(key)
                params = [{"bucket": b, "ids": ids} for b, ids in sorted(buckets.items())]
            else:
                params = [{"keys": json.dumps(keys)}]
            for one in params:
                for found in cur.run(f"prefetch_{kind}s", one).fetchall():
                    bucket = int(found[-1])
                    homes.preload(kind, found[0], bucket, found[1], found[2])
                    if kind == "case" and found[3] is not None:  # with its order
                        homes.preload("order", found[3], bucket, found[4], found[5])

    def _claim_buckets(self, now: Any, limit: int) -> list[Any]:
        """The due deadlines of one bucket: of the buckets holding the oldest due deadlines
        (read without locks), the first in this process's walk that has any a claim can
        take. One bucket per statement, and the transaction writes in that bucket only."""
        params = {"now": now, "scan": DUE_SCAN}
        due = {int(row[0]) for row in self.cur.run("due_buckets", params).fetchall()}
        if not due:
            return []
        order = [bucket for bucket in self.walk.order() if bucket in due]
        # Deadlines whose subject is missing come second: only when none other was claimed.
        for statement in ("next_due", "next_orphan"):
            for bucket in order:
                params = {"bucket": bucket, "now": now, "limit": limit}
                found: list[Any] = self.cur.run(statement, params).fetchall()
                if found:
                    self.walk.took(bucket)
                    return found
        return []

    def flush(self) -> None:
        """Mark the claimed deadlines fired here with the conditional statement of ``fire``,
        sent at once (on PostgreSQL one pipeline, not a round trip each); a row that was not
        pending any more fails the commit (the claim's lock makes that a bug, not a race)."""
        if not self.firing:
            return
        firing, self.firing = self.firing, []
        marked = self.cur.many("fire", firing)
        if marked != len(firing):
            raise Conflict(f"{len(firing) - marked} claimed deadlines were handled meanwhile")

    def earliest_scheduled(self) -> datetime | None:
        slots = (self.known[key] for key in self.scheduled)
        return min((slot[1] for slot in slots if slot is not None), default=None)

    def still_due(self, due: DueDeadline) -> bool:
        """Asks nothing of the database: a claimed deadline is locked (PostgreSQL) or the
        writer holds the database (SQLite), so only this unit of work can have changed it,
        and it records every change of a subject's deadline it makes."""
        return self._unchanged((due.subject_type, due.subject_id), due.name, due.due_at)

    def _unchanged(self, key: tuple[str, str], name: str, due_at: datetime) -> bool:
        """Whether this unit of work left the subject's pending deadline ``name`` at
        ``due_at`` as it was (a subject it never touched counts as left)."""
        if key not in self.known:
            return True
        slot = self.known[key]
        return slot is not None and (slot[0], slot[1]) == (name, due_at)

    def set_aside(self, due: DueDeadline, error: str) -> bool:
        self.flush()
        bucket = self.homes.of(due.subject_type, due.subject_id)
        params = {"bucket": bucket, "id": due.id, "error": error}
        marked = bool(self.cur.run("set_aside", params).rowcount == 1)
        if marked:  # the subject has no pending deadline now
            self.known[(due.subject_type, due.subject_id)] = None
        return marked

    def pending_count(self) -> int:
        self.flush()
        return int(self.conn.execute(queries.pending_deadlines_count()).scalar_one())

    def backlog(self, now: datetime) -> Backlog:
        self.flush()
        statement = queries.due_deadlines_backlog(now)
        count, oldest = self.conn.execute(statement).one()
        return Backlog(due=int(count), oldest_due_at=oldest)
