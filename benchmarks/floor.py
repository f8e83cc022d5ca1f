"""The floor: the smallest transactions that make a transition and fire a deadline, run through
the bare driver (sqlite3 / psycopg 3) with the engine's settings, on the engine's own tables.

A transition at the floor is four statements and a commit: read the case, update it with its
version check, insert its event, upsert its deadline. A timeout at the floor is four too:
claim the due deadline and mark it fired (one UPDATE … RETURNING), read its case, update the
case with its version check, insert its event; per transaction, or a batch of them per
commit. The rows are the engine's: the schema comes from the engine's migrations, and the
case snapshots, events and deadlines written are those the engine wrote for a template case
taken through the same steps (``transitions.py``'s return, ``firing.py``'s refund), so the
floor moves the same bytes.

``transitions.py``, ``firing.py`` and ``pg_clients.py`` run these next to the engine in the
same run and print ours ÷ floor; run alone, this prints the floor's rates:

    .venv/bin/python benchmarks/floor.py --db sqlite
    .venv/bin/python benchmarks/floor.py --db postgresql
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import _common

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db import engine as db_engine
from shouhou.db.uow import SqlUnitOfWork
from shouhou.domain.buckets import DEFAULT_BUCKETS, in_bucket
from shouhou.domain.model import Order

T0 = datetime(2024, 3, 1, 2, tzinfo=UTC)
#: The return of transitions.py: action, role, parameters.
STEPS = [
    ("apply", "buyer", {"kind": "return_refund", "reason": "wrong_item", "amount": 29_900}),
    ("agree", "seller", {"return_address": "杭州市余杭区文一西路 1 号"}),
    ("ship_return", "buyer", {"carrier": "SF", "waybill": "SF1234567890", "method": "express"}),
    ("confirm_receipt", "seller", {}),
]
TEMPLATE = "cTEMPLATE"

# --- the statements ----------------------------------------------------------------------
# Written with %s; SQLite gets ?. {lock} locks the row on PostgreSQL, as the engine does.

READ_CASE = "SELECT {state}, version FROM cases WHERE bucket = %s AND id = %s{lock}"
UPDATE_CASE = (
    "UPDATE cases SET state = %s, version = version + 1, status = %s, updated_at = %s"
    " WHERE bucket = %s AND id = %s AND version = %s"
)
INSERT_EVENT = (
    "INSERT INTO events (bucket, stream, stream_id, seq, type, at, actor, data)"
    " VALUES (%s, 'case', %s, %s, %s, %s, %s, %s)"
)
#: Firing's cases have a timeline already: the event takes the next number of it, as the
#: engine's does (its timeline is not read).
INSERT_NEXT_EVENT = (
    "INSERT INTO events (bucket, stream, stream_id, seq, type, at, actor, data) SELECT %s,"
    " 'case', %s, coalesce(max(seq), 0) + 1, %s, %s, %s, %s FROM events"
    " WHERE bucket = %s AND stream = 'case' AND stream_id = %s"
)
UPSERT_DEADLINE = (
    "INSERT INTO deadlines (bucket, subject_type, subject_id, name, due_at, on_expiry, rule_id,"
    " policy, status) VALUES (%s, 'case', %s, %s, %s, %s, %s, %s, 'pending')"
    " ON CONFLICT (bucket, subject_type, subject_id) WHERE status = 'pending' DO UPDATE SET"
    " name = excluded.name, due_at = excluded.due_at, on_expiry = excluded.on_expiry,"
    " rule_id = excluded.rule_id, policy = excluded.policy"
)
#: The claim is a CTE, run once: as ``id IN (SELECT … LIMIT n)`` PostgreSQL may run the
#: subquery again for each row it scans and mark more than ``n``.
CLAIM_AND_MARK = (
    "WITH claimed AS (SELECT bucket, id FROM deadlines WHERE status = 'pending' AND due_at <= %s"
    " ORDER BY due_at, id LIMIT %s{skip}) UPDATE deadlines SET status = 'fired',"
    " fired_at = %s WHERE {key} IN (SELECT {keys} FROM claimed) RETURNING subject_id, bucket"
)


def sql(text: str, kind: str) -> str:
    postgresql = kind == "postgresql"
    text = text.format(
        state="CAST(state AS TEXT)" if postgresql else "state",
        lock=" FOR NO KEY UPDATE" if postgresql else "",
        skip=" FOR NO KEY UPDATE SKIP LOCKED" if postgresql else "",
        # the primary key: (bucket, id) on PostgreSQL (0011), the rowid on SQLite
        key="(bucket, id)" if postgresql else "id",
        keys="bucket, id" if postgresql else "id",
    )
    return text if postgresql else text.replace("%s", "?")


def moment(value: datetime, kind: str) -> Any:
    """As the engine stores it: aware on PostgreSQL, naive UTC text on SQLite."""
    return value if kind == "postgresql" else value.isoformat(" ", "microseconds")[:-6]


def begin(conn: Any, kind: str) -> None:
    """SQLite: ``BEGIN IMMEDIATE``, as the engine's writers; psycopg begins by itself."""
    if kind == "sqlite":
        conn.execute("BEGIN IMMEDIATE")


