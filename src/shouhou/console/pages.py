"""The console's pages: sign-in, the buyer's, seller's and agent's work, the rulebook.

Every page reads and acts through the engine and the services, with the API's visibility
(``Principal`` and the ``visible_*`` lookups of the API routes): what a caller may not see is
a 404 here as there. Writes run one command each in a unit of work, as the API's do.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from shouhou.api.cases import visible_case
from shouhou.api.complaints import visible_complaint
from shouhou.api.deps import Context, Principal
from shouhou.api.errors import localized_message
from shouhou.api.orders import visible_order
from shouhou.console import forms
from shouhou.console.web import (
    CSRF_FIELD,
    CSRF_HEADER,
    LANG_COOKIE,
    SESSION_COOKIE,
    Page,
    console_of,
    context_of,
    csrf_ok,
    parse_lang_choice,
    set_cookie,
    who_of,
)
from shouhou.domain import caselog, intervention
from shouhou.domain.model import (
    TERMINAL_STATUSES,
    Case,
    CaseStatus,
    Reason,
    Role,
)
from shouhou.domain.values import parse_yuan
from shouhou.errors import ActionRefused, NotEligible, NotFound
from shouhou.i18n import N_
from shouhou.policy import replies
from shouhou.policy.schema import HolidayPack
from shouhou.services import explanation, uploads, views
from shouhou.services import forms as service_forms
from shouhou.services.ports import ApiUnitOfWork, CaseFilter, OrderFilter, joined

router = APIRouter(include_in_schema=False)
Ident = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
#: The largest list a page shows.
PAGE_ROWS = 200
OPEN_STATUSES = tuple(s for s in CaseStatus if s not in TERMINAL_STATUSES)


class ConsoleError(Exception):
    """A page that can't be shown (404, 403): answered as an HTML page, not the API's JSON."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInNeeded(Exception):
    """The page needs a signed-in person: answered with the sign-in page."""


def signed_in(request: Request) -> Principal:
    who = who_of(request)
    if who is None:
        raise SignInNeeded()
    return who


async def posted(request: Request) -> dict[str, list[str]]:
    """A posted form's fields, after its CSRF token is checked (403 without the right one)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    form = parse_qs(body, keep_blank_values=True)
    sent = (form.get(CSRF_FIELD) or [request.headers.get(CSRF_HEADER, "")])[0]
    if not csrf_ok(request, sent):
        raise ConsoleError(403, N_("This form has expired or did not come from this site."))
    return form


def see_other(url: str, **cookies: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(url: str) -> str:
    """Where to go back to: a path of this site only."""
    return url if url.startswith("/") and not url.startswith("//") else "/"


# --- home, sign-in, language -----------------------------------------------------------------


def home(request: Request) -> Response:
    """``/`` for a browser: the sign-in page, or the signed-in person's work."""
    who = who_of(request)
    if who is None:
        return Page(request).render("signin.html", demo=console_of(request).demo())
    if who.actor.role == Role.SELLER:
        return see_other("/console/inbox")
    if who.actor.role == Role.BUYER:
        return see_other("/console/orders")
    return see_other("/console/queue")


@router.post("/console/signin")
async def sign_in(request: Request) -> Response:
    form = await posted(request)
    token = (form.get("key") or [""])[0].strip()
    back = _safe_next((form.get("next") or ["/"])[0])
    return await run_in_threadpool(_start_session, request, token, back)


def _start_session(request: Request, token: str, back: str = "/") -> Response:
    from shouhou.api.deps import principal_of_token

    if not token or principal_of_token(context_of(request), token) is None:
        page = Page(request)
        return page.render(
            "signin.html",
            status=401,
            error=page.gettext("That API key is unknown or was revoked."),
            demo=console_of(request).demo(),
        )
    session = console_of(request).sessions.open(token)
    response = see_other(back)
    set_cookie(response, request, SESSION_COOKIE, session.id)
    return response


@router.get("/console/demo/{nonce}")
def demo_sign_in(request: Request, nonce: Annotated[str, Path(max_length=100)]) -> Response:
    """The one-click sign-in of ``serve --demo-keys``; unknown without it."""
    found = console_of(request).demo_logins.get(nonce)
    if found is None:
        raise ConsoleError(404, N_("There is no such page, or it is not yours to see."))
    return _start_session(request, found[1])


