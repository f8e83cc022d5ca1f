"""What every console page needs: sessions, the CSRF token, the language, and rendering.

A session is kept in this process's memory (``shouhou serve`` is one process): its cookie names
it, and it holds the API key signed in with, which is authenticated again on every request (a
revoked key ends the session). Every form carries the session's CSRF token (before sign-in, the
token of a cookie of its own); a POST without the right one is refused with 403.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from shouhou.api.deps import Context, Principal, principal_of_token
from shouhou.console.forms import ACTION_LABELS
from shouhou.domain.values import format_duration, format_yuan, local
from shouhou.i18n import LANGUAGES, Lang, Translator, from_locale, negotiate, translator

HERE = Path(__file__).parent
SESSION_COOKIE = "shouhou_session"
CSRF_COOKIE = "shouhou_csrf"
LANG_COOKIE = "shouhou_lang"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
#: How long a session lasts without use, in seconds.
SESSION_IDLE_S = 12 * 3600
#: What each language is called in itself, for the switch.
LANGUAGE_NAMES: dict[Lang, str] = {"en": "English", "zh-Hans": "简体中文", "zh-Hant": "繁體中文"}


@dataclass
class Session:
    id: str
    token: str
    csrf: str
    used: float = field(default_factory=time.monotonic)


class Sessions:
    """Signed-in sessions of this process, by the id their cookie holds."""

    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, token: str) -> Session:
        made = Session(id=secrets.token_urlsafe(32), token=token, csrf=secrets.token_urlsafe(32))
        with self._lock:
            self._by_id[made.id] = made
        return made

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            found = self._by_id.get(session_id)
            if found is None:
                return None
            if now - found.used > SESSION_IDLE_S:
                del self._by_id[session_id]
                return None
            found.used = now
            return found

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)


@dataclass
class Console:
    """The console's state in the app: sessions, demo sign-ins, and the templates."""

    sessions: Sessions
    #: One-click sign-in links of ``serve --demo-keys``: a random path part to who it signs in
    #: (``buyer:b1``) and their API key.
    demo_logins: dict[str, tuple[str, str]]
    templates: jinja2.Environment

    def demo(self) -> list[tuple[str, str]]:
        """The demo sign-ins as (path part, who), for the sign-in page."""
        return [(nonce, who) for nonce, (who, _) in self.demo_logins.items()]


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html", "svg"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yuan"] = lambda fen: f"¥{format_yuan(int(fen))}"
    env.filters["plain_yuan"] = lambda fen: format_yuan(int(fen))
    env.filters["when"] = _when
    return env


def _when(value: str | datetime | None) -> str:
    """An instant as a person reads it: the marketplace's local time to the minute."""
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return local(moment).strftime("%Y-%m-%d %H:%M")


def console_of(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def context_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def lang_of(request: Request) -> Lang:
    """The language the person chose (the switch's cookie), else their browser's."""
    chosen = request.cookies.get(LANG_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    return negotiate(request.headers.get("accept-language"))


def parse_lang_choice(text: str) -> Lang | None:
    return text if text in LANGUAGES else from_locale(text)


def session_of(request: Request) -> Session | None:
    return console_of(request).sessions.get(request.cookies.get(SESSION_COOKIE))


def who_of(request: Request) -> Principal | None:
    """The signed-in person: the session's API key, authenticated now; None when there is no
    session or its key was revoked."""
    session = session_of(request)
    if session is None:
        return None
    return principal_of_token(context_of(request), session.token)


def csrf_token(request: Request) -> str:
    """The token this request's forms carry: the session's, else the anonymous cookie's."""
    session = session_of(request)
    if session is not None:
        return session.csrf
    token = getattr(request.state, "csrf", None) or request.cookies.get(CSRF_COOKIE)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.csrf = token
    return str(token)


def csrf_ok(request: Request, sent: str | None) -> bool:
    expected = csrf_token(request)
    return bool(sent) and hmac.compare_digest(str(sent), expected)


def secure(request: Request) -> bool:
    """Whether the request came over TLS (itself, or through a proxy that says so)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, **extra: Any) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="lax", secure=secure(request), path="/", **extra
    )


class Page:
    """Renders a template in the request's language with what every page shows."""

    def __init__(self, request: Request, who: Principal | None = None) -> None:
        self.request = request
        self.who = who
        self.lang = lang_of(request)
        self.t: Translator = translator(self.lang)

    def term(self, value: Any, context: str | None = None) -> str:
        """A domain word in the page's language; in English, the enum value with spaces."""
        said = self.t.term(value, context)
        raw = getattr(value, "value", value)
        return said.replace("_", " ") if said == raw else said

    def gettext(self, message: str, **values: Any) -> str:
        text = self.t.gettext(message)
        return text.format(**values) if values else text

    def render(
        self,
        template: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **data: Any,
    ) -> HTMLResponse:
        t = self.t
        body = (
            console_of(self.request)
            .templates.get_template(template)
            .render(
                _=self.gettext,
                gettext=self.gettext,
                term=self.term,
                pick=t.pick,
                lang=self.lang,
                html_lang=self.lang,
                languages=LANGUAGE_NAMES,
                who=self.who,
                csrf=csrf_token(self.request),
                path=self.request.url.path,
                query=str(self.request.url.query),
                remaining=remaining_text,
                action_labels=ACTION_LABELS,
                **data,
            )
        )
        response = HTMLResponse(body, status_code=status, headers=dict(headers or {}))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Language"] = self.lang
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'"
        )
        anonymous = getattr(self.request.state, "csrf", None)
        if anonymous:
            set_cookie(response, self.request, CSRF_COOKIE, anonymous)
        return response


def remaining_text(due: str | datetime | None, now: datetime) -> str:
    """Time left until ``due`` as ``2d 3h``; what the page shows before its script ticks."""
    if due is None:
        return ""
    moment = datetime.fromisoformat(due) if isinstance(due, str) else due
    left = moment - now
    if left.total_seconds() <= 0:
        return "0s"
    return format_duration(left)
