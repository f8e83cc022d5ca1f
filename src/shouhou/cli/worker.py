"""``shouhou worker``: fire due deadlines and deliver webhooks, forever or once."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shouhou.cli.options import DbOption, KeepDaysOption, PolicyOption, db_url, keep, rulebooks

if TYPE_CHECKING:
    from shouhou.worker import Tick

#: What ``worker --once`` says it did, on stderr (stdout keeps one JSON line per deadline).
DID = (
    "worker: {fired} deadline(s) fired, {set_aside} set aside, "
    "{delivered} delivery(ies) sent, {failed} failed, {purged} row(s) forgotten"
)


def said(tick: Tick) -> str:
    """One line saying what a pass did."""
    return DID.format(
        fired=len(tick.fired),
        set_aside=len(tick.set_aside),
        delivered=tick.delivered,
        failed=tick.failed_attempts,
        purged=tick.purged,
    )


def worker(
    db: DbOption = None,
    once: Annotated[bool, typer.Option(help="Fire what is due now, then stop.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 1.0,
    keep_days: KeepDaysOption = 30,
    policy: PolicyOption = None,
) -> None:
    """Fire due deadlines (exactly once, in due order) and deliver webhooks, forever or once.

    A pass that fails (the database restarting, say) rolls back, is reported on stderr and is
    tried again after the interval; with --once the command fails instead. Once an hour it
    forgets what is older than --keep-days (events with a failed delivery are kept).
    """
    from shouhou.bootstrap import Engine
    from shouhou.worker import Worker, WorkerSettings

    registry, selected = rulebooks(policy)  # the API's: deadlines fire by the same rules
    engine = Engine.open(db_url(db), registry=registry, policies=selected)

    def report(fired: Any) -> None:
        print(
            json.dumps(
                {
                    "fired": fired.name,
                    fired.subject_type: fired.subject_id,
                    "due_at": fired.due_at.isoformat(),
                    "status": fired.status,
                }
            ),
            flush=True,
        )

    runner = Worker(engine, keep(WorkerSettings(), keep_days), on_fired=report)
    try:
        while True:
            try:
                tick = runner.run_once()
            except Exception as exc:
                if once:
                    raise
                # The database restarting, a lock held too long: the pass rolled back, so
                # nothing is half done; the next pass takes it from the start.
                print(
                    f"worker pass failed ({type(exc).__name__}: {exc}); "
                    f"trying again in {interval:g}s",
                    file=sys.stderr,
                    flush=True,
                )
            if once:
                print(said(tick), file=sys.stderr, flush=True)
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        runner.close()
        engine.close()
