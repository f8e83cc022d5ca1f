"""The console over plain HTTP: sign-in, cookies, CSRF, and the home page's two answers."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
from apiserver import ApiServer

from shouhou.api import create_app
from shouhou.settings import Settings

HTML = {"Accept": "text/html"}


def _token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _sign_in(client: httpx.Client, key: str, **headers: str) -> httpx.Response:
    front = client.get("/", headers=HTML)
    return client.post(
        "/console/signin", data={"csrf": _token(front.text), "key": key}, headers=headers
    )


def test_the_home_page_is_json_for_programs_and_the_console_for_browsers(api: ApiServer) -> None:
    client = api.client()
    assert client.get("/").json()["name"] == "shouhou (售后)"
    page = client.get("/", headers=HTML)
    assert page.status_code == 200 and 'action="/console/signin"' in page.text


def test_the_session_cookie_is_secure_behind_tls(api: ApiServer) -> None:
    client = api.client()
    plain = _sign_in(client, api.key("buyer:b1"))
    assert plain.status_code == 303
    cookie = plain.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    tls = _sign_in(api.client(), api.key("buyer:b1"), **{"X-Forwarded-Proto": "https"})
    assert "secure" in tls.headers["set-cookie"].lower()


def test_a_sign_in_without_its_token_or_with_an_unknown_key_is_refused(api: ApiServer) -> None:
    client = api.client()
    refused = client.post("/console/signin", data={"key": api.key("buyer:b1")})
    assert refused.status_code == 403 and "shouhou_session" not in refused.headers.get(
        "set-cookie", ""
    )
    unknown = _sign_in(client, "shk_not-a-key")
    assert unknown.status_code == 401 and "unknown or was revoked" in unknown.text


def test_a_revoked_key_ends_its_session(api: ApiServer) -> None:
    client = api.client()
    assert _sign_in(client, api.key("buyer:b2")).status_code == 303
    assert client.get("/console/orders", headers=HTML).status_code == 200
    key_id = api.client("buyer:b2").get("/v1/me").json()["key"]
    with api.engine.uow_factory() as uow:
        assert uow.keys.revoke(key_id, api.clock.now())
        uow.commit()
    assert client.get("/console/orders", headers=HTML).status_code == 401


def test_demo_sign_in_links_exist_only_when_given(api: ApiServer) -> None:
    token = api.key("seller:s1")
    app = create_app(api.engine, settings=Settings(), demo_logins={"abc": ("seller:s1", token)})

    async def visit() -> tuple[str, httpx.Response, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            page = (await client.get("/", headers=HTML)).text
            signed = await client.get("/console/demo/abc")
            other = (await client.get("/console/demo/other")).status_code
            return page, signed, other

    # in a thread of its own: a test run with the browser tests has Playwright's loop running
    with ThreadPoolExecutor(1) as pool:
        page, signed, other = pool.submit(lambda: asyncio.run(visit())).result()
    assert 'href="/console/demo/abc"' in page
    assert signed.status_code == 303 and "shouhou_session" in signed.headers["set-cookie"]
    assert other == 404
    assert api.client().get("/console/demo/abc").status_code == 404


def test_signing_in_from_a_page_goes_back_to_it(api: ApiServer) -> None:
    client = api.client()
    asked = client.get("/console/complaints", headers=HTML)
    assert asked.status_code == 401
    answer = client.post(
        "/console/signin",
        data={
            "csrf": _token(asked.text),
            "key": api.key("buyer:b1"),
            "next": "/console/complaints",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console/complaints"
    elsewhere = _sign_in(api.client(), api.key("buyer:b1"))
    assert elsewhere.headers["location"] == "/"
