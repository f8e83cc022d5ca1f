"""What the browser tests share: pages that reach only 127.0.0.1, sign-in, screenshots."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from apiserver import ApiServer
from playwright.sync_api import Browser, BrowserContext, Page, Route

REPO = Path(__file__).resolve().parents[2]
#: Where the tests save screenshots of the main pages: var/screenshots (ignored by git), so a
#: test run leaves the checkout clean. To refresh the README's pictures:
#: ``SHOUHOU_SCREENSHOTS=docs/images/console .venv/bin/pytest tests/browser``.
SCREENSHOTS = Path(os.environ.get("SHOUHOU_SCREENSHOTS", REPO / "var" / "screenshots"))
PHONE = {"width": 375, "height": 812}


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


def screenshot(page: Page, name: str) -> None:
    """Save the page as <SCREENSHOTS>/<name>-<width>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=False)
