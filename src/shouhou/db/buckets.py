"""Which bucket a row goes to: the homes of the orders, cases and complaints a unit of work
meets, and the walk of a worker over the buckets (docs/decisions/0021-fixed-buckets.md).

An order's bucket is ``bucket_of(order id)``. A case or complaint lives in its order's bucket;
the engine makes their ids so that ``bucket_of(id)`` is that bucket too, so an id that travels
alone names its bucket. An id a caller chose may hash elsewhere: then a ``routes`` row, kept in
the bucket its id hashes to, names its home. Outbox event and delivery ids are ``n * buckets +
bucket``.
"""

from __future__ import annotations

import random
import threading

from shouhou.db.cursor import Cursor
from shouhou.domain.buckets import bucket_of
from shouhou.errors import Conflict

#: The subjects whose bucket is their order's: routes may name their home.
ROUTED = ("case", "complaint")


class Homes:
    """The bucket of each subject (``("case", id)``) this unit of work met or placed."""

    def __init__(self, cur: Cursor, buckets: int) -> None:
        self.cur = cur
        self.buckets = buckets
        self.known: dict[tuple[str, str], int] = {}

    def order(self, order_id: str) -> int:
        return bucket_of(order_id, self.buckets)

    def guess(self, kind: str, key: str) -> int:
        """Where to look first: the bucket met, or the one the id hashes to."""
        found = self.known.get((kind, key))
        return found if found is not None else bucket_of(key, self.buckets)

    def preload(self, kind: str, key: str, bucket: int, state: str, version: int) -> None:
        """Keep a row read with another one (an order with its case, a claimed batch) until
        its repository asks for it (``Cursor.preloaded``), and its bucket."""
        self.known[(kind, key)] = bucket
        self.cur.preloaded[(kind, key)] = (state, version)

    def route(self, kind: str, key: str) -> int | None:
        """The home a ``routes`` row names for a caller's id (None: there is none)."""
        if kind not in ROUTED:
            return None
        row = self.cur.one(
            "get_route", {"bucket": bucket_of(key, self.buckets), "kind": kind, "id": key}
        )
        return None if row is None else int(row[0])

    def of(self, kind: str, key: str) -> int:
        """The bucket of subject ``key``: met already, an order's, routed, or its id's."""
        found = self.known.get((kind, key))
        if found is not None:
            return found
        if kind == "order":
            found = self.order(key)
        else:
            found = self.route(kind, key)
            if found is None:
                found = bucket_of(key, self.buckets)
        self.known[(kind, key)] = found
        return found

    def place(self, kind: str, key: str, order_id: str, *, insert_checks: bool = False) -> int:
        """Put a new case or complaint in its order's bucket; a ``routes`` row names that
        bucket when the id hashes to another one (an id the caller chose). With
        ``insert_checks``, the caller's ``INSERT`` refuses an id routed from its own bucket,
        so an id that hashes to its order's bucket costs no read here."""
        home = self.order(order_id)
        own = bucket_of(key, self.buckets)
        # An id is one subject's: one kept in the bucket its id hashes to and one routed
        # elsewhere would both answer to it.
        if own == home:
            taken = not insert_checks and self.route(kind, key) is not None
        else:
            taken = self.cur.one(f"{kind}_exists", {"bucket": own, "id": key}) is not None
        if taken:
            raise Conflict(f"{kind} {key} already exists")
        if own != home:
            self.cur.run("add_route", {"bucket": own, "kind": kind, "id": key, "home": home})
        self.known[(kind, key)] = home
        return home


class Walk:
    """Where a process's next pass over the buckets starts: after the last bucket the previous
    pass took from, from a random first start. Each process walks from its own place, so that
    workers share the buckets, and a bucket with a backlog holds no pass for long."""

    def __init__(self, buckets: int) -> None:
        self.buckets = buckets
        self.start = random.randrange(buckets)
        self.lock = threading.Lock()

    def order(self) -> list[int]:
        """The buckets in this pass's order."""
        with self.lock:
            start = self.start
        return [(start + i) % self.buckets for i in range(self.buckets)]

    def took(self, bucket: int) -> None:
        """The pass took from ``bucket`` last: the next one starts after it."""
        with self.lock:
            self.start = (bucket + 1) % self.buckets
