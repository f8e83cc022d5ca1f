"""The storage layer's SQL statements, each findable by its name.

Two kinds. The statements every transition runs (load, save, append events, sync and fire
deadlines, claim) are plain SQL text, keyed by name in :data:`STATEMENTS` (and the held rows'
statements, :data:`HELD_SQLITE` and :data:`HELD_POSTGRESQL`):
:class:`shouhou.db.cursor.Dialect` writes them once per database and the unit of work's cursor
runs them on the driver, since building and compiling a Core statement costs ten to a hundred
times what SQLite needs to run it (docs/performance.md). The rest, off the hot path, are
SQLAlchemy Core statements made by the functions below, one per statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    Delete,
    Insert,
    Integer,
    Select,
    String,
    TextClause,
    Update,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from shouhou.db import tables

# --- the hot path: plain SQL -------------------------------------------------------------
# Written with :name placeholders; PostgreSQL gets %(name)s. {state} reads a JSON column as
# text, {lock} locks the row of a writing unit of work on PostgreSQL.

STATEMENTS = {
    "get_order": "SELECT {state}, version FROM orders WHERE bucket = :bucket AND id = :id{lock}",
    # a case with its order: the order is what a change of the case reads next (and, on
    # PostgreSQL, the lock of everything of the order)
    # (the storage contract keeps a case whose order is missing: no order, no row of it)
    "get_case": (
        "SELECT {c_state}, c.version, o.id, {o_state}, o.version FROM cases AS c"
        " {join_o} WHERE c.bucket = :bucket AND c.id = :id"
    ),
    "get_complaint": (
        "SELECT {state}, version FROM complaints WHERE bucket = :bucket AND id = :id"
    ),
    "complaint_for_order": (
        "SELECT {state}, version, id FROM complaints WHERE bucket = :bucket"
        " AND order_id = :order_id"
    ),
    "case_exists": "SELECT 1 FROM cases WHERE bucket = :bucket AND id = :id",
    "complaint_exists": "SELECT 1 FROM complaints WHERE bucket = :bucket AND id = :id",
    "get_route": "SELECT home FROM routes WHERE bucket = :bucket AND kind = :kind AND id = :id",
    "add_route": (
        "INSERT INTO routes (bucket, kind, id, home) VALUES (:bucket, :kind, :id, :home)"
    ),
    "insert_order": (
        "INSERT INTO orders (bucket, id, shop, buyer, status, state, version, created_at,"
        " updated_at) VALUES (:bucket, :id, :shop, :buyer, :status, :state, 1, :created_at,"
        " :updated_at)"
    ),
    # refused (no row) when a route of the same id is kept in the bucket, and by the primary
    # key when the bucket holds a case of that id: no read first
    "insert_case": (
        "INSERT INTO cases (bucket, id, order_id, shop, buyer, kind, status, state, version,"
        " opened_at, updated_at) SELECT CAST(:bucket AS INTEGER), CAST(:id AS VARCHAR(64)),"
        " :order_id, :shop, :buyer, :kind, :status, {state_in}, 1, :opened_at, :updated_at"
        " WHERE NOT EXISTS (SELECT 1 FROM routes WHERE bucket = CAST(:bucket AS INTEGER)"
        " AND kind = 'case' AND id = CAST(:id AS VARCHAR(64)))"
    ),
    "insert_complaint": (
        "INSERT INTO complaints (bucket, id, order_id, shop, buyer, status, state, version,"
        " filed_at, updated_at) VALUES (:bucket, :id, :order_id, :shop, :buyer, :status,"
        " :state, 1, :filed_at, :updated_at)"
    ),
    "save_order": (
        "UPDATE orders SET state = :state, version = :version + 1, status = :status,"
        " updated_at = coalesce(:updated_at, updated_at)"
        " WHERE bucket = :bucket AND id = :id AND version = :version"
    ),
    "save_case": (
        "UPDATE cases SET state = :state, version = :version + 1, status = :status,"
        " kind = :kind, updated_at = coalesce(:updated_at, updated_at)"
        " WHERE bucket = :bucket AND id = :id AND version = :version"
    ),
    "save_complaint": (
        "UPDATE complaints SET state = :state, version = :version + 1, status = :status,"
        " updated_at = coalesce(:updated_at, updated_at)"
        " WHERE bucket = :bucket AND id = :id AND version = :version"
    ),
    "timeline": (
        "SELECT seq, type, {data} FROM events WHERE bucket = :bucket AND stream = :stream"
        " AND stream_id = :stream_id ORDER BY seq"
    ),
    "pending": (
        "SELECT id, name, due_at, rule_id FROM deadlines WHERE bucket = :bucket"
        " AND subject_type = :subject_type AND subject_id = :subject_id AND status = 'pending'"
    ),
    "cancel": (
        "UPDATE deadlines SET status = 'cancelled' WHERE bucket = :bucket"
        " AND subject_type = :subject_type AND subject_id = :subject_id AND status = 'pending'"
    ),
    # PostgreSQL: the pending deadline cancelled and the next one scheduled in one statement
    # (the INSERT reads the UPDATE's count, so it runs after it; one row, or none when
    # nothing was pending)
    "reschedule": (
        "WITH cancelled AS (UPDATE deadlines SET status = 'cancelled' WHERE bucket = :bucket"
        " AND subject_type = :subject_type AND subject_id = :subject_id"
        " AND status = 'pending' RETURNING 1)"
        " INSERT INTO deadlines (bucket, subject_type, subject_id, name, due_at, on_expiry,"
        " rule_id, policy, status) SELECT :bucket, :subject_type, :subject_id, :name,"
        " :due_at, :on_expiry, :rule_id, :policy, 'pending'"
        " WHERE (SELECT count(*) FROM cancelled) = 1"
    ),
    "schedule": (
        "INSERT INTO deadlines (bucket, subject_type, subject_id, name, due_at, on_expiry,"
        " rule_id, policy, status) VALUES (:bucket, :subject_type, :subject_id, :name,"
        " :due_at, :on_expiry, :rule_id, :policy, 'pending')"
    ),
    "fire": (
        "UPDATE deadlines SET status = 'fired', fired_at = :fired_at"
        " WHERE bucket = :bucket AND subject_type = :subject_type AND subject_id = :subject_id"
        " AND status = 'pending' AND name = :name AND due_at = :due_at"
    ),
    "set_aside": (
        "UPDATE deadlines SET status = 'failed', error = :error"
        " WHERE bucket = :bucket AND id = :id AND status = 'pending'"
    ),
    # SQLite: one writer at a time, so the claim reads every bucket at once, in due order
    "next_due": (
        "SELECT id, subject_type, subject_id, name, due_at, bucket FROM deadlines"
        " WHERE status = 'pending' AND due_at <= :now ORDER BY due_at, id LIMIT :limit"
    ),
    # The buckets of the oldest due deadlines (a read that locks nothing): where a worker
    # claims, the first of them in its walk; none: nothing is due.
    "due_buckets": (
        "SELECT DISTINCT bucket FROM (SELECT bucket FROM deadlines WHERE status = 'pending'"
        " AND due_at <= :now ORDER BY due_at LIMIT :scan) AS due"
    ),
}

#: SQLite: the events or outbox rows a unit of work held, inserted at once (``?1`` the
#: bucket, ``?2`` the bucket count; the rows' ``VALUES`` follow, numbered on). The ``SELECT``
#: reads the table it inserts into, so SQLite computes every row before inserting any: each
#: event is numbered on from its stream's last stored number by its place among the held
#: ones, and each outbox id from the largest stored one by its place in the statement.
HELD_SQLITE = {
    "append": (
        "INSERT INTO events (bucket, stream, stream_id, seq, type, at, actor, data)"
        " SELECT ?1, v.column1, v.column2, (SELECT coalesce(max(e.seq), 0) FROM events AS e"
        " WHERE e.bucket = ?1 AND e.stream = v.column1 AND e.stream_id = v.column2)"
        " + v.column3, v.column4, v.column5, v.column6, v.column7 FROM (VALUES "
    ),
    "outbox": (
        "INSERT INTO outbox (id, bucket, type, subject_type, subject_id, occurred_at, data)"
        " SELECT (coalesce((SELECT max(id) FROM outbox), 0) / ?2 + v.column1) * ?2 + ?1, ?1,"
        " v.column2, v.column3, v.column4, v.column5, v.column6 FROM (VALUES "
    ),
}

#: PostgreSQL: the held rows of one bucket in one statement whose text never changes, however
#: many rows: each table's rows are one JSON array parameter, turned back into rows by
#: ``json_to_recordset``. A statement of fixed text and few parameters is parsed once by
#: psycopg and prepared once by the server; one with a ``VALUES`` row per held row was
#: neither (over 50 parameters), and column arrays through ``unnest`` were slower still
#: (docs/performance.md). Parameters: the bucket twice and the events; the bucket count, the
#: bucket twice and the outbox rows (each with its place, ``n``).
_HELD_APPEND_POSTGRESQL = (
    "INSERT INTO events (bucket, stream, stream_id, seq, type, at, actor, data)"
    " SELECT CAST(%s AS INTEGER), v.stream, v.stream_id, (SELECT coalesce(max(e.seq), 0)"
    " FROM events AS e WHERE e.bucket = CAST(%s AS INTEGER) AND e.stream = v.stream"
    " AND e.stream_id = v.stream_id) + v.n, v.type, v.at, v.actor, v.data"
    " FROM json_to_recordset(CAST(%s AS JSON)) AS v (stream VARCHAR(16), stream_id VARCHAR(64),"
    " n INTEGER, type VARCHAR(64), at TIMESTAMP WITH TIME ZONE, actor VARCHAR(96), data JSON)"
)
_HELD_OUTBOX_POSTGRESQL = (
    "INSERT INTO outbox (id, bucket, type, subject_type, subject_id, occurred_at, data)"
    " SELECT nextval('outbox_id_seq') * CAST(%s AS BIGINT) + CAST(%s AS INTEGER),"
    " CAST(%s AS INTEGER), m.type, m.subject_type, m.subject_id, m.occurred_at, m.data"
    " FROM json_to_recordset(CAST(%s AS JSON)) AS m (n INTEGER, type VARCHAR(64),"
    " subject_type VARCHAR(16), subject_id VARCHAR(64), occurred_at TIMESTAMP WITH TIME ZONE,"
    " data JSON) ORDER BY m.n"
)
HELD_POSTGRESQL = {
    (True, False): _HELD_APPEND_POSTGRESQL,
    (False, True): _HELD_OUTBOX_POSTGRESQL,
    (True, True): f"WITH held AS ({_HELD_APPEND_POSTGRESQL}) {_HELD_OUTBOX_POSTGRESQL}",
}


#: A claimed batch's cases, each with its order, read at once: the unit of work that fires
#: them takes each from the cursor instead of reading it (``Cursor.preloaded``). SQLite: the
#: (bucket, id) pairs as a JSON array (a claim there spans buckets); PostgreSQL: one bucket's
#: ids as an array (a claim there takes one bucket).
PREFETCH_CASES_SQLITE = (
    "SELECT c.id, c.state, c.version, o.id, o.state, o.version, c.bucket"
    " FROM json_each(:keys) AS j JOIN cases AS c ON c.bucket = json_extract(j.value, '$[0]')"
    " AND c.id = json_extract(j.value, '$[1]')"
    " LEFT JOIN orders AS o ON o.bucket = c.bucket AND o.id = c.order_id"
)
PREFETCH_CASES_POSTGRESQL = (
    "SELECT c.id, CAST(c.state AS TEXT), c.version, o.id, CAST(o.state AS TEXT), o.version,"
    " c.bucket FROM cases AS c"
    " LEFT JOIN orders AS o ON o.bucket = :bucket AND o.id = c.order_id"
    " WHERE c.bucket = :bucket AND c.id = ANY(:ids)"
)
PREFETCH_ORDERS_SQLITE = (
    "SELECT o.id, o.state, o.version, o.bucket FROM json_each(:keys) AS j"
    " JOIN orders AS o ON o.bucket = json_extract(j.value, '$[0]')"
    " AND o.id = json_extract(j.value, '$[1]')"
)
PREFETCH_ORDERS_POSTGRESQL = (
    "SELECT id, CAST(state AS TEXT), version, bucket FROM orders"
    " WHERE bucket = :bucket AND id = ANY(:ids)"
)

#: On PostgreSQL a worker claims, in one bucket, the earliest due deadline whose order nobody
#: holds, and locks both; a deadline whose subject row is missing is never claimed.
CLAIM_POSTGRESQL = """
SELECT d.id, d.subject_type, d.subject_id, d.name, d.due_at, d.bucket
FROM deadlines AS d
LEFT JOIN cases AS c
  ON d.subject_type = 'case' AND c.bucket = d.bucket AND c.id = d.subject_id
