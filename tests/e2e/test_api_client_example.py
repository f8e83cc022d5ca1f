"""examples/api_client.py drives a whole return against a running server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from apiserver import ApiServer

CLIENT = Path(__file__).parents[2] / "examples" / "api_client.py"


def run_client(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CLIENT), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("own_keys", [False, True], ids=["on-behalf", "own-keys"])
def test_the_example_client_takes_a_return_to_a_refund(api: ApiServer, own_keys: bool) -> None:
    args = ["--url", api.url, "--platform-key", api.key("platform")]
    if own_keys:
        args += ["--buyer-key", api.key("buyer:b7"), "--seller-key", api.key("seller:s7")]

    result = run_client(*args)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "→ awaiting_seller, next: seller_respond" in lines[1]
    assert "→ refunded" in lines[-2]
    assert lines[-1].startswith("refunded ¥259.00")
    cases = api.client("agent:a1").get("/v1/cases").json()["items"]
    assert [c["status"] for c in cases] == ["refunded"]
    assert cases[0]["buyer"] == ("b7" if own_keys else "b-api-demo")
