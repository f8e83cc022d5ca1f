"""``shouhou db upgrade``: the database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from shouhou.cli.options import DbOption, db_url
from shouhou.cli.output import console, fail
from shouhou.errors import Invalid

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)

#: What ``db upgrade`` says it did.
CREATED = "created the schema in {where}: revision {after}"
UPGRADED = "upgraded the schema in {where}: revision {before} → {after}"
CURRENT = "the schema in {where} is current: revision {after}"


BucketsOption = Annotated[
    int | None,
    typer.Option(
        "--buckets",
        min=1,
        help="A new database only: how many buckets its orders are hashed to (default 256). "
        "Chosen once; a database that has them keeps them.",
    ),
]
PartitionsOption = Annotated[
    int | None,
    typer.Option(
        "--partitions",
        min=0,
        help="A new PostgreSQL database only: make every bucketed table PARTITION BY HASH "
        "(bucket) in this many partitions (default 0: plain tables).",
    ),
]


@db_app.command("upgrade")
def db_upgrade(
    db: DbOption = None,
    buckets: BucketsOption = None,
    partitions: PartitionsOption = None,
) -> None:
    """Create or migrate the schema to the newest version; say which, with the revision."""
    from shouhou.db import engine as db_engine

    url = db_url(db)
    sql = db_engine.create(url)
    try:
        done = db_engine.upgrade(sql, buckets=buckets, partitions=partitions)
    except Invalid as exc:
        raise fail(exc.message, 2) from None
    finally:
        db_engine.dispose(sql)
    said = CREATED if done.before is None else UPGRADED if done.changed else CURRENT
    console.print(
        said.format(where=db_engine.where(url), before=done.before, after=done.after),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