JOIN orders AS o
  ON o.bucket = d.bucket
  AND o.id = CASE WHEN d.subject_type = 'order' THEN d.subject_id ELSE c.order_id END
WHERE d.bucket = :bucket AND d.status = 'pending' AND d.due_at <= :now
ORDER BY d.due_at, d.id
LIMIT :limit
FOR NO KEY UPDATE OF d, o SKIP LOCKED
"""

#: The services never leave a deadline without its subject; should one exist, the claim
#: above passes over it, and this one still hands it out, so that the error surfaces.
CLAIM_ORPHAN_POSTGRESQL = """
SELECT d.id, d.subject_type, d.subject_id, d.name, d.due_at, d.bucket
FROM deadlines AS d
WHERE d.bucket = :bucket AND d.status = 'pending' AND d.due_at <= :now
  AND NOT EXISTS (SELECT 1 FROM orders AS o
                  WHERE d.subject_type = 'order' AND o.bucket = d.bucket AND o.id = d.subject_id)
  AND NOT EXISTS (SELECT 1 FROM cases AS c
                  WHERE d.subject_type = 'case' AND c.bucket = d.bucket AND c.id = d.subject_id)
ORDER BY d.due_at, d.id
LIMIT :limit
FOR NO KEY UPDATE OF d SKIP LOCKED
"""


# --- off the hot path: SQLAlchemy Core -----------------------------------------------------

_C, _E, _L, _S = tables.complaints, tables.events, tables.ledger, tables.shops


def list_cases(
    *,
    bucket: int | None = None,
    order: str | None,
    shop: str | None,
    buyer: str | None,
    status: str | None,
    limit: int,
) -> Select[Any]:
    """Case snapshots and versions matching every filter given, oldest first."""
    t = tables.cases
    query = select(t.c.state, t.c.version)
    if bucket is not None:
        query = query.where(t.c.bucket == bucket)
    for column, value in ((t.c.order_id, order), (t.c.shop, shop), (t.c.buyer, buyer)):
        if value is not None:
            query = query.where(column == value)
    if status is not None:
        query = query.where(t.c.status == status)
    return query.order_by(t.c.opened_at, t.c.id).limit(limit)


def list_complaints(
    *,
    shop: str | None,
    buyer: str | None,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Select[Any]:
    """Complaint snapshots and versions matching every filter given, after ``after`` (a
    filing time and an id), oldest first."""
    query = select(_C.c.state, _C.c.version)
    for column, value in ((_C.c.shop, shop), (_C.c.buyer, buyer), (_C.c.status, status)):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        query = query.where(tables.keyset_after(_C.c.filed_at, _C.c.id, after))
    return query.order_by(_C.c.filed_at, _C.c.id).limit(limit)


def pending_deadlines_count() -> Select[Any]:
    """How many deadlines are pending."""
    t = tables.deadlines
    return select(func.count()).select_from(t).where(t.c.status == "pending")


def due_deadlines_backlog(now: datetime) -> Select[Any]:
    """How many pending deadlines are due at ``now``, and the earliest due time among them."""
    t = tables.deadlines
    due = and_(t.c.status == "pending", t.c.due_at <= now)
    return select(func.count(), func.min(t.c.due_at)).select_from(t).where(due)


def add_ledger_entry(values: Mapping[str, Any]) -> Insert:
    """One ledger line; ``(kind, source)`` is unique."""
    return insert(_L).values(**values)


def ledger_entries(account: str, kind: str | None, columns: list[str]) -> Select[Any]:
    """``columns`` of ``account``'s ledger lines (of ``kind`` if given), in time order."""
    query = select(*(_L.c[name] for name in columns)).where(_L.c.account == account)
    if kind is not None:
        query = query.where(_L.c.kind == kind)
    return query.order_by(_L.c.at, _L.c.id)


