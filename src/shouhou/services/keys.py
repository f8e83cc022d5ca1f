"""API keys: creating one for a principal, and authenticating a request by its secret."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from shouhou.domain.model import Actor, Role
from shouhou.errors import Invalid
from shouhou.services.ports import ApiKey, ApiUnitOfWork

#: Every API key starts with this, so leaked keys are easy to find in logs and code.
KEY_PREFIX = "shk_"
#: Roles an API key can be bound to (``system`` acts only through deadlines).
KEY_ROLES = (Role.BUYER, Role.SELLER, Role.AGENT, Role.PLATFORM)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_principal(text: str) -> Actor:
    """``buyer:b1``, ``seller:s1``, ``agent:a1`` or ``platform``; ``invalid`` otherwise."""
    actor = Actor.parse(text)
    if actor.role not in KEY_ROLES:
        raise Invalid(f"an API key can't be bound to role {actor.role.value}")
    if actor.role == Role.PLATFORM and actor.id:
        raise Invalid("a platform key has no subject: write just 'platform'")
    if actor.role != Role.PLATFORM and not actor.id:
        raise Invalid(f"a {actor.role.value} key needs a subject, like {actor.role.value}:x1")
    return actor


def new_token() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def create_key(uow: ApiUnitOfWork, principal: str, name: str, now: datetime) -> tuple[ApiKey, str]:
    """A new API key bound to ``principal``; returns the key and its secret (shown once)."""
    actor = parse_principal(principal)
    token = new_token()
    key = ApiKey(
        id="key_" + secrets.token_hex(6),
        prefix=token[: len(KEY_PREFIX) + 6],
        role=actor.role,
        subject=actor.id,
        name=name,
        created_at=now,
    )
    with uow:
        uow.keys.add(key, hash_token(token))
        uow.commit()
    return key, token


def authenticate(uow: ApiUnitOfWork, token: str) -> ApiKey | None:
    """The active key whose secret is ``token``, or None."""
    with uow:
        key = uow.keys.by_hash(hash_token(token))
    if key is None or key.revoked_at is not None:
        return None
    return key
