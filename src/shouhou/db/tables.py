"""Core tables, in one place, with a naming convention for constraints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    or_,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive UTC where the database has no zones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"a timezone-aware datetime is required, got {value!r}")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Id = BigInteger().with_variant(Integer(), "sqlite")

orders = Table(
    "orders",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("id", String(64), primary_key=True),
    Column("shop", String(64), nullable=False, index=True),
    Column("buyer", String(64), nullable=False, index=True),
    Column("status", String(32), nullable=False),
    Column("state", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

cases = Table(
    "cases",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("id", String(64), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("shop", String(64), nullable=False, index=True),
    Column("buyer", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(32), nullable=False, index=True),
    Column("state", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_cases_bucket_order_id", "bucket", "order_id"),
)

events = Table(
    "events",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("stream", String(16), nullable=False),
    Column("stream_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(96), nullable=False),
    Column("data", JSON, nullable=False),
    UniqueConstraint("bucket", "stream", "stream_id", "seq"),
)

deadlines = Table(
    "deadlines",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subject_type", String(16), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("on_expiry", String(32), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("policy", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("fired_at", UTCDateTime, nullable=True),
    Column("error", Text, nullable=True),  # why a deadline was set aside as failed (0006)
    Index("ix_deadlines_status_due_at_id", "status", "due_at", "id"),  # claim order (SQLite)
    # a bucket's claim order (PostgreSQL claims one bucket per statement, 0011)
    Index("ix_deadlines_bucket_status_due_at_id", "bucket", "status", "due_at", "id").ddl_if(
        dialect="postgresql"  # SQLite claims across buckets (0013): the index is not made there
    ),
    # a subject's pending deadline: every lookup by subject asks for that one (0005)
    Index(
        "uq_deadlines_one_pending",
        "bucket",
        "subject_type",
        "subject_id",
        unique=True,
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)

# --- the REST API and webhooks -------------------------------------------------------------

outbox = Table(
    "outbox",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("subject_type", String(16), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("data", JSON, nullable=False),
    Column("dispatched_at", UTCDateTime, nullable=True, index=True),
    # the event feed's order: given once the event is committed, one transaction at a time
    Column("position", BigInteger, nullable=True),
    Index("uq_outbox_bucket_position", "bucket", "position", unique=True),
    Index(  # the events still to be given one: read by every sequencing, never the whole table
        "ix_outbox_unpositioned",
        "bucket",
        "id",
        sqlite_where=text("position IS NULL"),
        postgresql_where=text("position IS NULL"),
    ),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

#: A shop's settings (0008): its default return address, which the system agrees with when
#: the seller lets a return's deadline pass.
shops = Table(
    "shops",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("return_address", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: Evidence uploads counted per actor and marketplace day (0009), for the daily quota: a row
#: is made on an actor's first upload of a day and only ever counted up.
upload_quota = Table(
    "upload_quota",
    metadata,
    Column("actor", String(96), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("files", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
)

#: How far each JetStream stream has been published (0012, ``shouhou relay``): every event of
#: bucket ``bucket``'s feed up to ``position`` is in the stream ``stream``. One row per bucket
#: and stream, bucketed like the outbox (decision 0021); the relay moves a bucket's row on only
#: after the stream has acknowledged every event of that bucket up to there.
relay_cursors = Table(
    "relay_cursors",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("stream", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    # the bucket of the order or case the request names (0011)
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("scope", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, index=True),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("events", JSON, nullable=False),
    Column("description", String(200), nullable=False),
    Column("created_by", String(96), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("outbox_id", Id, nullable=False),
    Column("endpoint_id", String(32), ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_endpoint_id", "endpoint_id"),
    Index("ix_webhook_deliveries_bucket_outbox_id", "bucket", "outbox_id"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", Id, nullable=False),
    Column("number", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(500), nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_bucket_delivery_id", "bucket", "delivery_id"),
)

#: Deadlines whose ``deadline.approaching`` message was written (one per deadline row).
deadline_notices = Table(
    "deadline_notices",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("deadline_id", Id, primary_key=True, autoincrement=False),
    Column("sent_at", UTCDateTime, nullable=False),
)

complaints = Table(
    "complaints",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("id", String(64), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("shop", String(64), nullable=False, index=True),
    Column("buyer", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True),
    Column("state", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("filed_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("bucket", "order_id"),
)

#: Penalty points of shops and compensation of buyers; ``source`` makes each entry unique, so
#: no case or complaint is ever paid or penalised twice.
ledger = Table(
    "ledger",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account", String(96), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("amount", Integer, nullable=False),
    Column("unit", String(16), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("source", String(96), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    UniqueConstraint("bucket", "kind", "source"),
    Index("ix_ledger_account_kind_at", "account", "kind", "at"),
)


# --- buckets (0011) -------------------------------------------------------------------------

#: What the installation chose once and for all: ``buckets`` (how many) and ``partitions``
#: (0: plain tables; else every bucketed table is ``PARTITION BY HASH (bucket)`` in that many
#: partitions, on PostgreSQL). Written by migration 0011, read when an engine opens.
meta = Table(
    "shouhou_meta",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", String(64), nullable=False),
)

#: Case and complaint ids chosen by a caller (not made by the engine) that do not hash to
#: their order's bucket: kept in the bucket their own id hashes to, naming the bucket (``home``)
#: their rows live in (docs/decisions/0021-fixed-buckets.md).
routes = Table(
    "routes",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(16), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("home", Integer, nullable=False),
)

#: Each bucket's event feed: the last position given to its events. A giver of positions
#: locks its bucket's row until it commits, so that positions become visible in order.
feeds = Table(
    "feeds",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("position", BigInteger, nullable=False),
)

#: Locked by a process migrating a PostgreSQL database, so that processes starting together
#: migrate in turns (``shouhou.db.engine.upgrade``); holds no rows.
migration_lock = Table("shouhou_migration_lock", metadata, Column("id", Integer))

#: The tables that hold an order's data, each with a ``bucket`` column in every key; on a
#: partitioned installation each is ``PARTITION BY HASH (bucket)``. The others (API keys,
#: shops, webhook endpoints, the upload quota, the meta table) are reference tables.
BUCKETED = (
    "orders",
    "cases",
    "complaints",
    "events",
    "deadlines",
    "deadline_notices",
    "outbox",
    "webhook_deliveries",
    "webhook_attempts",
    "ledger",
    "idempotency_keys",
    "routes",
    "feeds",
    "relay_cursors",
)


def keyset_after(sort_col: Any, id_col: Any, after: tuple[datetime, str] | None) -> Any:
    """The condition for the rows after ``after`` (a sort value and an id) in ``(sort_col,
    id_col)`` order: keyset paging for the lists. None without ``after``."""
    if after is None:
        return None
    at, last_id = after
    return or_(sort_col > at, and_(sort_col == at, id_col > last_id))