def shop_events(shop: str, since: datetime, until: datetime) -> Select[Any]:
    """The events between the times on ``shop``'s orders, cases and complaints, in order."""
    cases, orders = tables.cases, tables.orders
    streams = or_(
        and_(
            _E.c.stream == "case",
            _E.c.stream_id.in_(select(cases.c.id).where(cases.c.shop == shop)),
        ),
        and_(
            _E.c.stream == "order",
            _E.c.stream_id.in_(select(orders.c.id).where(orders.c.shop == shop)),
        ),
        and_(
            _E.c.stream == "complaint",
            _E.c.stream_id.in_(select(_C.c.id).where(_C.c.shop == shop)),
        ),
    )
    return (
        select(_E.c.stream, _E.c.stream_id, _E.c.type, _E.c.data)
        .where(streams, _E.c.at >= since, _E.c.at <= until)
        .order_by(_E.c.at, _E.c.id)
    )


def shop_return_address(shop: str) -> Select[Any]:
    """The shop's return address (no row: the shop never set one)."""
    return select(_S.c.return_address).where(_S.c.id == shop)


def set_shop_return_address(shop: str, address: str | None, at: datetime) -> Update:
    """Change the return address of a shop that has a row."""
    return update(_S).where(_S.c.id == shop).values(return_address=address, updated_at=at)


