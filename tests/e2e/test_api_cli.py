"""``shouhou keys`` and ``shouhou serve`` as a user runs them: real processes, real HTTP."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from apiserver import free_socket

#: How long ``shouhou serve`` may take to answer /health, in seconds.
SERVE_STARTUP_S = 60


def shouhou(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shouhou", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_keys_are_created_listed_and_revoked(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.db")

    created = shouhou("keys", "create", "seller:s1", "--name", "shop app", "--db", db)
    listed = shouhou("keys", "list", "--db", db)
    key_id, _ = created.stdout.split()[:2]
    token = created.stdout.splitlines()[-1]
    revoked = shouhou("keys", "revoke", key_id, "--db", db)
    again = shouhou("keys", "revoke", key_id, "--db", db)
    relisted = shouhou("keys", "list", "--db", db)

    assert created.returncode == 0, created.stderr
    assert re.fullmatch(r"shk_[A-Za-z0-9_-]{32}", token)
    assert key_id in listed.stdout and "seller:s1" in listed.stdout and "shop app" in listed.stdout
    assert token not in listed.stdout
    assert revoked.returncode == 0 and again.returncode == 1
    assert "no active key" in again.stderr
    assert re.search(rf"{key_id}.*\d{{4}}-\d\d-\d\dT.*\d{{4}}-\d\d-\d\dT", relisted.stdout)


def test_a_key_for_a_role_without_a_subject_is_refused(tmp_path: Path) -> None:
    result = shouhou("keys", "create", "buyer", "--db", str(tmp_path / "keys.db"))

    assert result.returncode == 1
    assert "needs a subject" in result.stderr


def test_serve_runs_the_api_and_the_worker_and_prints_demo_keys(tmp_path: Path) -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shouhou",
            "serve",
            "--db",
            str(tmp_path / "serve.db"),
            "--port",
            str(port),
            "--demo-keys",
            "--keep-days",
            "7",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_STARTUP_S
        while True:
            assert process.poll() is None, "shouhou serve exited"
            assert time.monotonic() < deadline, "shouhou serve did not answer /health"
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        platform = httpx.get(f"{url}/v1/me", headers={"Authorization": "Bearer x"})
        assert platform.status_code == 401
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = process.communicate(timeout=30)

    assert f"shouhou API on {url}" in output
    assert "worker: deadlines and webhooks every 1.0s" in output
    assert "delivered events kept 7 days" in output
    tokens = dict(re.findall(r"│ (\S+)\s+│ (shk_\S+)", output))
    assert set(tokens) >= {"platform", "agent:a1"}
    assert any(who.startswith("buyer:") for who in tokens)
    # one console sign-in link per demo role, buyer first
    links = re.findall(rf"sign in as (\w+):\S+: {url}/console/demo/\S+", output)
    assert links == ["buyer", "seller", "agent"], output
    assert f"web console: {url}/" in output
    assert process.returncode == 0, output
    assert "Traceback" not in output