@router.post("/console/signout")
async def sign_out(request: Request) -> Response:
    await posted(request)
    console_of(request).sessions.close(request.cookies.get(SESSION_COOKIE))
    response = see_other("/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/console/lang")
async def switch_language(request: Request) -> Response:
    form = await posted(request)
    chosen = parse_lang_choice((form.get("lang") or [""])[0])
    response = see_other(_safe_next((form.get("next") or ["/"])[0]))
    if chosen is not None:
        set_cookie(response, request, LANG_COOKIE, chosen, max_age=365 * 24 * 3600)
    return response


# --- lists -----------------------------------------------------------------------------------


def _deadline_row(ctx: Context, page: Page, case: Case) -> dict[str, Any] | None:
    """A running deadline as lists and pages show it: when, and what happens at zero."""
    d = case.deadline
    if d is None:
        return None
    zh, en = explanation.EXPIRY.get(d.on_expiry, (d.on_expiry, d.on_expiry))
    return {"due_at": d.due_at.isoformat(), "at_zero": page.t.pick(zh, en), "rule": d.rule_id}


def _case_rows(
    ctx: Context, page: Page, who: Principal, listed: list[tuple[Case, Any]]
) -> list[dict[str, Any]]:
    rows = []
    for case, order in listed:
        actions: list[str] = []
        if order is not None:
            from shouhou.domain import cases as case_rules

            actions = case_rules.available_actions(
                case,
                who.actor,
                order=order,
                rules=ctx.engine.rules_at(case.opened_at),
                now=ctx.now(),
            )
        rows.append(
            {
                "case": views.case_head(case),
                "deadline": _deadline_row(ctx, page, case),
                "actions": actions,
                "stage": case.stage.value if case.stage else None,
            }
        )
    return rows


@router.get("/console/cases")
def case_list(request: Request) -> Response:
    return _inbox(request, "cases.html")


@router.get("/console/inbox")
def inbox(request: Request) -> Response:
    return _inbox(request, "inbox.html")


def _filters(request: Request) -> tuple[list[CaseStatus], Reason | None]:
    """The list's filters from its query (``status`` may repeat; an empty or unknown value
    is no filter: the form's "any" sends an empty one)."""
    statuses = {s.value: s for s in CaseStatus}
    reasons = {r.value: r for r in Reason}
    status = [statuses[v] for v in request.query_params.getlist("status") if v in statuses]
    return status, reasons.get(request.query_params.get("reason", ""))


def _inbox(request: Request, template: str) -> Response:
    """The caller's cases: open ones by deadline, soonest first (the seller's inbox), then
    the rest newest first; filtered by status and reason."""
    who = signed_in(request)
    ctx = context_of(request)
    page = Page(request, who)
    status, reason = _filters(request)
    scoped = who.scope(None, None)
    assert scoped is not None
    shop, buyer = scoped
    chosen = tuple(status)
    with ctx.reader() as uow:
        running = uow.queries.cases(
            CaseFilter(statuses=chosen, shop=shop, buyer=buyer, sort="due_at"), PAGE_ROWS
        )
        every = uow.queries.cases(CaseFilter(statuses=chosen, shop=shop, buyer=buyer), PAGE_ROWS)
    seen = {item.case.id for item in running}
    listed = [(i.case, i.order) for i in running] + [
        (i.case, i.order) for i in every if i.case.id not in seen
    ]
    if reason is not None:
        listed = [(c, o) for c, o in listed if c.reason == reason]
    return page.render(
        template,
        rows=_case_rows(ctx, page, who, listed),
        statuses=list(CaseStatus),
        reasons=list(Reason),
        chosen_status=[s.value for s in status],
        chosen_reason=reason.value if reason else "",
        now=ctx.now(),
    )


