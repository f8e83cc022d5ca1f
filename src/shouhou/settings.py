"""Settings from the environment, with defaults that need no set-up."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///var/shouhou.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL

    @classmethod
    def from_env(cls) -> Settings:
        return cls(database_url=os.environ.get("SHOUHOU_DATABASE_URL", DEFAULT_DATABASE_URL))
