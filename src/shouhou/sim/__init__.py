"""Virtual time: scenario files and the simulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shouhou.bootstrap import Engine
    from shouhou.clock import VirtualClock
    from shouhou.services.deadlines import Fired
    from shouhou.services.ports import UnitOfWork


def move_clock(
    engine: Engine[UnitOfWork], clock: VirtualClock, to: datetime, on_fired: Callable[[Fired], None]
) -> None:
    """Fire every deadline due up to ``to``, each as of its due time, then set the clock there.

    Firing first is what keeps "an action at or after ``due_at`` comes after the deadline".
    """
    engine.run_due(to, on_fired=on_fired)
    clock.set(to)
