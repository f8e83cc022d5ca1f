"""``shouhou db upgrade``: the database schema."""

from __future__ import annotations

import typer

from shouhou.cli.options import DbOption, db_url
from shouhou.cli.output import console

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate the schema to the newest version."""
    from shouhou.db import engine as db_engine

    sql = db_engine.create(db_url(db))
    db_engine.upgrade(sql)
    sql.dispose()
    console.print("schema is up to date")
