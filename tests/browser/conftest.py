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
from urllib.parse import urlparse

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from apiserver import ApiServer, serving
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

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
REPO = Path(__file__).resolve().parents[2]
#: Where the tests save screenshots of the main pages (the README shows a few).
SCREENSHOTS = Path(os.environ.get("SHOUHOU_SCREENSHOTS", REPO / "docs" / "images" / "console"))
#: Where axe-core is installed from the npm registry (outside the repository).
AXE_DIR = Path(os.environ.get("SHOUHOU_AXE_DIR", Path.home() / ".cache" / "shouhou-axe"))
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
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


class Browsing:
    """Opens browser contexts that may reach only 127.0.0.1, and signs people in."""

    def __init__(self, browser: Browser, server: ApiServer) -> None:
        self.browser = browser
        self.server = server
        self.outside: list[str] = []
        self.contexts: list[BrowserContext] = []

    def _guard(self, route: Route) -> None:
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "about:")) or host == "127.0.0.1":
            route.continue_()
            return
        self.outside.append(route.request.url)
        route.abort()

    def page(self, *, width: int = 1280, lang: str = "en", bypass_csp: bool = False) -> Page:
        context = self.browser.new_context(
            viewport={"width": width, "height": 900},
            locale=lang,
            extra_http_headers={"Accept-Language": lang},
            bypass_csp=bypass_csp,
        )
        # the page's clock reads the server's virtual time, so countdowns count from it
        context.clock.set_fixed_time(self.server.clock.now())
        context.route("**/*", self._guard)
        self.contexts.append(context)
        return context.new_page()

    def sign_in(self, who: str, **options: object) -> Page:
        """A page signed in as ``who`` (``buyer:b1``) through the sign-in form."""
        page = self.page(**options)  # type: ignore[arg-type]
        page.goto(self.server.url + "/")
        page.locator("#key").fill(self.server.key(who))
        page.locator("form[action='/console/signin'] button[type=submit]").click()
        page.wait_for_url("**/console/**")
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


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


def screenshot(page: Page, name: str) -> None:
    """Save the page as docs/images/console/<name>-<width>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=False)
