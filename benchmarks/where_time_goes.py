"""Where a benchmark's time goes: our side split into the driver, JSON, the unit of work's
shell and the rest of the Python, against the raw replay of the same statements.

Runs ``transitions.py`` or ``firing.py`` under py-spy (sampling, real time, ``--rate`` per
second) and sorts every sample of our side by what it was doing:

- **driver**: inside the same sqlite3/psycopg calls the raw replay makes (a statement, the
  transaction's ``BEGIN IMMEDIATE``, the commit);
- **json**: serializing or parsing snapshots, events and outbox rows (``db/serial.py``, the
  outbox's text);
- **shell**: opening, committing and closing the unit of work around the statements
  (SQLAlchemy's connection and transaction, the connection keeper, the cursor);
- **python**: everything else of ours (domain, services, rulebook, storage glue);
- **recording**: the benchmark's own recording of statements.

It then prints the ratio the samples give (close to the benchmark's own, as py-spy slows
both sides alike) and the bounds: the ratio if JSON cost nothing, if the shell cost nothing
too, and if nothing but the driver calls were left. A bound below 0.50 means no tuning of
what it leaves out can reach the target on this machine. SQLite only: on PostgreSQL the
driver waits on the server, which sampling cannot tell from work.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/where_time_goes.py transitions
    .venv/bin/python benchmarks/where_time_goes.py firing --pending 100000
"""

from __future__ import annotations

import argparse
import collections
import inspect
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import _common

HERE = Path(__file__).resolve().parent
#: The frame every sample of our side passes through, by benchmark.
OURS = {
    "transitions": "Engine.execute (shouhou/bootstrap.py",
    "firing": "run_due (shouhou/services/deadlines.py",
}
JSON = (
    "(shouhou/db/serial.py",
    "SqlOutbox._data (shouhou/db/outbox.py",
)
SHELL = (
    "SqlUnitOfWork.__enter__ (",
    "SqlUnitOfWork.__exit__ (",
    "ConnectionKeeper.",
    "Connection.begin (sqlalchemy",
    "Connection.commit (sqlalchemy",
    "Cursor.close (shouhou/db/cursor.py",
)
_LINE = re.compile(r"^(.*) \((.+):(\d+)\)$")


def _driver_lines() -> set[tuple[str, int]]:
    """The lines of ``_common.py`` where the recording cursor calls the driver."""
    lines = set()
    for method in (_common._RecordingCursor.execute, _common._RecordingCursor.executemany):
        source, first = inspect.getsourcelines(method)
        for offset, text in enumerate(source):
            if "return self._cursor." in text:
                lines.add(("_common.py", first + offset))
    return lines


def split(profile: Path, anchor: str) -> tuple[collections.Counter[str], int]:
    """Our samples by kind, and the raw replay's samples."""
    driver_lines = _driver_lines()
    ours: collections.Counter[str] = collections.Counter()
    raw = 0
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(f.startswith("replay (_common.py") for f in frames):
            raw += int(count)
            continue
        if not any(anchor in f for f in frames):
            continue
        ours[_kind(frames, driver_lines)] += int(count)
    return ours, raw


def _kind(frames: list[str], driver_lines: set[tuple[str, int]]) -> str:
    leaf = _LINE.match(frames[-1])
    if leaf is not None:
        function, path, line = leaf.group(1), leaf.group(2), int(leaf.group(3))
        if (Path(path).name, line) in driver_lines:
            return "driver"
        if function in ("DefaultDialect.do_commit", "_sqlite.<locals>._on_begin"):
            return "driver"
    if any(marker in f for f in frames for marker in JSON):
        return "json"
    if any(marker in f for f in frames for marker in SHELL):
        return "shell"
    if frames[-1].endswith(")") and "(_common.py:" in frames[-1]:
        return "recording"
    return "python"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=sorted(OURS))
    parser.add_argument("--rate", type=int, default=500, help="samples per second")
    parser.add_argument("--pending", type=int, default=100_000, help="firing: pending deadlines")
    parser.add_argument("--cases", type=int, default=2000, help="transitions: cases")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install -e '.[bench]'")
    script = [sys.executable, str(HERE / f"{args.benchmark}.py"), "--db", "sqlite"]
    script += (
        ["--pending", str(args.pending)]
        if args.benchmark == "firing"
        else ["--cases", str(args.cases)]
    )
    _common.header(f"where the time of {args.benchmark}.py goes", "sqlite")
    with tempfile.TemporaryDirectory() as folder:
        profile = Path(folder) / "profile.txt"
        command = [spy, "record", "--rate", str(args.rate), "--format", "raw"]
        command += ["--output", str(profile), "--", *script]
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        if run.returncode != 0 or not profile.exists():
            raise SystemExit(f"py-spy failed ({run.returncode}):\n{run.stderr}")
        for line in run.stdout.splitlines():  # the benchmark's own table, not py-spy's
            if not line.startswith("py-spy>"):
                print(line)
        ours, raw = split(profile, OURS[args.benchmark])
    total = sum(ours.values())
    if not total or not raw:
        raise SystemExit("no samples of one side: is the benchmark still shaped as this expects?")
    for kind in ("driver", "json", "shell", "python", "recording"):
        print(f"ours: {kind:<10} {ours[kind]:>7} samples  {100 * ours[kind] / total:5.1f} %")
    print(f"raw replay: {raw:>11} samples")
    free_json = total - ours["json"]
    free_shell = free_json - ours["shell"] - ours["recording"]
    print(f"ratio by samples                     {raw / total:5.2f}")
    print(f"bound, if JSON cost nothing          {raw / free_json:5.2f}")
    print(f"bound, if the shell cost nothing too {raw / free_shell:5.2f}")
    print(f"bound, if only the driver calls were left {raw / max(1, ours['driver']):5.2f}")


if __name__ == "__main__":
    main()