@router.get("/console/queue")
def intervention_queue(request: Request) -> Response:
    """The agents' queue: cases awaiting a ruling first, then by stage deadline."""
    who = signed_in(request)
    _require(who, Role.AGENT, Role.PLATFORM)
    ctx = context_of(request)
    page = Page(request, who)
    queue = ctx.engine.intervention_queue()
    with ctx.reader() as uow:
        listed = [(case, uow.orders.get(case.order_id)) for case in queue[:PAGE_ROWS]]
    complaints = ctx.engine.complaint_queue()[:PAGE_ROWS]
    return page.render(
        "queue.html",
        rows=_case_rows(ctx, page, who, listed),
        complaints=[views.complaint_view(k) for k in complaints],
        now=ctx.now(),
    )


def _require(who: Principal, *roles: Role) -> None:
    if who.actor.role not in roles:
        raise ConsoleError(404, N_("There is no such page, or it is not yours to see."))


# --- a case ----------------------------------------------------------------------------------


def _case_page_data(ctx: Context, page: Page, who: Principal, case_id: str) -> dict[str, Any]:
    """Everything the case page shows, read in one transaction."""
    with ctx.reader() as uow:
        case = visible_case(uow, who, case_id)
        order = uow.orders.get(case.order_id)
        assert order is not None
        timeline = uow.cases.timeline(case_id)
        address = uow.shops.return_address(case.shop)
    now = ctx.now()
    rules = ctx.engine.rules_at(case.opened_at)
    view = views.case_view(case, order, rules, timeline=timeline, actor=who.actor, now=now)
    t = page.t
    sentence = (
        explanation.deadline_sentence(case, rules, timeline)
        or explanation.review_sentence(case, rules, timeline)
        or explanation.outcome_sentence(case, rules, timeline)
    )
    next_text = t.pick(sentence.zh, sentence.en) if sentence else ""
    intervene_from = None
    if "request_intervention" not in view["available_actions"] and not case.terminal:
        try:
            intervention.check_request(case, ctx.engine.rules_at(now), now)
        except NotEligible as refused:
            intervene_from = refused.allowed_from.isoformat() if refused.allowed_from else None
        except ActionRefused:
            pass
    role = who.actor.role
    suggested = []
    if role == Role.SELLER:
        in_english = page.lang == "en"
        suggested = [
            {
                "step": r.step,
                "text": r.text if in_english else t.pick(r.text, r.text),
                "noted": r.noted,
                "source": r.source,
            }
            for r in replies.pick(
                case, order_status=order.status, lang="en" if in_english else "zh-Hans"
            )
        ]
    notes = [
        {"step": n.step, "text": n.text, "at": n.at.isoformat(), "actor": n.author}
        for n in case.notes
    ]
    action_forms = [forms.action_form(a) for a in view["available_actions"] if a not in ("rule",)]
    log_forms = [forms.action_form(a) for a in sorted(caselog.ACTIONS) if _logs(case, who, a)]
    return {
        "view": view,
        "case": case,
        "order": views.order_view(order),
        "deadline": _deadline_row(ctx, page, case),
        "next_text": next_text,
        "explained": t.pick(view["explanation"]["zh"], view["explanation"]["en"]),
        "rules": view["explanation"]["rules"],
        "intervene_from": intervene_from,
        "action_forms": action_forms,
        "log_forms": log_forms,
        "ruling_form": forms.action_form("rule") if "rule" in view["available_actions"] else None,
        "return_address": address or "",
        "suggested": suggested,
        "notes": notes,
        "classification": case.classification,
        "now": now,
    }


def _logs(case: Case, who: Principal, action: str) -> bool:
    """Whether ``who`` may write this service-log entry on the case now (caselog's rule)."""
    try:
        caselog.admit(case, who.actor, action)
    except ActionRefused:
        return False
    return action != "classify" or case.classification is None


@router.get("/console/cases/{case_id}")
def case_page(request: Request, case_id: Ident) -> Response:
    who = signed_in(request)
    ctx = context_of(request)
    page = Page(request, who)
    return page.render("case.html", **_case_page_data(ctx, page, who, case_id))


@router.get("/console/cases/{case_id}/live")
def case_live(request: Request, case_id: Ident) -> Response:
    """The changing part of the case page, for its script to swap in when the case moves."""
    who = signed_in(request)
    ctx = context_of(request)
    page = Page(request, who)
    return page.render("case_live.html", **_case_page_data(ctx, page, who, case_id))


