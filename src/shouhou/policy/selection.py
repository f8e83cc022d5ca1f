"""Naming rulebooks on the command line: ``tmall-standard``, ``cny-2022``, ``taobao+cny-2022``,
``tmall-standard@1`` or a pack file's path, as the policy lab's commands take them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shouhou.errors import PolicyError
from shouhou.policy.loader import LoadedPack, Registry, load_file
from shouhou.policy.schema import HolidayPack

#: The base pack a selection of holiday packs alone is laid over.
DEFAULT_BASE = "tmall-standard"


@dataclass(frozen=True)
class Selection:
    """A rulebook named on the command line: its text, and its packs, base first."""

    label: str
    packs: tuple[LoadedPack, ...]

    @property
    def names(self) -> list[str]:
        return [p.pack.name for p in self.packs]

    def registry(self) -> Registry:
        """A registry of exactly these packs: an engine on it runs these versions."""
        return Registry(self.packs)


def _is_file(part: str) -> bool:
    return part.endswith((".yaml", ".yml")) or "/" in part


def registry_for(specs: Sequence[str]) -> Registry:
    """The bundled packs plus every pack file the ``specs`` name."""
    files = sorted({Path(part) for spec in specs for part in spec.split("+") if _is_file(part)})
    return Registry.default(files)


def _pack(registry: Registry, part: str) -> LoadedPack:
    if _is_file(part):
        parents = {name: registry.versions(name)[-1] for name in registry.names()}
        return load_file(Path(part), parents)
    name, _, version = part.partition("@")
    versions = registry.versions(name)
    if not version:
        return versions[-1]
    found = next((v for v in versions if str(v.pack.version) == version), None)
    if found is None:
        have = ", ".join(str(v.pack.version) for v in versions)
        raise PolicyError(f"{name} has no version {version}; it has {have}")
    return found


def select(registry: Registry, spec: str) -> Selection:
    """The packs ``spec`` names, joined by ``+``; holiday packs alone go over tmall-standard."""
    packs = [_pack(registry, part) for part in spec.split("+") if part]
    if not packs:
        raise PolicyError("name a pack, e.g. tmall-standard or tmall-standard+cny-2022")
    if isinstance(packs[0].pack, HolidayPack):
        packs.insert(0, registry.versions(DEFAULT_BASE)[-1])
    for extra in packs[1:]:
        if not isinstance(extra.pack, HolidayPack):
            raise PolicyError(f"{extra.ref}: only the first pack of {spec!r} may be a base pack")
    # a pack file is called by its pack's name (the path says nothing to the reader)
    label = "+".join(
        _pack(registry, part).pack.name if _is_file(part) else part
        for part in spec.split("+")
        if part
    )
    return Selection(label=label, packs=tuple(packs))
