"""Webhook signatures, in the form of the Standard Webhooks specification.

Each delivery carries three headers: ``webhook-id`` (the event id, the same on every retry),
``webhook-timestamp`` (Unix seconds when this attempt was signed) and ``webhook-signature``
(``v1,`` + base64 of HMAC-SHA256 over ``"{id}.{timestamp}.{body}"``, keyed with the bytes that
the endpoint secret ``whsec_…`` encodes). A receiver recomputes the signature with
:func:`verify` and refuses stale timestamps, which stops replays of captured requests.

Only the standard library is used, so receivers can copy this file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
#: How far a delivery's timestamp may be from the receiver's clock, in seconds.
TOLERANCE_S = 300


class WebhookVerificationError(Exception):
    """A delivery whose signature or timestamp does not check out."""


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX}")
    return base64.b64decode(secret[len(SECRET_PREFIX) :])


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """All the headers of a signed delivery."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def verify(
    secret: str, received: Mapping[str, str], body: bytes, *, now: int, tolerance: int = TOLERANCE_S
) -> None:
    """Check a delivery's signature and timestamp; raise WebhookVerificationError otherwise.

    ``received`` maps lower-case header names to values; ``now`` is the receiver's Unix time.
    """
    try:
        msg_id = received["webhook-id"]
        timestamp = int(received["webhook-timestamp"])
        signatures = received["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise WebhookVerificationError(f"missing or malformed webhook header: {exc}") from None
    if abs(now - timestamp) > tolerance:
        raise WebhookVerificationError(f"timestamp {timestamp} is more than {tolerance}s away")
    expected = sign(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, given) for given in signatures):
        raise WebhookVerificationError("no signature matches")
