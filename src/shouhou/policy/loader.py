"""Load packs from YAML (bundled ones ship in ``shouhou/policy/packs``), with clear errors."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from shouhou.errors import PolicyError
from shouhou.policy.schema import BasePack, HolidayPack, Pack

_PACK = TypeAdapter(Pack)


@dataclass(frozen=True)
class LoadedPack:
    """A validated pack, where it came from, and the hash of its text."""

    pack: BasePack | HolidayPack
    origin: str
    digest: str
    text: str

    @property
    def ref(self) -> str:
        return f"{self.pack.name}@{self.pack.version}"


def parse_pack(text: str, origin: str = "<text>") -> LoadedPack:
    """Validate one pack's YAML text; PolicyError says what is wrong and where."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{origin}: a pack is a mapping with name, version, kind …")
    kind = data.get("kind")
    model: type[BasePack] | type[HolidayPack]
    if kind == "base":
        model = BasePack
    elif kind == "holiday":
        model = HolidayPack
    else:
        raise PolicyError(f"{origin}: kind must be 'base' or 'holiday', not {kind!r}")
    try:
        pack = model.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or '(pack)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise PolicyError(f"{origin}: invalid {kind} pack:\n" + "\n".join(lines)) from None
    digest = hashlib.sha256(text.encode()).hexdigest()
    return LoadedPack(pack=pack, origin=origin, digest=digest, text=text)


def load_file(path: Path) -> LoadedPack:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: can't read: {exc.strerror}") from None
    return parse_pack(text, str(path))


def bundled() -> list[LoadedPack]:
    """The packs shipped with shouhou, in name order."""
    root = resources.files("shouhou.policy") / "packs"
    return [
        parse_pack(entry.read_text(encoding="utf-8"), f"bundled:{entry.name}")
        for entry in sorted(root.iterdir(), key=lambda p: p.name)
        if entry.name.endswith(".yaml")
    ]


class Registry:
    """Every known version of every pack; picks the version in force at an instant."""

    def __init__(self, packs: Iterable[LoadedPack]) -> None:
        self._packs: dict[str, list[LoadedPack]] = {}
        for loaded in packs:
            versions = self._packs.setdefault(loaded.pack.name, [])
            for other in versions:
                if other.pack.version == loaded.pack.version and other.digest != loaded.digest:
                    raise PolicyError(
                        f"{loaded.ref} from {loaded.origin} differs from the one in "
                        f"{other.origin}: a published version never changes"
                    )
            if all(v.pack.version != loaded.pack.version for v in versions):
                versions.append(loaded)
            versions.sort(key=lambda v: v.pack.version)

    @classmethod
    def default(cls, extra: Iterable[Path] = ()) -> Registry:
        return cls([*bundled(), *(load_file(p) for p in extra)])

    def names(self) -> list[str]:
        return sorted(self._packs)

    def versions(self, name: str) -> list[LoadedPack]:
        if name not in self._packs:
            known = ", ".join(self.names())
            raise PolicyError(f"unknown pack {name!r}; known packs: {known}")
        return list(self._packs[name])

    def in_force(self, name: str, at: datetime | None = None) -> LoadedPack:
        """The newest version of ``name`` whose ``effective_from`` is not after ``at``."""
        candidates = [
            v
            for v in self.versions(name)
            if at is None or v.pack.effective_from is None or v.pack.effective_from <= at
        ]
        if not candidates:
            raise PolicyError(f"no version of {name} is in force at {at}")
        return candidates[-1]

    def default_selection(self) -> list[str]:
        """The base pack ``tmall-standard`` followed by every bundled holiday pack."""
        holidays = [n for n in self.names() if self.versions(n)[-1].pack.kind == "holiday"]
        return ["tmall-standard", *holidays]
