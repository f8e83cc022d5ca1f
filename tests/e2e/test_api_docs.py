"""``/docs`` and ``/`` on a real server: the reference pages load nothing from elsewhere, and the
front page says what the server is and where to go."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from apiserver import ApiServer


def _referenced(html: str) -> list[str]:
    """Every URL the page loads or points at: src and href attributes, and the spec's url."""
    found = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    found += re.findall(r"""\burl\s*:\s*["']([^"']+)["']""", html)
    return found


def test_docs_load_their_assets_from_this_server_only(api: ApiServer) -> None:
    client = api.client()
    page = client.get("/docs")

    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    urls = _referenced(page.text)
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls), urls
    assert any(u.endswith(".css") for u in urls), urls
    assert "/openapi.json" in urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is not on this server"
        assert client.get(url).status_code == 200, url
    assert "validator.swagger.io" not in page.text


def test_redoc_from_a_cdn_is_not_served(api: ApiServer) -> None:
    assert api.client().get("/redoc").status_code == 404


def test_the_front_page_names_the_service_and_links_to_docs_and_api(api: ApiServer) -> None:
    client = api.client()
    data = client.get("/").json()
    page = client.get("/", headers={"Accept": "text/html"})

    assert data["name"].startswith("shouhou")
    assert data["version"] == client.get("/health").json()["version"]
    assert {"/docs", "/openapi.json", "/v1/cases"} <= set(data["links"])
    for link in data["links"]:
        assert client.get(link).status_code in (200, 401), link  # /v1 asks for a key
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'href="/docs"' in page.text and 'href="/openapi.json"' in page.text
