"""Settings from the environment, with defaults that need no set-up."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///var/shouhou.db"
DEFAULT_ATTACHMENTS_DIR = "var/attachments"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    attachments_dir: str = DEFAULT_ATTACHMENTS_DIR
    #: A folder of rulebook packs read at start besides the bundled ones (``serve --policy``).
    policy_dir: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("SHOUHOU_DATABASE_URL", DEFAULT_DATABASE_URL),
            attachments_dir=os.environ.get("SHOUHOU_ATTACHMENTS_DIR", DEFAULT_ATTACHMENTS_DIR),
            policy_dir=os.environ.get("SHOUHOU_POLICY_DIR") or None,
        )
