"""Settings from the environment, with defaults that need no set-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_DATABASE_URL = "sqlite:///var/shouhou.db"
DEFAULT_ATTACHMENTS_DIR = "var/attachments"
#: How long the API waits for each next piece of a request body, in seconds.
DEFAULT_BODY_TIMEOUT_S = 30.0
#: Evidence files one actor may upload per marketplace day (Asia/Shanghai).
DEFAULT_UPLOAD_FILES_PER_DAY = 50
#: Evidence bytes one actor may upload per marketplace day (100 MiB).
DEFAULT_UPLOAD_BYTES_PER_DAY = 100 * 1024 * 1024


def _list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be above 0, not {raw!r}")
    return value


#: The marketplace's zone: times in the API and the CLI carry its offset.
DEFAULT_TIMEZONE = "Asia/Shanghai"
TIMEZONE_VARIABLE = "SHOUHOU_TIMEZONE"


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be above 0, not {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    attachments_dir: str = DEFAULT_ATTACHMENTS_DIR
    #: A folder of rulebook packs read at start besides the bundled ones (``serve --policy``).
    policy_dir: str | None = None
    #: Webhook hosts (names, addresses or CIDRs) allowed although they are loopback, private
    #: or otherwise not public: for a receiver on this machine or the local network.
    webhook_allow_hosts: tuple[str, ...] = ()
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    timezone: str = DEFAULT_TIMEZONE
    #: The daily evidence upload quota of each actor: files, and bytes.
    upload_files_per_day: int = DEFAULT_UPLOAD_FILES_PER_DAY
    upload_bytes_per_day: int = DEFAULT_UPLOAD_BYTES_PER_DAY

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("SHOUHOU_DATABASE_URL", DEFAULT_DATABASE_URL),
            attachments_dir=os.environ.get("SHOUHOU_ATTACHMENTS_DIR", DEFAULT_ATTACHMENTS_DIR),
            policy_dir=os.environ.get("SHOUHOU_POLICY_DIR") or None,
            webhook_allow_hosts=_list(os.environ.get("SHOUHOU_WEBHOOK_ALLOW_HOSTS", "")),
            body_timeout_s=_number("SHOUHOU_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT_S),
            timezone=os.environ.get(TIMEZONE_VARIABLE, DEFAULT_TIMEZONE),
            upload_files_per_day=_count(
                "SHOUHOU_UPLOAD_FILES_PER_DAY", DEFAULT_UPLOAD_FILES_PER_DAY
            ),
            upload_bytes_per_day=_count(
                "SHOUHOU_UPLOAD_BYTES_PER_DAY", DEFAULT_UPLOAD_BYTES_PER_DAY
            ),
        )


def display_zone() -> ZoneInfo:
    """The zone of ``$SHOUHOU_TIMEZONE`` (default Asia/Shanghai); ValueError for an unknown one.

    Read on each call (ZoneInfo caches the zone itself), so that a test or a process that sets
    the variable sees it at once.
    """
    name = os.environ.get(TIMEZONE_VARIABLE, DEFAULT_TIMEZONE) or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{TIMEZONE_VARIABLE}={name!r} is not a time zone: name one like Asia/Shanghai"
        ) from None