@router.get("/console/cases/{case_id}/version")
def case_version(request: Request, case_id: Ident) -> JSONResponse:
    """The case's version: the page polls it and reloads its live part when it changes."""
    who = signed_in(request)
    ctx = context_of(request)
    with ctx.reader() as uow:
        case = visible_case(uow, who, case_id)
    return JSONResponse({"version": case.version}, headers={"Cache-Control": "no-store"})


@router.get("/console/cases/{case_id}/files/{sha256}")
def case_file(
    request: Request,
    case_id: Ident,
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
) -> Response:
    """An evidence file of a case the caller sees (only files the case's evidence names)."""
    who = signed_in(request)
    ctx = context_of(request)
    with ctx.reader() as uow:
        case = visible_case(uow, who, case_id)
    named = {a.sha256: a for ev in case.evidence for a in ev.attachments}
    found = named.get(sha256)
    store = ctx.engine.attachments
    if found is None or store is None:
        raise ConsoleError(404, N_("There is no such page, or it is not yours to see."))
    return Response(
        store.read(sha256),
        media_type=found.media_type,
        headers={
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(found.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=3600",
        },
    )


@router.post("/console/cases/{case_id}/act/{action}")
async def case_action(request: Request, case_id: Ident, action: Ident) -> Response:
    form = await posted(request)
    return await run_in_threadpool(_case_action, request, case_id, action, form)


def _case_action(
    request: Request, case_id: str, action: str, form: dict[str, list[str]]
) -> Response:
    who = signed_in(request)
    ctx = context_of(request)
    if action not in forms.ACTION_LABELS:
        raise ConsoleError(404, N_("There is no such page, or it is not yours to see."))
    params = forms.params_from(forms.action_form(action), form)

    def run(uow: ApiUnitOfWork) -> None:
        visible_case(uow, who, case_id)
        cmd = ctx.engine.build(
            action,
            actor=who.actor,
            target={"case_id": case_id},
            params=params,
            money=parse_yuan,
            uow=joined(uow),
        )
        ctx.engine.execute(cmd, uow=joined(uow))

    return _write_or_show(request, who, run, f"/console/cases/{case_id}", case_id)


def _write_or_show(
    request: Request,
    who: Principal,
    run: Callable[[ApiUnitOfWork], None],
    done: str,
    case_id: str | None = None,
) -> Response:
    """Run ``run`` in one transaction and go to ``done``; a refusal is shown on the case page
    (or an error page), naming its rule, with nothing changed."""
    ctx = context_of(request)
    try:
        with ctx.writer() as uow:
            run(uow)
            uow.commit()
    except NotFound:
        raise
    except ActionRefused as refused:
        page = Page(request, who)
        message = localized_message(refused, page.lang)
        status = 409 if refused.code in ("not_allowed", "conflict") else 422
        if case_id is None:
            return page.render(
                "error.html", status=status, message=message, rule=refused.rule or ""
            )
        data = _case_page_data(ctx, page, who, case_id)
        return page.render(
            "case.html", status=status, error=message, error_rule=refused.rule or "", **data
        )
    return see_other(done)


@router.post("/console/cases/{case_id}/preview")
async def ruling_preview(request: Request, case_id: Ident) -> Response:
    """What the ruling form would do: the refund and the freight split, decided by the same
    code as the ruling, nothing saved."""
    form = await posted(request)
    return await run_in_threadpool(_preview, request, case_id, form)


def _preview(request: Request, case_id: str, form: dict[str, list[str]]) -> Response:
    who = signed_in(request)
    ctx = context_of(request)
    page = Page(request, who)
    params = forms.params_from(forms.action_form("rule"), form)
    params["reason"] = params.get("reason") or "preview"
    try:
        cmd = ctx.engine.build(
            "rule", actor=who.actor, target={"case_id": case_id}, params=params, money=parse_yuan
        )
        with ctx.reader() as uow:
            case = visible_case(uow, who, case_id)
            order = uow.orders.get(case.order_id)
            assert order is not None
        now = ctx.now()
        from shouhou.domain import commands as c

        assert isinstance(cmd, c.Rule)
        preview = service_forms.preview_ruling(case, order, cmd, ctx.engine.rules_at(now), now)
    except NotFound:
        raise
    except ActionRefused as refused:
        return page.render("preview.html", error=localized_message(refused, page.lang))
    return page.render("preview.html", preview=preview, error="")


@router.post("/console/upload")
async def upload(
    request: Request, filename: Annotated[str, Query(min_length=1, max_length=200)] = "evidence"
) -> JSONResponse:
    """An evidence file sent by the page's script (the body is the file; the CSRF token in a
    header); its SHA-256 goes into the form's hidden field."""
    if not csrf_ok(request, request.headers.get(CSRF_HEADER)):
        raise ConsoleError(403, N_("This form has expired or did not come from this site."))
    data = await request.body()
    return await run_in_threadpool(_upload, request, data, filename)


def _upload(request: Request, data: bytes, filename: str) -> JSONResponse:
    who = signed_in(request)
    ctx = context_of(request)
    quota = uploads.UploadQuota(
        files=ctx.settings.upload_files_per_day, bytes=ctx.settings.upload_bytes_per_day
    )
    try:
        attachment = uploads.upload(
            ctx.writer(),
            ctx.engine.attachments,
            str(who.actor),
            data,
            filename,
            quota,
            ctx.now(),
        )
    except ActionRefused as refused:
        page = Page(request, who)
        return JSONResponse({"error": localized_message(refused, page.lang)}, status_code=422)
    return JSONResponse(views.attachment_view(attachment), status_code=201)


# --- orders: apply, complain -----------------------------------------------------------------


@router.get("/console/orders")
def order_list(request: Request) -> Response:
    who = signed_in(request)
    ctx = context_of(request)
    page = Page(request, who)
    scoped = who.scope(None, None)
    assert scoped is not None
    shop, buyer = scoped
    with ctx.reader() as uow:
        found = uow.queries.orders(OrderFilter(shop=shop, buyer=buyer), PAGE_ROWS)
        cases = uow.queries.cases(CaseFilter(shop=shop, buyer=buyer), PAGE_ROWS)
    return page.render(
        "orders.html",
        orders=[views.order_view(i.order) for i in found],
        rows=_case_rows(ctx, page, who, [(i.case, i.order) for i in cases]),
        now=ctx.now(),
    )


@router.get("/console/orders/{order_id}")
def order_page(request: Request, order_id: Ident) -> Response:
    who = signed_in(request)
    ctx = context_of(request)
    page = Page(request, who)
    return page.render("order.html", **_order_data(ctx, page, who, order_id))


def _order_data(ctx: Context, page: Page, who: Principal, order_id: str) -> dict[str, Any]:
    with ctx.reader() as uow:
        order = visible_order(uow, who, order_id)
        cases = uow.cases.list(order=order_id, limit=100)
    now = ctx.now()
    choices = None
    complaint_types: list[tuple[str, str]] = []
    if who.actor.role == Role.BUYER:
        rules = ctx.engine.rules_at(now)
        choices = service_forms.application_choices(order, rules, now)
        complaint_types = [
            (f"{kind}.{sub}", page.t.pick(spec.text.zh, spec.text.en))
            for kind, subs in rules.base_pack.complaints.items()
            for sub, spec in subs.items()
        ]
    return {
        "order": views.order_view(order),
        "cases": [views.case_head(c) for c in cases],
        "choices": choices,
        "complaint_types": complaint_types,
        "now": now,
    }


@router.post("/console/orders/{order_id}/apply")
async def apply(request: Request, order_id: Ident) -> Response:
    form = await posted(request)
    return await run_in_threadpool(_apply, request, order_id, form)


def _apply(request: Request, order_id: str, form: dict[str, list[str]]) -> Response:
    who = signed_in(request)
    ctx = context_of(request)
    params: dict[str, Any] = {"order": order_id}
    for name in ("kind", "reason", "amount", "note"):
        value = (form.get(name) or [""])[0].strip()
        if value:
            params[name] = value
    made: list[str] = []

    def run(uow: ApiUnitOfWork) -> None:
        visible_order(uow, who, order_id)
        cmd = ctx.engine.build("apply", actor=who.actor, target={}, params=params, money=parse_yuan)
        case = ctx.engine.execute(cmd, uow=joined(uow))
        made.append(case.id)

    return _order_write(request, who, order_id, run, lambda: f"/console/cases/{made[0]}")


def _order_write(
    request: Request,
    who: Principal,
    order_id: str,
    run: Callable[[ApiUnitOfWork], None],
    done: Callable[[], str],
) -> Response:
    ctx = context_of(request)
    try:
        with ctx.writer() as uow:
            run(uow)
            uow.commit()
    except NotFound:
        raise
    except ActionRefused as refused:
        page = Page(request, who)
        return page.render(
            "order.html",
            status=409 if refused.code in ("not_allowed", "conflict") else 422,
            error=localized_message(refused, page.lang),
            error_rule=refused.rule or "",
            **_order_data(ctx, page, who, order_id),
        )
    return see_other(done())


@router.post("/console/orders/{order_id}/complain")
async def complain(request: Request, order_id: Ident) -> Response:
    form = await posted(request)
    return await run_in_threadpool(_complain, request, order_id, form)


def _complain(request: Request, order_id: str, form: dict[str, list[str]]) -> Response:
    import uuid

    who = signed_in(request)
    ctx = context_of(request)
    kind, _, sub = (form.get("type") or [""])[0].partition(".")
    params: dict[str, Any] = {"order": order_id, "type": kind, "subtype": sub or "default"}

    def run(uow: ApiUnitOfWork) -> None:
        visible_order(uow, who, order_id)
        target = {"complaint_id": "k" + uuid.uuid4().hex[:16]}
        cmd = ctx.engine.build("file_complaint", actor=who.actor, target=target, params=params)
        ctx.engine.execute(cmd, uow=joined(uow))

    return _order_write(request, who, order_id, run, lambda: "/console/complaints")


# --- complaints ------------------------------------------------------------------------------


@router.get("/console/complaints")
def complaint_list(request: Request) -> Response:
    who = signed_in(request)
    ctx = context_of(request)
    page = Page(request, who)
    scoped = who.scope(None, None)
    assert scoped is not None
    shop, buyer = scoped
    with ctx.reader() as uow:
        found = uow.complaints.list(shop=shop, buyer=buyer, status=None, limit=PAGE_ROWS)
    return page.render("complaints.html", complaints=[views.complaint_view(k) for k in found])


@router.post("/console/complaints/{complaint_id}/{action}")
async def complaint_action(request: Request, complaint_id: Ident, action: Ident) -> Response:
    form = await posted(request)
    return await run_in_threadpool(_complaint_action, request, complaint_id, action, form)


def _complaint_action(
    request: Request, complaint_id: str, action: str, form: dict[str, list[str]]
) -> Response:
    who = signed_in(request)
    ctx = context_of(request)
    if action not in ("withdraw_complaint", "rule_complaint"):
        raise ConsoleError(404, N_("There is no such page, or it is not yours to see."))
    params: dict[str, Any] = {}
    if action == "rule_complaint":
        params = {
            "decision": (form.get("decision") or [""])[0],
            "reason": (form.get("reason") or [""])[0],
        }

    def run(uow: ApiUnitOfWork) -> None:
        visible_complaint(uow, who, complaint_id)
        target = {"complaint_id": complaint_id}
        cmd = ctx.engine.build(action, actor=who.actor, target=target, params=params)
        ctx.engine.execute(cmd, uow=joined(uow))

    return _write_or_show(request, who, run, "/console/complaints")


# --- the shop: metrics, charts, ledgers ------------------------------------------------------


def _shop_of(who: Principal, shop: str | None) -> str:
    if who.actor.role == Role.SELLER:
        return who.actor.id
    if who.actor.role in (Role.AGENT, Role.PLATFORM) and shop:
        return shop
    raise ConsoleError(404, N_("There is no such page, or it is not yours to see."))


@router.get("/console/shop")
def shop_page(
    request: Request, shop: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    who = signed_in(request)
    ctx = context_of(request)
    page = Page(request, who)
    name = _shop_of(who, shop)
    metrics = ctx.engine.shop_metrics(name)
    with ctx.reader() as uow:
        points = uow.ledger.entries(f"shop:{name}", "penalty_points")
        address = uow.shops.return_address(name)
        complaints = uow.complaints.list(shop=name, buyer=None, status=None, limit=PAGE_ROWS)
    paid = [k for k in complaints if k.compensation is not None]
    return page.render(
        "shop.html",
        shop=name,
        metrics=views.shop_view(name, metrics),
        points=points,
        compensation=[views.complaint_view(k) for k in paid],
        address=address or "",
        hours=metrics.avg_completion_hours,
    )


@router.get("/console/shop/metrics.svg")
def shop_chart(
    request: Request, shop: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    """The chart of ``shop report``: the shop's metrics on each of the last days."""
    from shouhou.bootstrap import METRICS_WINDOW
    from shouhou.charts import metrics_figure

    who = signed_in(request)
    ctx = context_of(request)
    name = _shop_of(who, shop)
    report = ctx.engine.shop_report(name)
    figure = metrics_figure(name, report.series, METRICS_WINDOW)
    out = io.BytesIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    return Response(out.getvalue(), media_type="image/svg+xml")


# --- the rulebook ----------------------------------------------------------------------------


@router.get("/console/rulebook")
def rulebook(request: Request) -> Response:
    who = signed_in(request)
    ctx = context_of(request)
    page = Page(request, who)
    book = ctx.engine.rules_at(ctx.now())
    base = book.base_pack
    t = page.t
    sections: list[tuple[str, list[dict[str, Any]]]] = []

    def rule_rows(prefix: str, specs: dict[Any, Any]) -> list[dict[str, Any]]:
        return [
            {
                "id": f"{base.name}/{prefix}{getattr(n, 'value', n)}",
                "source": t.pick(spec.provenance.label(), spec.provenance.label()),
                "note": t.pick(spec.provenance.note, spec.provenance.note),
                "text": t.pick(spec.text.zh, spec.text.en),
            }
            for n, spec in specs.items()
        ]

    sections.append((N_("Deadlines"), rule_rows("", base.deadlines)))
    sections.append((N_("Limits"), rule_rows("", base.limits)))
    sections.append((N_("Reasons"), rule_rows("reason.", base.reasons)))
    complaints = {
        f"{kind}.{sub}": spec
        for kind, subs in base.complaints.items()
        for sub, spec in subs.items()
    }
    sections.append((N_("Complaints"), rule_rows("complaint.", complaints)))
    holidays = []
    registry = ctx.engine.registry
    for loaded in (registry.in_force(n) for n in registry.names()):
        pack = loaded.pack
        if not isinstance(pack, HolidayPack):
            continue
        holidays.append(
            {
                "ref": loaded.ref,
                "title": t.pick(pack.title.zh, pack.title.en),
                "selected": pack.name in ctx.engine.policies,
                "window": (pack.window.start, pack.window.end),
                "rules": [
                    {
                        "id": f"{pack.name}/{r.id}",
                        "source": t.pick(r.provenance.label(), r.provenance.label()),
                        "note": t.pick(r.provenance.note, r.provenance.note),
                        "text": t.pick(r.text.zh, r.text.en),
                        "set": r.set,
                    }
                    for r in pack.rules
                ],
            }
        )
    packs = [
        {
            "name": name,
            "selected": name in ctx.engine.policies,
            "versions": [v.pack.version for v in ctx.engine.registry.versions(name)],
        }
        for name in ctx.engine.registry.names()
    ]
    return page.render(
        "rulebook.html",
        ref=book.ref,
        title=t.pick(base.title.zh, base.title.en),
        sections=sections,
        holidays=holidays,
        packs=packs,
        source=book.base.text,
    )


@router.get("/console/rulebook/diagram.svg")
def rulebook_diagram(request: Request) -> Response:
    from shouhou.policy import diagram

    signed_in(request)
    ctx = context_of(request)
    book = ctx.engine.rules_at(ctx.now())
    drawn = diagram.svg(diagram.build(book.base, list(book.holidays)))
    return Response(drawn, media_type="image/svg+xml")