# --- rows shaped like the engine's ---------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """What one step of the template case wrote: its snapshot and status, its last event, its
    pending deadline (None: none)."""

    state: str
    status: str
    at: datetime
    event_type: str
    actor: str
    event_data: str
    deadline: tuple[str, datetime, str, str, str] | None
    #: How many events the engine appended to the case in this step.
    events: int


def template_steps(db: _common.Database) -> list[Step]:
    """Take one case through the four steps on ``db`` with the engine; what each step wrote.
    The template's rows are removed afterwards."""
    sql_engine = db.engine()
    clock = VirtualClock(T0)
    engine = Engine(lambda: SqlUnitOfWork(sql_engine), clock=clock)
    steps: list[Step] = []
    try:
        engine.place_order(
            Order(
                id="oTEMPLATE",
                shop="s1",
                buyer="bTEMPLATE",
                total=29_900,
                created_at=T0 - timedelta(days=3),
                paid_at=T0 - timedelta(days=3),
                shipped_at=T0 - timedelta(days=2),
                delivered_at=T0 - timedelta(days=1),
            )
        )
        raw = db.connect_raw()
        try:
            for n, (action, role, params) in enumerate(STEPS):
                clock.set(T0 + timedelta(hours=n + 1))
                engine.execute(
                    engine.build(
                        action,
                        actor="buyer:bTEMPLATE" if role == "buyer" else "seller:s1",
                        target={"order_id": "oTEMPLATE", "case_id": TEMPLATE}
                        if action == "apply"
                        else {"case_id": TEMPLATE},
                        params=params,
                    )
                )
                steps.append(_step(raw, db.kind, sum(s.events for s in steps)))
            cur = raw.cursor()
            for statement in (
                "DELETE FROM events WHERE stream_id IN ('oTEMPLATE', 'cTEMPLATE')",
                "DELETE FROM deadlines WHERE subject_id IN ('oTEMPLATE', 'cTEMPLATE')",
                "DELETE FROM routes WHERE id = 'cTEMPLATE'",
                "DELETE FROM outbox",
                "DELETE FROM cases WHERE id = 'cTEMPLATE'",
                "DELETE FROM orders WHERE id = 'oTEMPLATE'",
            ):
                cur.execute(statement)
            raw.commit()
        finally:
            raw.close()
    finally:
        db_engine.dispose(sql_engine)
    return steps


def _step(raw: Any, kind: str, before: int) -> Step:
    cur = raw.cursor()
    text = "CAST({} AS TEXT)" if kind == "postgresql" else "{}"
    cur.execute(f"SELECT {text.format('state')}, status FROM cases WHERE id = 'cTEMPLATE'")
    state, status = cur.fetchone()
    # The step's longest event: the one that says what happened, not the deadline's.
    cur.execute(
        f"SELECT type, at, actor, {text.format('data')} FROM events WHERE stream = 'case'"
        f" AND stream_id = 'cTEMPLATE' AND seq > {before}"
    )
    new = cur.fetchall()
    event_type, at, actor, data = max(new, key=lambda row: len(row[3]))
    cur.execute(
        "SELECT name, due_at, on_expiry, rule_id, policy FROM deadlines"
        " WHERE subject_id = 'cTEMPLATE' AND status = 'pending'"
    )
    found = cur.fetchone()
    raw.commit()
    deadline = None
    if found is not None:
        name, due_at, on_expiry, rule_id, policy = found
        deadline = (name, _aware(due_at), on_expiry, rule_id, policy)
    return Step(state, status, _aware(at), event_type, actor, data, deadline, len(new))


