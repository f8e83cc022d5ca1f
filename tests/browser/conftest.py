"""Browser tests of the web console: Playwright driving Debian's chromium.

The browser is launched from its path (``/usr/bin/chromium``, or ``$SHOUHOU_CHROMIUM``): these
machines can't download a browser build, so ``playwright install`` is never run. The server is
a real HTTP server on 127.0.0.1 (uvicorn, as the API tests start it: tests/e2e/apiserver.py)
sharing the test's engine and virtual clock, so a test can let a deadline pass. Every request
the browser makes to anywhere but 127.0.0.1 is aborted, and the test fails on it.

axe-core comes from the npm registry at test time (``npm install`` into a cache directory,
never into the repository).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from apiserver import ApiServer, serving
from browsing import Browsing
from playwright.sync_api import Browser, sync_playwright

from shouhou.bootstrap import Engine

CHROMIUM = os.environ.get("SHOUHOU_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
]
#: Where axe-core is installed from the npm registry (outside the repository).
AXE_DIR = Path(os.environ.get("SHOUHOU_AXE_DIR", Path.home() / ".cache" / "shouhou-axe"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one module of browser tests. Playwright's event loop runs in this thread
    while it lives, and ``asyncio.run`` refuses to start beside it, so it must end with the
    module: a folder without ``__init__.py`` is no package, and a "package" fixture there
    lived on through the whole session and broke every later test that runs a loop."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    Engine.open(f"sqlite:///{path}").close()
    return path


@pytest.fixture
def server(tmp_path: Path, migrated_db: Path) -> Iterator[ApiServer]:
    with serving(tmp_path / "console.db", migrated_db) as running:
        yield running


@pytest.fixture
def browsing(browser: Browser, server: ApiServer) -> Iterator[Browsing]:
    made = Browsing(browser, server)
    yield made
    made.close()
    assert made.outside == [], f"the console asked for something off this machine: {made.outside}"


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe-core's browser script, installed from the npm registry into a cache directory."""
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to fetch axe-core: apt-get install -y npm (.ci/run does)")
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR), "axe-core@4"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return script