def add_shop(shop: str, address: str | None, at: datetime) -> Insert:
    """The first row of a shop's settings."""
    return insert(_S).values(id=shop, return_address=address, updated_at=at)


# --- API keys ------------------------------------------------------------------------------

_K = tables.api_keys


def add_key(values: Mapping[str, Any]) -> Insert:
    """One API key row (its secret only as a hash)."""
    return insert(_K).values(**values)


def key_by_hash(token_hash: str) -> Select[Any]:
    """The key whose secret hashes to ``token_hash``."""
    return select(_K).where(_K.c.hash == token_hash)


def all_keys() -> Select[Any]:
    """Every key, oldest first."""
    return select(_K).order_by(_K.c.created_at, _K.c.id)


def revoke_key(key_id: str, at: datetime) -> Update:
    """Revoke a key not revoked yet."""
    return update(_K).where(_K.c.id == key_id, _K.c.revoked_at.is_(None)).values(revoked_at=at)


# --- the API's lists -----------------------------------------------------------------------


def listed_cases() -> Select[Any]:
    """Cases with their order and their pending deadline's due time, to be filtered."""
    c, d, o = tables.cases, tables.deadlines, tables.orders
    pending = and_(
        d.c.bucket == c.c.bucket,
        d.c.subject_type == "case",
        d.c.subject_id == c.c.id,
        d.c.status == "pending",
    )
    return select(
        c.c.state,
        c.c.version,
        c.c.opened_at,
        c.c.id,
        d.c.due_at,
        o.c.state.label("order_state"),
        o.c.version.label("order_version"),
    ).select_from(
        c.join(o, and_(o.c.bucket == c.c.bucket, o.c.id == c.c.order_id)).outerjoin(d, pending)
    )