def _aware(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def case_ids(count: int, prefix: str = "f") -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(count)]


def bucket(cid: str) -> int:
    """The bucket of a floor case (``case_ids``): its number mod the buckets, so that a
    pgbench script can name it (``:n % 256``) as the engine names the order's bucket."""
    return int(cid[-7:]) % DEFAULT_BUCKETS


def order_id(cid: str) -> str:
    """The order of a floor case: ``o`` and the case id, with the hex tail that puts it in
    ``bucket(cid)`` (decision 0021: an order's bucket is the crc32 of its id)."""
    return in_bucket(f"o{cid}", bucket(cid), DEFAULT_BUCKETS)


def insert_cases(conn: Any, kind: str, ids: Sequence[str], state: str) -> None:
    """Cases as the engine's ``apply`` leaves them, one per id, with their orders (bare
    INSERTs, committed)."""
    cur = conn.cursor()
    orders = [(bucket(cid), order_id(cid), cid) for cid in ids]
    begin(conn, kind)
    at = moment(T0, kind)
    cur.executemany(
        sql(
            "INSERT INTO orders (bucket, id, shop, buyer, status, state, version, created_at,"
            " updated_at) VALUES (%s, %s, 's1', %s, 'delivered', '{{}}', 1, %s, %s)",
            kind,
        ),
        [(home, order, f"b{cid}", at, at) for home, order, cid in orders],
    )
    cur.executemany(
        sql(
            "INSERT INTO cases (bucket, id, order_id, shop, buyer, kind, status, state, version,"
            " opened_at, updated_at) VALUES (%s, %s, %s, 's1', %s, 'return_refund', 'requested',"
            " %s, 1, %s, %s)",
            kind,
        ),
        [
            (home, cid, order, f"b{cid}", state.replace(TEMPLATE, cid), at, at)
            for home, order, cid in orders
        ],
    )
    conn.commit()


# --- the floor transactions ----------------------------------------------------------------


class Transitions:
    """The minimal transition transaction on a set of cases, step after step."""

    def __init__(self, conn: Any, kind: str, steps: Sequence[Step], ids: Sequence[str]) -> None:
        self.conn = conn
        self.kind = kind
        self.cur = conn.cursor()
        self.read = sql(READ_CASE, kind)
        self.update = sql(UPDATE_CASE, kind)
        self.insert = sql(INSERT_EVENT, kind)
        self.upsert = sql(UPSERT_DEADLINE, kind)
        self.ids = list(ids)
        # The parameters of each step for each case, made before the clock starts.
        self.params: list[list[tuple[Any, ...]]] = []
        for step in steps:
            at = moment(step.at, kind)
            per_case = []
            for cid in self.ids:
                home = bucket(cid)  # the case's order's (decision 0021)
                deadline = None
                if step.deadline is not None:
                    name, due_at, on_expiry, rule_id, policy = step.deadline
                    due = moment(due_at, kind)
                    deadline = (home, cid, name, due, on_expiry, rule_id, policy)
                per_case.append(
                    (
                        home,
                        cid,
                        step.state.replace(TEMPLATE, cid),
                        step.status,
                        at,
                        step.event_type,
                        step.actor,
                        step.event_data.replace(TEMPLATE, cid),
                        deadline,
                    )
                )
            self.params.append(per_case)

    def run(self, step: int, start: int, stop: int) -> float:
        """Step ``step`` for cases ``start`` to ``stop``, one commit each; the seconds."""
        cur, conn, kind = self.cur, self.conn, self.kind
        read, update, insert, upsert = self.read, self.update, self.insert, self.upsert
        rows = self.params[step][start:stop]
        started = time.perf_counter()
        for home, cid, state, status, at, event_type, actor, data, deadline in rows:
            if kind == "sqlite":
                conn.execute("BEGIN IMMEDIATE")
            cur.execute(read, (home, cid))
            _, version = cur.fetchone()
            cur.execute(update, (state, status, at, home, cid, version))
            if cur.rowcount != 1:
                raise RuntimeError(f"{cid}: version check failed")
            cur.execute(insert, (home, cid, version, event_type, at, actor, data))
            if deadline is not None:
                cur.execute(upsert, deadline)
            conn.commit()
        return time.perf_counter() - started


