"""Load packs from YAML (bundled ones ship in ``shouhou/policy/packs``), with clear errors."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
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


def read_yaml(text: str, origin: str) -> dict[str, Any]:
    """A pack's YAML as a mapping; PolicyError for anything else."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{origin}: a pack is a mapping with name, version, kind …")
    return data


def merged(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``child`` over ``parent``: mappings merge key by key, anything else is replaced."""
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def parse_pack(
    text: str, origin: str = "<text>", parents: Mapping[str, LoadedPack] | None = None
) -> LoadedPack:
    """Validate one pack's YAML text; PolicyError says what is wrong and where.

    A base pack may say ``extends: NAME``: it then holds only what differs from that pack,
    which must be among ``parents``.
    """
    data = read_yaml(text, origin)
    parent_name = data.pop("extends", None)
    if parent_name is not None:
        parent = (parents or {}).get(str(parent_name))
        if parent is None:
            raise PolicyError(f"{origin}: extends unknown pack {parent_name!r}")
        inherited = read_yaml(parent.text, parent.origin)
        inherited.pop("extends", None)
        data = merged(inherited, data)
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
        found = [(line_of(text, err["loc"]), err) for err in exc.errors()]
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or '(pack)'}"
            f"{f' (line {line})' if line else ''}: {err['msg']}"
            for line, err in found
        ]
        first = next((line for line, _ in found if line), None)
        where = f"{origin}:{first}" if first else origin
        raise PolicyError(f"{where}: invalid {kind} pack:\n" + "\n".join(lines)) from None
    digest = hashlib.sha256(text.encode()).hexdigest()
    return LoadedPack(pack=pack, origin=origin, digest=digest, text=text)


def line_of(text: str, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (keys and list indexes) in ``text``, or of
    the deepest node on the way there that exists; None when the text holds none of it."""
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line: int | None = None
    for step in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(step)), None)
            if pair is None:  # a key that is missing: the line of the mapping that lacks it
                return line
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if step >= len(node.value):
                return line
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: can't read: {exc.strerror}") from None


def load_file(path: Path, parents: Mapping[str, LoadedPack] | None = None) -> LoadedPack:
    """Validate a pack file (one that extends a pack finds it among ``parents``)."""
    return parse_pack(_read(path), str(path), parents)


def parse_all(texts: Iterable[tuple[str, str]]) -> list[LoadedPack]:
    """Validate (text, origin) pairs, each pack after the pack it extends."""
    pending = [(text, origin, read_yaml(text, origin).get("extends")) for text, origin in texts]
    done: dict[str, LoadedPack] = {}
    loaded: list[LoadedPack] = []
    while pending:
        ready = [p for p in pending if p[2] is None or p[2] in done]
        if not ready:
            names = ", ".join(origin for _, origin, _ in pending)
            raise PolicyError(f"packs extend unknown or circular parents: {names}")
        for item in ready:
            pending.remove(item)
            pack = parse_pack(item[0], item[1], done)
            done[pack.pack.name] = pack
            loaded.append(pack)
    return loaded


def _shipped() -> list[tuple[str, str]]:
    root = resources.files("shouhou.policy") / "packs"
    return [
        (entry.read_text(encoding="utf-8"), f"bundled:{entry.name}")
        for entry in sorted(root.iterdir(), key=lambda p: p.name)
        if entry.name.endswith(".yaml")
    ]


def bundled() -> list[LoadedPack]:
    """The packs shipped with shouhou, parents before the packs that extend them."""
    return parse_all(_shipped())


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
        return cls(parse_all([*((_read(p), str(p)) for p in extra), *_shipped()]))

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
        """The base pack ``tmall-standard`` followed by every holiday pack."""
        return [DEFAULT_BASE, *self._holidays()]

    def selection(self, wanted: Sequence[str]) -> list[str]:
        """The packs to run on when ``wanted`` names some: the one base pack named (else
        ``tmall-standard``), then the holiday packs named (else every known one)."""
        for name in wanted:
            self.versions(name)  # an unknown name fails here, listing the known ones
        bases = [n for n in dict.fromkeys(wanted) if self.versions(n)[-1].pack.kind == "base"]
        holidays = [n for n in dict.fromkeys(wanted) if n not in bases]
        if len(bases) > 1:
            raise PolicyError(f"choose one base pack, not {', '.join(bases)}")
        return [*(bases or [DEFAULT_BASE]), *(holidays or self._holidays())]

    def _holidays(self) -> list[str]:
        return [n for n in self.names() if self.versions(n)[-1].pack.kind == "holiday"]


#: The base pack an engine runs on unless another is chosen.
DEFAULT_BASE = "tmall-standard"


def pack_files(folder: Path) -> list[Path]:
    """The pack files (``*.yaml``, ``*.yml``) in ``folder``, by name."""
    if not folder.is_dir():
        raise PolicyError(f"{folder}: not a folder of packs")
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