def listed_orders() -> Select[Any]:
    """Order snapshots with their keyset columns, to be filtered."""
    o = tables.orders
    return select(o.c.state, o.c.version, o.c.created_at, o.c.id)


# --- retention -----------------------------------------------------------------------------


def _newest(column: Any) -> Any:
    """The largest value of ``column`` in its table. Retention never forgets that row: SQLite
    gives a new row the largest id plus one (its tables have no AUTOINCREMENT; outbox and
    delivery ids are the next block of ``buckets`` after the largest), so deleting the newest
    rows would hand their ids out again, to events a subscriber has seen the ids of
    (``webhook-id``). Feed positions come from ``feeds``, which never goes back."""
    return select(func.max(column)).correlate(None).scalar_subquery()  # the whole table's


def old_deadlines(before: datetime, limit: int) -> Select[Any]:
    """Ids of fired or cancelled deadlines due before ``before``, any ``limit`` of them."""
    d = tables.deadlines
    # No order: any chunk will do, and without one each status's range of the claim index
    # is read only as far as the chunk needs, not sorted whole.
    return (
        select(d.c.id)
        .where(d.c.status.in_(["fired", "cancelled"]), d.c.due_at < before)
        .limit(limit)
    )


def forget_deadlines(ids: Sequence[int]) -> tuple[Delete, Delete]:
    """Delete the deadlines ``ids`` and, first, their approaching notices."""
    d, n = tables.deadlines, tables.deadline_notices
    return delete(n).where(n.c.deadline_id.in_(ids)), delete(d).where(d.c.id.in_(ids))