class Firing:
    """The minimal claim-and-fire transaction: claim and mark (one UPDATE … RETURNING), read
    the case, update it with its version check, insert its event; ``batch`` deadlines a
    commit."""

    def __init__(self, conn: Any, kind: str, event_data: str, now: datetime) -> None:
        self.conn = conn
        self.kind = kind
        self.cur = conn.cursor()
        self.claim = sql(CLAIM_AND_MARK, kind)
        self.read = sql(READ_CASE, kind)
        self.update = sql(UPDATE_CASE, kind)
        self.insert = sql(INSERT_NEXT_EVENT, kind)
        self.event_data = event_data
        self.now = moment(now, kind)

    def run(self, count: int, batch: int) -> float:
        """Fire ``count`` due deadlines, ``batch`` a commit; the seconds."""
        cur, conn, kind, now = self.cur, self.conn, self.kind, self.now
        read, update, insert = self.read, self.update, self.insert
        fired = 0
        started = time.perf_counter()
        while fired < count:
            if kind == "sqlite":
                conn.execute("BEGIN IMMEDIATE")
            cur.execute(self.claim, (now, min(batch, count - fired), now))
            claimed = [(row[0], row[1]) for row in cur.fetchall()]
            if not claimed:
                raise RuntimeError(f"nothing due after {fired}")
            updates, events = [], []
            for sid, home in claimed:
                cur.execute(read, (home, sid))
                state, version = cur.fetchone()
                updates.append((state, "refunded", now, home, sid, version))
                events.append((home, sid, "Refunded", now, "system", self.event_data, home, sid))
            if len(claimed) == 1:
                cur.execute(update, updates[0])
                cur.execute(insert, events[0])
            else:
                cur.executemany(update, updates)
                cur.executemany(insert, events)
            conn.commit()
            fired += len(claimed)
        return time.perf_counter() - started


def firing_event(conn: Any, kind: str) -> str:
    """The data of a case event as the engine stored it (the longest, to be fair to the
    floor's side of the ratio it is not)."""
    text = "CAST(data AS TEXT)" if kind == "postgresql" else "data"
    cur = conn.cursor()
    cur.execute(
        f"SELECT {text} FROM events WHERE stream = 'case' ORDER BY length({text}) DESC LIMIT 1"
    )
    row = cur.fetchone()
    conn.commit()
    return str(row[0]) if row else "{}"


# --- pgbench scripts -----------------------------------------------------------------------


def _literal(value: str) -> str:
    """``value`` as an SQL string with no colon in it: pgbench takes ``:word`` for one of its
    variables, in a string too (``"closed_reason":null``)."""
    escaped = value.replace("\\", "\\\\").replace("'", "''").replace(":", "\\x3a")
    return f"E'{escaped}'"


def pgbench_transition(steps: Sequence[Step], ncases: int, prefix: str = "f") -> str:
    """The minimal transition for ``pgbench -M prepared``: a random one of ``ncases`` cases
    (ids ``prefix`` and seven digits, inserted by ``insert_cases``) takes the writes of a
    random one of the four steps; the case row is locked when read, as the engine locks the
    order. Every statement names the case's bucket, ``:n % buckets`` (``bucket``), as the
    engine names its order's."""
    cid = f"'{prefix}' || lpad(:n::text, 7, '0')"
    lines = [
        f"\\set n random(0, {ncases - 1})",
        f"\\set b :n % {DEFAULT_BUCKETS}",
        f"\\set s random(0, {len(steps) - 1})",
        "BEGIN;",
        f"SELECT version AS v FROM cases WHERE bucket = :b AND id = {cid} FOR NO KEY UPDATE \\gset",
    ]
    for n, step in enumerate(steps):
        at = _literal(step.at.isoformat())
        lines.append(f"\\if :s = {n}" if n == 0 else f"\\elif :s = {n}")
        lines.append(
            f"UPDATE cases SET state = {_literal(step.state)}, version = version + 1,"
            f" status = {_literal(step.status)}, updated_at = {at}"
            f" WHERE bucket = :b AND id = {cid} AND version = :v;"
        )
        lines.append(
            "INSERT INTO events (bucket, stream, stream_id, seq, type, at, actor, data)"
            f" VALUES (:b, 'case', {cid}, :v, {_literal(step.event_type)}, {at},"
            f" {_literal(step.actor)}, {_literal(step.event_data)});"
        )
        if step.deadline is not None:
            name, due_at, on_expiry, rule_id, policy = step.deadline
            lines.append(
                "INSERT INTO deadlines (bucket, subject_type, subject_id, name, due_at,"
                f" on_expiry, rule_id, policy, status) VALUES (:b, 'case', {cid},"
                f" {_literal(name)}, {_literal(due_at.isoformat())}, {_literal(on_expiry)},"
                f" {_literal(rule_id)}, {_literal(policy)}, 'pending')"
                " ON CONFLICT (bucket, subject_type, subject_id)"
                " WHERE status = 'pending' DO UPDATE SET name = excluded.name,"
                " due_at = excluded.due_at, on_expiry = excluded.on_expiry,"
                " rule_id = excluded.rule_id, policy = excluded.policy;"
            )
    lines += ["\\endif", "COMMIT;", ""]
    return "\n".join(lines)


