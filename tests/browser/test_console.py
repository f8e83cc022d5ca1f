"""The web console in a real browser: whole cases worked by a buyer, a seller and an agent."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from apiserver import ApiServer
from browsing import PHONE, Browsing, screenshot
from playwright.sync_api import Page, expect

from shouhou.hanzi import traditional
from shouhou.testing import evidence_file

pytestmark = pytest.mark.slow


def open_case_from_list(page: Page, case_id: str, action_label: str) -> None:
    """Click the action button of ``case_id``'s row in a case list."""
    row = page.locator("tr", has=page.get_by_role("link", name=case_id, exact=True))
    row.get_by_role("link", name=action_label).click()
    page.wait_for_url(f"**/console/cases/{case_id}*")


def act(page: Page, action: str, fields: dict[str, str] | None = None) -> None:
    """Open the form of ``action`` on a case page, fill it and send it."""
    form = page.locator(f"#act-{action}")
    if form.get_attribute("open") is None:
        form.locator("summary").click()
    for label, value in (fields or {}).items():
        control = form.get_by_label(label, exact=True)
        if control.evaluate("el => el.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()


def apply_on(page: Page, server: ApiServer, order: str, kind: str, reason: str) -> str:
    """The buyer applies from the order page; the new case's id."""
    page.goto(f"{server.url}/console/orders/{order}")
    page.get_by_label("What you ask for").select_option(kind)
    page.get_by_label("Reason", exact=True).select_option(reason)
    with page.expect_navigation():
        page.get_by_role("button", name="Apply").click()
    found = re.search(r"/console/cases/([^/?#]+)", page.url)
    assert found, page.url
    return found.group(1)


def status_of(page: Page) -> str:
    return page.locator("h1 .status").inner_text()


def test_a_whole_return_from_the_application_to_the_refund(
    browsing: Browsing, server: ApiServer
) -> None:
    server.order("o1", shop="s1", buyer="b1")
    buyer = browsing.sign_in("buyer:b1")
    screenshot(buyer, "buyer-orders")
    # only what the rulebook allows on this order is offered, with the refundable amount
    buyer.goto(f"{server.url}/console/orders/o1")
    expect(buyer.get_by_text("Refundable now: ¥199.00")).to_be_visible()
    kinds = buyer.get_by_label("What you ask for").locator("option").all_inner_texts()
    assert "return refund" in kinds and "refund only" in kinds
    case_id = apply_on(buyer, server, "o1", "return_refund", "quality")
    expect(buyer.locator(".next-text")).to_contain_text("The seller must act by")
    screenshot(buyer, "buyer-case")

    seller = browsing.sign_in("seller:s1")
    expect(seller).to_have_url(re.compile(r"/console/inbox$"))
    expect(seller.locator("tr", has_text=case_id).locator(".at-zero")).to_contain_text(
        "then: the request is agreed automatically"
    )
    screenshot(seller, "seller-inbox")
    open_case_from_list(seller, case_id, "Agree")
    act(seller, "agree", {"Return address": "杭州市余杭区文一西路 1 号 售后部"})
    expect(seller.locator("h1 .status")).to_have_text("awaiting buyer return")

    buyer.goto(f"{server.url}/console/cases/{case_id}")
    expect(buyer.get_by_text("杭州市余杭区文一西路 1 号 售后部")).to_be_visible()
    # the seller's page, left open, follows the case without a reload
    act(buyer, "ship_return", {"Carrier": "SF Express", "Waybill number": "SF1234567890"})
    expect(buyer.locator("h1 .status")).to_have_text("awaiting seller receipt")
    expect(seller.locator("h1 .status")).to_have_text("awaiting seller receipt", timeout=10_000)

    act(seller, "note", {"Step": "contacted", "What happened": "Called the buyer"})
    expect(seller.locator("#log-h + ul")).to_contain_text("Called the buyer")
    act(seller, "confirm_receipt")
    expect(seller.locator("h1 .status")).to_have_text("refunded")
    act(seller, "classify", {"Category": "quality defect", "Cause": "product_quality"})
    expect(seller.get_by_text("Classified: quality defect")).to_be_visible()
    expect(seller.locator(".refunded")).to_have_text("¥199.00")
    buyer.reload()
    expect(buyer.locator("h1 .status")).to_have_text("refunded")
    expect(buyer.locator(".refunded")).to_have_text("¥199.00")
    buyer.goto(f"{server.url}/console/orders")
    order_row = buyer.locator("tr", has=buyer.get_by_role("link", name="o1", exact=True))
    expect(order_row).to_contain_text("¥199.00")


def test_an_intervention_from_the_buyers_request_to_the_agents_ruling(
    browsing: Browsing, server: ApiServer, tmp_path: Path
) -> None:
    server.order("o2", shop="s1", buyer="b2")
    buyer = browsing.sign_in("buyer:b2")
    case_id = apply_on(buyer, server, "o2", "refund_only", "not_as_described")
    # before the seller refuses, the page says from when the platform may be asked
    expect(buyer.locator(".next")).to_contain_text("You can ask the platform to step in from")

    seller = browsing.sign_in("seller:s1")
    open_case_from_list(seller, case_id, "Refuse")
    act(seller, "refuse", {"Reason": "The goods match the listing photos"})
    expect(seller.locator("h1 .status")).to_have_text("seller refused")

    buyer.goto(f"{server.url}/console/cases/{case_id}")
    act(buyer, "request_intervention", {"Note": "The colour is wrong"})
    expect(buyer.locator("h1 .status")).to_have_text("in intervention")
    photo = tmp_path / "photo.png"
    photo.write_bytes(evidence_file("image/png"))
    form = buyer.locator("#act-submit_evidence")
    form.locator("summary").click()
    form.get_by_label("What happened", exact=True).fill("The shirt came in red, I ordered blue")
    form.get_by_label("Photos or documents").set_input_files(str(photo))
    expect(form.locator("output.uploaded")).to_contain_text("photo.png ✓")
    with buyer.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(buyer.locator(".evidence img")).to_have_count(1)
    act(buyer, "complete_evidence")

    # nobody acts in the seller's handling time: the case goes to review
    server.clock.advance(timedelta(days=4))
    server.engine.run_due()

    agent = browsing.sign_in("agent:a1")
    expect(agent.locator("table.cases")).to_contain_text(case_id)
    screenshot(agent, "agent-queue")
    agent.get_by_role("link", name=case_id, exact=True).first.click()
    expect(agent.locator(".evidence img")).to_have_count(1)
    ruling = agent.locator("#act-rule")
    ruling.get_by_label("Outcome").select_option("partial_refund")
    ruling.get_by_label("Liable party").select_option("seller")
    ruling.get_by_label("Reason", exact=True).fill("The photos show another colour")
    ruling.get_by_label("Amount (yuan)").fill("50.00")
    ruling.get_by_role("button", name="Preview the refund and freight").click()
    expect(ruling.locator("output.preview")).to_contain_text("¥50.00")
    screenshot(agent, "agent-ruling")
    with agent.expect_navigation():
        ruling.get_by_role("button", name="Send the ruling").click()
    expect(agent.locator("h1 .status")).to_have_text("refunded")
    buyer.reload()
    expect(buyer.locator(".refunded")).to_have_text("¥50.00")


def test_zh_hant_shows_traditional_characters_on_every_page_visited(
    browsing: Browsing, server: ApiServer
) -> None:
    server.order("o3", shop="s1", buyer="b3")
    case_id = server.case("o3", buyer="b3")["id"]
    page = browsing.sign_in("buyer:b3")
    page.get_by_label("Language").select_option("zh-Hant")
    with page.expect_navigation():
        page.get_by_role("button", name="Switch").click()
    seller = browsing.sign_in("seller:s1", lang="zh-Hant")
    agent = browsing.sign_in("agent:a1", lang="zh-Hant")
    visits = [
        (page, "/console/orders"),
        (page, "/console/orders/o3"),
        (page, f"/console/cases/{case_id}"),
        (page, "/console/complaints"),
        (page, "/console/rulebook"),
        (seller, "/console/inbox"),
        (seller, f"/console/cases/{case_id}"),
        (seller, "/console/shop"),
        (agent, "/console/queue"),
        (agent, "/console/cases"),
    ]
    for who, path in visits:
        who.goto(server.url + path)
        # left out: the pack's source text, shown as written, and the switch's 简体中文,
        # the name of the other script in itself (marked lang=zh-Hans)
        text = who.evaluate(
            "() => { const b = document.body.cloneNode(true);"
            " b.querySelectorAll('pre.source, [lang=zh-Hans]').forEach(e => e.remove());"
            " return b.innerText; }"
        )
        assert re.search(r"[\u4e00-\u9fff]", text), path
        simplified = sorted({ch for ch in text if traditional(ch) != ch})
        assert simplified == [], f"{path}: simplified characters {''.join(simplified)}"
        assert who.locator("html").get_attribute("lang") == "zh-Hant"
    page.goto(f"{server.url}/console/cases/{case_id}")
    expect(page.locator("h1")).to_contain_text("售後單")
    screenshot(page, "buyer-case-zh-hant")
    phone = browsing.sign_in("buyer:b3", lang="zh-Hant", width=PHONE["width"])
    phone.goto(f"{server.url}/console/cases/{case_id}")
    expect(phone.locator("h1")).to_contain_text("售後單")
    screenshot(phone, "buyer-case-zh-hant")


def test_a_buyer_typing_another_buyers_case_gets_404(browsing: Browsing, server: ApiServer) -> None:
    server.order("o4", shop="s1", buyer="b4")
    theirs = server.case("o4", buyer="b4")["id"]
    page = browsing.sign_in("buyer:b5")
    answer = page.goto(f"{server.url}/console/cases/{theirs}")
    assert answer is not None and answer.status == 404
    expect(page.locator(".error")).to_contain_text("no such page")
    assert page.goto(f"{server.url}/console/orders/o4").status == 404  # type: ignore[union-attr]
    assert page.goto(f"{server.url}/console/cases/{theirs}/version").status == 404  # type: ignore[union-attr]
    # the same case is there for its own buyer and the shop's seller
    owner = browsing.sign_in("buyer:b4")
    assert owner.goto(f"{server.url}/console/cases/{theirs}").status == 200  # type: ignore[union-attr]
    other_shop = browsing.sign_in("seller:s9")
    assert other_shop.goto(f"{server.url}/console/cases/{theirs}").status == 404  # type: ignore[union-attr]


def test_a_form_posted_without_its_csrf_token_is_refused(
    browsing: Browsing, server: ApiServer
) -> None:
    server.order("o5", shop="s1", buyer="b6")
    case_id = server.case("o5", buyer="b6")["id"]
    page = browsing.sign_in("buyer:b6")
    url = f"{server.url}/console/cases/{case_id}/act/withdraw"
    missing = page.request.post(url, form={})
    assert missing.status == 403
    assert "did not come from this site" in missing.text()
    wrong = page.request.post(url, form={"csrf": "not-the-token"})
    assert wrong.status == 403
    api = server.client("buyer:b6").get(f"/v1/cases/{case_id}").json()
    assert api["status"] == "awaiting_seller"  # nothing was done
    # with the page's own token the same form goes through
    page.goto(f"{server.url}/console/cases/{case_id}")
    act(page, "withdraw")
    expect(page.locator("h1 .status")).to_have_text("closed")


def test_the_session_cookie_is_httponly_and_samesite_lax_and_sign_out_ends_it(
    browsing: Browsing, server: ApiServer
) -> None:
    page = browsing.sign_in("buyer:b7")
    cookie = next(c for c in page.context.cookies() if c["name"] == "shouhou_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    answer = page.goto(f"{server.url}/console/orders")
    assert answer is not None and answer.status == 401
    expect(page.get_by_label("API key")).to_be_visible()


#: The main pages of each role, with the names of their screenshots.
PAGES = {
    "buyer:b8": {
        "/console/orders": "buyer-orders",
        "/console/orders/o8": "buyer-order",
        "/console/cases/{case}": "buyer-case",
    },
    "seller:s1": {
        "/console/inbox": "seller-inbox",
        "/console/cases/{case}": "seller-case",
        "/console/shop": "seller-shop",
    },
    "agent:a1": {"/console/queue": "agent-queue", "/console/rulebook": "rulebook"},
}


def test_axe_finds_no_serious_or_critical_violation_on_the_main_pages(
    browsing: Browsing, server: ApiServer, axe_script: Path
) -> None:
    server.order("o8", shop="s1", buyer="b8")
    case_id = server.case("o8", buyer="b8")["id"]
    anonymous = browsing.page(bypass_csp=True)
    anonymous.goto(server.url + "/")
    screenshot(anonymous, "sign-in")
    found = _axe(anonymous, axe_script, "/")
    for who, paths in PAGES.items():
        for width in (1280, PHONE["width"]):
            page = browsing.sign_in(who, bypass_csp=True, width=width)
            for path, name in paths.items():
                page.goto(server.url + path.format(case=case_id))
                found += _axe(page, axe_script, f"{who} {path} at {width}px")
                if width == PHONE["width"]:
                    screenshot(page, name)
    assert found == []


def _axe(page: Page, script: Path, where: str) -> list[str]:
    page.add_script_tag(path=str(script))
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return JSON.stringify(r.violations.map(v => [v.id, v.impact, v.nodes.length,"
        " v.nodes.slice(0, 2).map(n => n.target.join(' '))])); }"
    )
    violations = json.loads(result)
    return [
        f"{where}: {rule} ({impact}, {count} nodes: {targets})"
        for rule, impact, count, targets in violations
        if impact in ("serious", "critical")
    ]
