"""The sorting of py-spy samples behind ``benchmarks/where_time_goes.py`` (its bounds are only
as good as the sorting)."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def where() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("where_time_goes")
    finally:
        sys.path.remove(str(BENCHMARKS))


def _driver_line(where: ModuleType) -> int:
    source, first = inspect.getsourcelines(where._common._RecordingCursor.execute)
    return first + next(i for i, text in enumerate(source) if "return self._cursor." in text)


def test_samples_sorted_by_what_they_were_doing(where: ModuleType, tmp_path: Path) -> None:
    top = "<module> (transitions.py:130);Engine.execute (shouhou/bootstrap.py:178)"
    driver = _driver_line(where)
    profile = tmp_path / "profile.txt"
    profile.write_text(
        "\n".join(
            [
                f"{top};_Cursor.run (shouhou/db/uow.py:240);"
                f"_RecordingCursor.execute (_common.py:{driver}) 7",
                f"{top};_RecordingCursor.execute (_common.py:{driver - 1}) 1",
                f"{top};SqlUnitOfWork.commit (shouhou/db/uow.py:680);"
                "Connection.commit (sqlalchemy/engine/base.py:1);"
                "DefaultDialect.do_commit (sqlalchemy/engine/default.py:2) 5",
                f"{top};SqlUnitOfWork.__enter__ (shouhou/db/uow.py:650);"
                "Connection.begin (sqlalchemy/engine/base.py:3) 2",
                f"{top};_Aggregates.save (shouhou/db/uow.py:330);"
                "dump_json (shouhou/db/serial.py:44) 3",
                f"{top};step (shouhou/domain/cases.py:90) 4",
                "<module> (transitions.py:130);replay (_common.py:236) 9",
                "<module> (transitions.py:120);place_orders (transitions.py:50) 100",
            ]
        )
        + "\n"
    )
    ours, raw = where.split(profile, where.OURS["transitions"])
    assert raw == 9
    assert dict(ours) == {"driver": 12, "recording": 1, "shell": 2, "json": 3, "python": 4}
