"""``shouhou demo``: a demo marketplace and a week of cases on the virtual clock."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shouhou.cli.output import console, fail


def demo(
    db: Annotated[Path, typer.Option(help="SQLite file for the demo marketplace.")] = Path(
        "var/demo.db"
    ),
    fresh: Annotated[bool, typer.Option(help="Start from an empty file.")] = False,
    days: Annotated[int, typer.Option(min=1, max=60, help="Days of new orders.")] = 7,
    settle_days: Annotated[
        int, typer.Option(min=0, max=90, help="Days the cases then run on without new orders.")
    ] = 21,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same week).")] = 7,
    orders_per_day: Annotated[int, typer.Option(min=1, max=2000, help="New orders a day.")] = 120,
) -> None:
    """Create a demo marketplace and run a realistic week of cases on the virtual clock."""
    from shouhou.sim.demo import run_demo

    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    elif db.exists():
        raise fail(f"{db} exists; pass --fresh to start over")
    run_demo(
        f"sqlite:///{db}",
        days=days,
        settle_days=settle_days,
        seed=seed,
        orders_per_day=orders_per_day,
        console=console,
    )
