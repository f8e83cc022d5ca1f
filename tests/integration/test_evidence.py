"""Evidence files and the agents' queue, on a real SQLite file and a real attachment folder."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.db.attachments import MAX_ATTACHMENT_BYTES, FileAttachmentStore
from shouhou.domain.model import Order
from shouhou.domain.values import SHANGHAI
from shouhou.errors import Invalid
from shouhou.testing import evidence_file

T0 = datetime(2023, 3, 1, 10, tzinfo=SHANGHAI)
PNG = evidence_file("image/png")
PDF = evidence_file("application/pdf")


def test_a_file_is_kept_once_under_its_content_hash_without_exec_bits(tmp_path: Path) -> None:
    store = FileAttachmentStore(tmp_path)
    first = store.put(PNG, "../../etc/photo.png")
    again = store.put(PNG, "other-name.png")
    assert first.sha256 == again.sha256
    assert first.media_type == "image/png" and first.filename == "photo.png"
    path = tmp_path / first.sha256[:2] / first.sha256
    assert path.read_bytes() == PNG
    assert not path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ""] == [first.sha256]
    assert store.get(first.sha256) == first


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"#!/bin/sh\nrm -rf /\n", "not an accepted type"),
        (b"MZ\x90\x00", "not an accepted type"),
        (b"%PDF-<html><script>alert(1)</script></html>", "does not parse"),
        (b"\x00\x00\x00\x18ftyp<svg onload=alert(1)>", "does not parse"),
        (b"", "empty"),
        (PNG + b"\x00" * MAX_ATTACHMENT_BYTES, "the limit is"),
    ],
    ids=["script", "executable", "html as pdf", "svg as mp4", "empty", "too large"],
)
def test_files_beyond_the_limits_are_refused_and_nothing_is_kept(
    tmp_path: Path, data: bytes, message: str
) -> None:
    store = FileAttachmentStore(tmp_path)
    with pytest.raises(Invalid, match=message):
        store.put(data, "evidence.png")
    assert not any(tmp_path.iterdir())


def test_a_guessed_or_traversing_name_finds_nothing(tmp_path: Path) -> None:
    store = FileAttachmentStore(tmp_path)
    store.put(PDF, "report.pdf")
    with pytest.raises(Invalid):
        store.get("../" + "a" * 61)
    assert store.get("0" * 64) is None


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    clock = VirtualClock(T0)
    eng = Engine.open(
        f"sqlite:///{tmp_path / 'shop.db'}",
        clock=clock,
        attachments=FileAttachmentStore(tmp_path / "files"),
    )
    eng.place_order(Order(id="o1", shop="s1", buyer="b1", total=19900, created_at=T0, paid_at=T0))
    return eng


def act(engine: Engine, action: str, actor: str, **params: object) -> object:
    target = {"case_id": "c1"}
    return engine.execute(engine.build(action, actor=actor, target=target, params=params))


def test_evidence_with_attachments_is_kept_on_the_case(engine: Engine) -> None:
    clock = engine.clock
    assert isinstance(clock, VirtualClock)
    try:
        act(
            engine,
            "apply",
            "buyer:b1",
            order="o1",
            kind="refund_only",
            reason="other",
            amount=19900,
        )
        act(engine, "refuse", "seller:s1", reason="no")
        act(engine, "request_intervention", "buyer:b1")
        photo = engine.attach(PNG, "crack.png")
        with pytest.raises(Invalid, match="no stored attachment"):
            act(engine, "submit_evidence", "buyer:b1", text="see", attachments=["f" * 64])
        act(engine, "submit_evidence", "buyer:b1", text="see the crack", attachments=[photo.sha256])
        view = engine.view("c1")
        [evidence] = view["evidence"]
        assert evidence["party"] == "buyer"
        assert evidence["attachments"] == [
            {
                "sha256": photo.sha256,
                "media_type": "image/png",
                "size": len(PNG),
                "filename": "crack.png",
            }
        ]
        assert view["stage"] == "evidence"
    finally:
        engine.close()


def test_the_queue_puts_cases_awaiting_a_ruling_first_then_by_deadline(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    url = f"sqlite:///{tmp_path / 'q.db'}"
    engine = Engine.open(url, clock=clock, attachments=FileAttachmentStore(tmp_path / "f"))
    try:
        for n in range(3):
            engine.place_order(
                Order(id=f"o{n}", shop="s1", buyer="b1", total=100, created_at=T0, paid_at=T0)
            )
            engine.execute(
                engine.build(
                    "apply",
                    actor="buyer:b1",
                    target={"case_id": f"c{n}"},
                    params={
                        "order": f"o{n}",
                        "kind": "refund_only",
                        "reason": "other",
                        "amount": 100,
                    },
                )
            )
            engine.execute(
                engine.build(
                    "refuse",
                    actor="seller:s1",
                    target={"case_id": f"c{n}"},
                    params={"reason": "no"},
                )
            )
        for n in (2, 1, 0):
            clock.advance(timedelta(hours=1))
            engine.execute(
                engine.build("request_intervention", actor="buyer:b1", target={"case_id": f"c{n}"})
            )
        clock.advance(timedelta(hours=1))
        engine.execute(
            engine.build("complete_evidence", actor="buyer:b1", target={"case_id": "c0"})
        )
        engine.run_due(T0 + timedelta(days=4, hours=3))  # c0's 3 days of seller handling end
        assert [c.id for c in engine.intervention_queue()] == ["c0", "c2", "c1"]
    finally:
        engine.close()
    env = {**os.environ, "SHOUHOU_ATTACHMENTS_DIR": str(tmp_path / "f")}
    shown = subprocess.run(
        [sys.executable, "-m", "shouhou", "queue", "interventions", "--db", url, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert shown.returncode == 0, shown.stderr
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [(r["case"], r["stage"]) for r in rows] == [
        ("c0", "review"),
        ("c2", "evidence"),
        ("c1", "evidence"),
    ]


def test_the_attach_command_keeps_a_file_and_names_it(tmp_path: Path) -> None:
    photo = tmp_path / "crack.png"
    photo.write_bytes(PNG)
    env = {**os.environ, "SHOUHOU_ATTACHMENTS_DIR": str(tmp_path / "files")}
    done = subprocess.run(
        [sys.executable, "-m", "shouhou", "attach", str(photo), "--db", str(tmp_path / "a.db")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    kept = json.loads(done.stdout)
    assert kept["media_type"] == "image/png"
    assert (tmp_path / "files" / kept["sha256"][:2] / kept["sha256"]).read_bytes() == PNG
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    refused = subprocess.run(
        [sys.executable, "-m", "shouhou", "attach", str(script), "--db", str(tmp_path / "a.db")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert refused.returncode == 1
    assert "not an accepted type" in refused.stderr
