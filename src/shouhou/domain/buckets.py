"""Buckets: a fixed number of slices that every order's data belongs to.

A marketplace picks the number of buckets once, at install, and never changes it: an order's
bucket is ``crc32(order id) mod buckets``, so every row of an order, its cases, its events and
its deadlines, lands in the same bucket, and a store distributed by bucket (Citus, or PostgreSQL
partitions) finds all of an order's data on one node.
"""

from __future__ import annotations

from zlib import crc32

#: The number of buckets a new installation gets unless it asks for another.
DEFAULT_BUCKETS = 256


def bucket_of(order_id: str, buckets: int = DEFAULT_BUCKETS) -> int:
    """The bucket of an order: stable across processes, machines and Python versions."""
    if buckets <= 0:
        raise ValueError(f"the number of buckets must be above 0, not {buckets}")
    return crc32(order_id.encode("utf-8")) % buckets


def in_bucket(base: str, bucket: int, buckets: int = DEFAULT_BUCKETS) -> str:
    """``base`` followed by the first hex number that makes the id hash to ``bucket``: an id
    made this way names its bucket by itself (``bucket_of(id) == bucket``), so a case or a
    complaint found by its id alone is looked for in one bucket. About ``buckets`` tries."""
    if not 0 <= bucket < buckets:
        raise ValueError(f"bucket {bucket} is not one of the {buckets} buckets")
    head = crc32(base.encode("utf-8"))  # crc32 goes on from the base's: each try hashes the tail
    tail = 0
    while crc32(f"{tail:x}".encode("ascii"), head) % buckets != bucket:
        tail += 1
    return f"{base}{tail:x}"
