"""Settings from the environment, with defaults that need no set-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_DATABASE_URL = "sqlite:///var/shouhou.db"
DEFAULT_ATTACHMENTS_DIR = "var/attachments"
#: The marketplace's zone: times in the API and the CLI carry its offset.
DEFAULT_TIMEZONE = "Asia/Shanghai"
TIMEZONE_VARIABLE = "SHOUHOU_TIMEZONE"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    attachments_dir: str = DEFAULT_ATTACHMENTS_DIR
    timezone: str = DEFAULT_TIMEZONE

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("SHOUHOU_DATABASE_URL", DEFAULT_DATABASE_URL),
            attachments_dir=os.environ.get("SHOUHOU_ATTACHMENTS_DIR", DEFAULT_ATTACHMENTS_DIR),
            timezone=os.environ.get(TIMEZONE_VARIABLE, DEFAULT_TIMEZONE),
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
