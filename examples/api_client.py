"""Drive a whole return through the shouhou REST API, as a marketplace would.

    .venv/bin/python examples/api_client.py --url http://127.0.0.1:8000 --platform-key shk_…

The platform records an order and moves it (pay, ship, deliver); the buyer applies for a
return; the seller agrees; the buyer ships the goods back; the seller confirms receipt, and
the buyer is refunded. Buyer and seller act with their own keys when given, otherwise the
platform key acts on their behalf (``X-On-Behalf-Of``). Every write carries an
``Idempotency-Key``, so a retried request never acts twice. Exit status 0 when refunded.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

import httpx


class Api:
    def __init__(self, url: str, key: str, on_behalf_of: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        if on_behalf_of:
            headers["X-On-Behalf-Of"] = on_behalf_of
        self.http = httpx.Client(base_url=url, headers=headers, timeout=30)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST with a fresh Idempotency-Key (retrying with the same key would be safe)."""
        key = str(uuid.uuid4())
        response = self.http.post(path, json=body or {}, headers={"Idempotency-Key": key})
        if response.is_error:
            error = response.json().get("error", {})
            sys.exit(f"{path}: {response.status_code} {error.get('code')}: {error.get('message')}")
        return response.json()

    def get(self, path: str) -> Any:
        response = self.http.get(path)
        response.raise_for_status()
        return response.json()


def step(what: str, case: dict[str, Any]) -> None:
    deadline = case.get("deadline")
    due = f", next: {deadline['name']} by {deadline['due_at']}" if deadline else ""
    print(f"{what:<28} → {case['status']}{due}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--platform-key", required=True)
    parser.add_argument("--buyer-key", help="a buyer:<id> key (default: platform on behalf)")
    parser.add_argument("--seller-key", help="a seller:<shop> key (default: platform on behalf)")
    parser.add_argument("--buyer", default="b-api-demo")
    parser.add_argument("--shop", default="s-api-demo")
    args = parser.parse_args()

    platform = Api(args.url, args.platform_key)
    if args.buyer_key:
        buyer = Api(args.url, args.buyer_key)
        args.buyer = buyer.get("/v1/me")["subject"]
    else:
        buyer = Api(args.url, args.platform_key, on_behalf_of=f"buyer:{args.buyer}")
    if args.seller_key:
        seller = Api(args.url, args.seller_key)
        args.shop = seller.get("/v1/me")["subject"]
    else:
        seller = Api(args.url, args.platform_key, on_behalf_of=f"seller:{args.shop}")

    order_id = "o-" + uuid.uuid4().hex[:10]
    platform.post(
        "/v1/orders",
        {
            "id": order_id,
            "shop": args.shop,
            "buyer": args.buyer,
            "total": 25900,  # fen: ¥259.00, shipping included
            "free_shipping": True,
            "items": [{"sku": "kettle-1l", "title": "电热水壶 1L", "unit_price": 25900}],
        },
    )
    platform.post(f"/v1/orders/{order_id}/actions/pay")
    platform.post(f"/v1/orders/{order_id}/actions/ship", {"carrier": "SF", "waybill": "SF1001"})
    order = platform.post(f"/v1/orders/{order_id}/actions/deliver")
    print(f"order {order_id}: {order['status']}, ¥{order['total'] / 100:.2f}")

    case = buyer.post(
        "/v1/cases",
        {"order": order_id, "kind": "return_refund", "reason": "quality", "amount": 25900},
    )
    case_id = case["id"]
    step(f"buyer applies ({case_id})", case)
    case = seller.post(
        f"/v1/cases/{case_id}/actions/agree", {"return_address": "杭州市余杭区 … 售后部"}
    )
    step("seller agrees", case)
    case = buyer.post(
        f"/v1/cases/{case_id}/actions/ship_return",
        {"carrier": "YTO", "waybill": "YT2002", "method": "express"},
    )
    step("buyer ships the return", case)
    case = seller.post(f"/v1/cases/{case_id}/actions/confirm_receipt")
    step("seller confirms receipt", case)

    print(f"refunded ¥{case['refund_amount'] / 100:.2f}: {case['explanation']['en']}")
    return 0 if case["status"] == "refunded" else 1


if __name__ == "__main__":
    sys.exit(main())