def old_events(before: datetime, limit: int) -> Select[Any]:
    """Ids of outbox events fanned out before ``before`` that every endpoint has received."""
    o, d = tables.outbox, tables.webhook_deliveries
    done = d.alias("done")
    replayed = select(done.c.id).where(
        done.c.bucket == d.c.bucket,
        done.c.outbox_id == d.c.outbox_id,
        done.c.endpoint_id == d.c.endpoint_id,
        done.c.status == "delivered",
    )
    # an event waits for each endpoint it has not reached yet (a successful replay
    # reaches it), and the newest delivery stays, so that SQLite never hands its id out
    # again
    kept = select(d.c.id).where(
        d.c.bucket == o.c.bucket,
        d.c.outbox_id == o.c.id,
        or_(and_(d.c.status != "delivered", ~replayed.exists()), d.c.id == _newest(d.c.id)),
    )
    return (
        select(o.c.id)
        .where(
            o.c.dispatched_at < before,
            o.c.id < _newest(o.c.id),
            # (feed positions need no row kept: ``feeds`` holds each bucket's last one)
            ~kept.exists(),
        )
        .order_by(o.c.id)
        .limit(limit)
    )


def forget_events(ids: Sequence[int]) -> tuple[Delete, Delete, Delete]:
    """Delete the events ``ids``, after their deliveries' attempts and their deliveries."""
    o, d, a = tables.outbox, tables.webhook_deliveries, tables.webhook_attempts
    deliveries = select(d.c.id).where(d.c.outbox_id.in_(ids))
    return (
        delete(a).where(a.c.delivery_id.in_(deliveries)),
        delete(d).where(d.c.outbox_id.in_(ids)),
        delete(o).where(o.c.id.in_(ids)),
    )


# --- the evidence upload quota ------------------------------------------------------------

_ADD_UPLOAD_DAY = text(
    "INSERT INTO upload_quota (actor, day, files, bytes) VALUES (:actor, :day, 0, 0)"
    " ON CONFLICT (actor, day) DO NOTHING"
)


def add_upload_day(actor: str, day: date) -> TextClause:
    """``actor``'s row of ``day`` with nothing counted, unless it is there already (the same
    SQL on SQLite and PostgreSQL: two first uploads at once never collide)."""
    return _ADD_UPLOAD_DAY.bindparams(
        bindparam("actor", actor, type_=String), bindparam("day", day, type_=Date)
    )


def take_upload(actor: str, day: date, size: int, max_files: int, max_bytes: int) -> Update:
    """Count one file of ``size`` bytes on ``actor``'s row of ``day`` only while the counts
    stay within ``max_files`` and ``max_bytes``: one row updated, or none when over."""
    q = tables.upload_quota
    return (
        update(q)
        .where(
            q.c.actor == actor,
            q.c.day == day,
            q.c.files + 1 <= max_files,
            q.c.bytes + size <= max_bytes,
        )
        .values(files=q.c.files + 1, bytes=q.c.bytes + size)
    )


def upload_counts(actor: str, day: date) -> Select[Any]:
    """The files and bytes counted on ``actor``'s row of ``day``."""
    q = tables.upload_quota
    return select(q.c.files, q.c.bytes).where(q.c.actor == actor, q.c.day == day)


# --- the relay to NATS JetStream (0012) ---------------------------------------------------

_R = tables.relay_cursors
_ADD_RELAY_CURSOR = text(
    "INSERT INTO relay_cursors (bucket, stream, position, updated_at)"
    " VALUES (:bucket, :stream, 0, :at)"
    " ON CONFLICT (bucket, stream) DO NOTHING"
)


def relay_cursors(stream: str) -> Select[Any]:
    """Each bucket's feed position up to which ``stream`` holds every event of that bucket
    (no row: nothing yet). Reads every bucket, locks nothing."""
    return select(_R.c.bucket, _R.c.position).where(_R.c.stream == stream)


def add_relay_cursor(bucket: int, stream: str, at: datetime) -> TextClause:
    """``stream``'s cursor of ``bucket`` at 0, unless it is there already (two relays
    starting at once never collide)."""
    return _ADD_RELAY_CURSOR.bindparams(
        bindparam("bucket", bucket, type_=Integer),
        bindparam("stream", stream, type_=String),
        bindparam("at", at, type_=tables.UTCDateTime()),
    )


def move_relay_cursor(bucket: int, stream: str, to: int, at: datetime) -> Update:
    """Move ``stream``'s cursor of ``bucket`` on to ``to``; never back (a slower relay's
    batch)."""
    return (
        update(_R)
        .where(_R.c.bucket == bucket, _R.c.stream == stream, _R.c.position < to)
        .values(position=to, updated_at=at)
    )