def pgbench_firing(event_data: str, now: datetime) -> str:
    """The minimal claim-and-fire for ``pgbench -M prepared``, one deadline a transaction:
    the claim returns the deadline's bucket, and the statements after it name it."""
    at = _literal(now.isoformat())
    return "\n".join(
        [
            "BEGIN;",
            f"WITH claimed AS (SELECT bucket, id FROM deadlines WHERE status = 'pending'"
            f" AND due_at <= {at} ORDER BY due_at, id LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED)"
            f" UPDATE deadlines SET status = 'fired', fired_at = {at}"
            " WHERE (bucket, id) IN (SELECT bucket, id FROM claimed)"
            " RETURNING subject_id AS sid, bucket AS b \\gset",
            "SELECT CAST(state AS TEXT) AS state, version AS v FROM cases"
            " WHERE bucket = :b AND id = :sid FOR NO KEY UPDATE \\gset",
            "UPDATE cases SET state = :state, version = version + 1, status = 'refunded',"
            f" updated_at = {at} WHERE bucket = :b AND id = :sid AND version = :v;",
            "INSERT INTO events (bucket, stream, stream_id, seq, type, at, actor, data)"
            " VALUES (:b, 'case', :sid, (SELECT coalesce(max(seq), 0) + 1 FROM events"
            " WHERE bucket = :b AND stream = 'case' AND stream_id = :sid), 'Refunded',"
            f" {at}, 'system', {_literal(event_data)});",
            "COMMIT;",
            "",
        ]
    )


# --- alone ---------------------------------------------------------------------------------


def main() -> None:
    parser = _common.arguments(__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--due", type=int, default=5000)
    args = parser.parse_args()
    _common.header("the floor, bare driver", args.db)
    with _common.fresh_database(args.db, args.url, "floor") as db:
        steps = template_steps(db)
        ids = case_ids(args.cases)
        conn = db.connect_raw()
        try:
            insert_cases(conn, args.db, ids, steps[0].state)
            _common.analyze(db)
            floor = Transitions(conn, args.db, steps, ids)
            seconds = 0.0
            for step in range(len(STEPS)):
                seconds += floor.run(step, 0, len(ids))
            print(f"transitions {len(ids) * len(STEPS) / seconds:10.0f}/s (4 statements each)")
            # The same cases, now refunded, are given a due deadline each and fired.
            due = min(args.due, len(ids))
            cur = conn.cursor()
            begin(conn, args.db)
            cur.executemany(
                sql(
                    "UPDATE deadlines SET due_at = %s WHERE bucket = %s AND subject_type = 'case'"
                    " AND subject_id = %s AND status = 'pending'",
                    args.db,
                ),
                [
                    (moment(T0 + timedelta(seconds=i), args.db), bucket(cid), cid)
                    for i, cid in enumerate(ids)
                ],
            )
            conn.commit()
            now = T0 + timedelta(days=30)
            data = firing_event(conn, args.db)
            half = due // 2
            one = Firing(conn, args.db, data, now).run(half, 1)
            batched = Firing(conn, args.db, data, now).run(due - half, 100)
            print(f"fire, one a commit {half / one:10.0f}/s")
            print(f"fire, 100 a commit {(due - half) / batched:10.0f}/s")
        finally:
            conn.close()


if __name__ == "__main__":
    main()
