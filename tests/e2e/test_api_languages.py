"""The API's error messages follow Accept-Language: en, zh-Hans or zh-Hant."""

from __future__ import annotations

from apiserver import ApiServer

from shouhou.hanzi import traditional


def test_an_error_is_in_english_when_no_language_spoken_here_is_asked_for(api: ApiServer) -> None:
    for header in ({}, {"Accept-Language": "fr-FR, de;q=0.8"}):
        answer = api.client(**header).get("/v1/cases")
        assert answer.status_code == 401
        assert answer.json()["error"]["message"] == "send an API key: Authorization: Bearer shk_…"


def test_a_server_message_is_translated_whole(api: ApiServer) -> None:
    hans = api.client(**{"Accept-Language": "zh-CN,zh;q=0.9"}).get("/v1/cases").json()["error"]
    hant = api.client(**{"Accept-Language": "zh-TW"}).get("/v1/cases").json()["error"]
    assert hans["message"] == "请发送 API 密钥: Authorization: Bearer shk_…"
    assert hant["message"] == "請傳送 API 金鑰: Authorization: Bearer shk_…"
    assert traditional(hant["message"]) == hant["message"]
    unknown = api.client(**{"Accept-Language": "zh-Hans"}).get("/v1/nowhere").json()["error"]
    assert unknown["message"] == "没有路由 GET /v1/nowhere"


def test_a_refusal_says_its_kind_in_chinese_and_keeps_the_english_particulars(
    api: ApiServer,
) -> None:
    api.order("o1")
    case = api.case("o1")
    seller = api.client("seller:s1", **{"Accept-Language": "zh-Hant"})
    answer = seller.post(f"/v1/cases/{case['id']}/actions/confirm_receipt", json={})
    error = answer.json()["error"]
    assert answer.status_code == 409 and error["code"] == "not_allowed"
    assert error["message"] == "售後單目前狀態下不允許此操作。"
    assert "confirm_receipt" in error["detail"] or "awaiting_seller" in error["detail"]
    assert error["rule"] == "shouhou/transition-table"
    english = api.client("seller:s1").post(
        f"/v1/cases/{case['id']}/actions/confirm_receipt", json={}
    )
    assert english.json()["error"]["message"] == error["detail"]
    assert "detail" not in english.json()["error"]
