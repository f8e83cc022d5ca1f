"""Who may see and do what, through a real server: API keys, on-behalf, the role matrix."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from apiserver import ApiServer

#: The callers of the matrix: ``key`` or ``key>on-behalf-of``.
OWNER_BUYER = "buyer:b1"
OTHER_BUYER = "buyer:b2"
OWNER_SELLER = "seller:s1"
OTHER_SELLER = "seller:s2"
AGENT = "agent:a1"
PLATFORM = "platform"
PLATFORM_AS_OWNER = "platform>buyer:b1"
PLATFORM_AS_OTHER = "platform>buyer:b2"
PLATFORM_AS_SELLER = "platform>seller:s1"
EVERYONE = (
    OWNER_BUYER,
    OTHER_BUYER,
    OWNER_SELLER,
    OTHER_SELLER,
    AGENT,
    PLATFORM,
    PLATFORM_AS_OWNER,
    PLATFORM_AS_OTHER,
    PLATFORM_AS_SELLER,
)
#: Who can see order o1 / case c1 (buyer b1, shop s1); the others get 404.
SEES = {OWNER_BUYER, OWNER_SELLER, AGENT, PLATFORM, PLATFORM_AS_OWNER, PLATFORM_AS_SELLER}


def test_a_request_without_a_key_is_refused_with_401_and_a_bearer_challenge(
    api: ApiServer,
) -> None:
    response = api.client().get("/v1/cases")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthenticated"


def test_an_unknown_key_is_refused(api: ApiServer) -> None:
    response = api.client(Authorization="Bearer shk_not-a-real-key").get("/v1/me")

    assert response.status_code == 401


def test_a_revoked_key_stops_working_at_once(api: ApiServer) -> None:
    client = api.client(OWNER_BUYER)
    assert client.get("/v1/me").status_code == 200
    with api.engine.uow_factory() as uow:
        key = next(k for k in uow.keys.all() if str(k.actor) == OWNER_BUYER)
        assert uow.keys.revoke(key.id, api.clock.now())
        uow.commit()

    assert client.get("/v1/me").status_code == 401


def test_keys_are_stored_as_sha256_hashes_never_in_clear(api: ApiServer, tmp_path: Path) -> None:
    token = api.key(AGENT)

    with sqlite3.connect(tmp_path / "api.db") as db:
        rows = db.execute("SELECT hash, prefix, role, subject FROM api_keys").fetchall()

    assert rows == [(hashlib.sha256(token.encode()).hexdigest(), token[:10], "agent", "a1")]
    assert all(token not in str(row) for row in rows)


def test_me_says_which_key_and_which_actor_a_request_runs_as(api: ApiServer) -> None:
    me = api.client(PLATFORM_AS_OWNER).get("/v1/me").json()

    assert me["role"] == "platform"
    assert me["acting_as"] == "buyer:b1"
    assert me["key"].startswith("key_")


def test_only_a_platform_key_may_act_on_behalf(api: ApiServer) -> None:
    response = api.client(AGENT, **{"X-On-Behalf-Of": "buyer:b1"}).get("/v1/me")

    assert response.status_code == 403
    assert "X-On-Behalf-Of" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "behalf",
    [
        "agent:a1",
        "platform",
        "buyer",
        "buyer:",
        "nobody:x",
        "Buyer:b1",
        "buyer:b1:b2",
        "buyer:b 1",
        "buyer:b/1",
        "buyer:b1,seller:s1",
        "seller:s%31",
        "buyer:" + "x" * 65,
    ],
)
def test_a_platform_key_acts_only_for_a_named_buyer_or_seller(api: ApiServer, behalf: str) -> None:
    response = api.client(f"platform>{behalf}").get("/v1/me")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"
    assert "X-On-Behalf-Of" in response.json()["error"]["message"]


@pytest.mark.parametrize("behalf", ["buyer:b1", "seller:S_1.a-b", "buyer:" + "x" * 64])
def test_an_on_behalf_id_of_up_to_64_id_characters_is_taken(api: ApiServer, behalf: str) -> None:
    me = api.client(f"platform>{behalf}").get("/v1/me").json()

    assert me["acting_as"] == behalf


def test_a_platform_key_without_on_behalf_is_told_to_name_the_party(
    api: ApiServer, world: str
) -> None:
    platform = api.client(PLATFORM)

    agree = platform.post(f"/v1/cases/{world}/actions/agree", json={"return_address": "SH"})
    case = platform.get(f"/v1/cases/{world}").json()
    on_behalf = api.client(PLATFORM_AS_SELLER).post(
        f"/v1/cases/{world}/actions/agree", json={"return_address": "SH"}
    )

    assert agree.status_code == 403
    assert agree.json()["error"]["code"] == "forbidden"
    assert "send X-On-Behalf-Of: seller:ID" in agree.json()["error"]["message"]
    assert case["available_actions"] == []  # a platform alone takes no party's action here
    assert on_behalf.status_code == 200
    assert "seller:s1" in [e["actor"] for e in on_behalf.json()["timeline"]]


# --- the matrix: roles × endpoints -----------------------------------------------------------


@pytest.fixture
def world(api: ApiServer) -> str:
    """Orders o1 (shop s1, buyer b1) and o2 (s2, b2); case on o1 awaiting the seller."""
    api.order("o1")
    api.order("o2", shop="s2", buyer="b2")
    return str(api.case("o1")["id"])


@pytest.mark.parametrize("who", EVERYONE)
def test_reads_of_a_case_and_its_order_answer_only_those_who_may_see_them(
    api: ApiServer, world: str, who: str
) -> None:
    client = api.client(who)
    expected = 200 if who in SEES else 404

    assert client.get(f"/v1/cases/{world}").status_code == expected
    assert client.get(f"/v1/cases/{world}/events").status_code == expected
    assert client.get("/v1/orders/o1").status_code == expected
    assert client.get("/v1/orders/o1/events").status_code == expected


@pytest.mark.parametrize("who", EVERYONE)
def test_lists_show_each_caller_only_what_they_may_see(
    api: ApiServer, world: str, who: str
) -> None:
    client = api.client(who)

    cases = [c["id"] for c in client.get("/v1/cases").json()["items"]]
    orders = {o["id"] for o in client.get("/v1/orders").json()["items"]}
    # asking for someone else's cases by filter shows nothing either
    snooping = client.get("/v1/cases", params={"buyer": "b1", "shop": "s1"}).json()["items"]
    params = {"buyer": "b1", "shop": "s1"}
    snooped_orders = {o["id"] for o in client.get("/v1/orders", params=params).json()["items"]}

    assert cases == ([world] if who in SEES else [])
    assert [c["id"] for c in snooping] == ([world] if who in SEES else [])
    mine = {
        OWNER_BUYER: {"o1"},
        OTHER_BUYER: {"o2"},
        OWNER_SELLER: {"o1"},
        OTHER_SELLER: {"o2"},
        PLATFORM_AS_OWNER: {"o1"},
        PLATFORM_AS_OTHER: {"o2"},
        PLATFORM_AS_SELLER: {"o1"},
    }
    assert orders == mine.get(who, {"o1", "o2"})
    assert snooped_orders == {"o1"} & mine.get(who, {"o1", "o2"})


#: Expected status of each case action by caller: the seller's agree, the buyer's withdraw.
ACTIONS = {
    "agree": {
        OWNER_BUYER: 403,
        OTHER_BUYER: 404,
        OWNER_SELLER: 200,
        OTHER_SELLER: 404,
        AGENT: 403,
        PLATFORM: 403,  # the platform is no party: it names the one it acts for
        PLATFORM_AS_OWNER: 403,
        PLATFORM_AS_OTHER: 404,
        PLATFORM_AS_SELLER: 200,
    },
    "withdraw": {
        OWNER_BUYER: 200,
        OTHER_BUYER: 404,
        OWNER_SELLER: 403,
        OTHER_SELLER: 404,
        AGENT: 403,
        PLATFORM: 403,
        PLATFORM_AS_OWNER: 200,
        PLATFORM_AS_OTHER: 404,
        PLATFORM_AS_SELLER: 403,
    },
}


@pytest.mark.parametrize(
    ("action", "who", "status"),
    [(a, who, status) for a, row in ACTIONS.items() for who, status in row.items()],
)
def test_case_actions_are_allowed_to_the_right_party_only(
    api: ApiServer, world: str, action: str, who: str, status: int
) -> None:
    body = {"return_address": "Shanghai"} if action == "agree" else None
    response = api.client(who).post(f"/v1/cases/{world}/actions/{action}", json=body)

    assert response.status_code == status, response.text
    if status != 200:
        assert response.json()["error"]["code"] == {403: "forbidden", 404: "not_found"}[status]
        assert api.client(AGENT).get(f"/v1/cases/{world}").json()["version"] == 1


@pytest.mark.parametrize("who", EVERYONE)
def test_applying_needs_the_orders_buyer(api: ApiServer, who: str) -> None:
    api.order("o1")
    body = {"order": "o1", "kind": "refund_only", "reason": "quality", "amount": 100}

    response = api.client(who).post("/v1/cases", json=body)

    buyer_side = {OWNER_BUYER, PLATFORM_AS_OWNER}
    seen_not_buyer = SEES - buyer_side
    expected = 201 if who in buyer_side else 403 if who in seen_not_buyer else 404
    assert response.status_code == expected, response.text


@pytest.mark.parametrize("who", EVERYONE)
def test_only_the_platform_records_orders_and_manages_webhooks(api: ApiServer, who: str) -> None:
    client = api.client(who)
    order = {"id": "o9", "shop": "s1", "buyer": "b1", "total": 100}

    placed = client.post("/v1/orders", json=order).status_code
    hooks = client.get("/v1/webhooks/endpoints").status_code
    events = client.get("/v1/webhooks/events").status_code

    expected = (201, 200, 200) if who == PLATFORM else (403, 403, 403)
    assert (placed, hooks, events) == expected


@pytest.mark.parametrize(
    ("who", "status"),
    [(PLATFORM, 200), (AGENT, 200), (OWNER_SELLER, 403), (OWNER_BUYER, 403)],
)
def test_order_moves_belong_to_the_platform_and_agents(
    api: ApiServer, who: str, status: int
) -> None:
    body = {
        "id": "o5",
        "shop": "s1",
        "buyer": "b1",
        "total": 100,
        "paid_at": api.clock.now().isoformat(),
    }
    assert api.client(PLATFORM).post("/v1/orders", json=body).status_code == 201

    response = api.client(who).post(
        "/v1/orders/o5/actions/ship", json={"carrier": "SF", "waybill": "1"}
    )

    assert response.status_code == status, response.text


@pytest.mark.parametrize("who", EVERYONE)
def test_every_caller_may_read_the_rulebooks(api: ApiServer, who: str) -> None:
    client = api.client(who)

    names = [p["name"] for p in client.get("/v1/policies").json()]

    assert "tmall-standard" in names
    pack = client.get("/v1/policies/tmall-standard").json()
    assert pack["name"] == "tmall-standard"
