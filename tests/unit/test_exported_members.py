"""The public surface of ``import shouhou``: ``__all__`` names exactly what the package gives,
each name resolves, and importing the package loads none of it until it is used."""

from __future__ import annotations
import __future__

import subprocess
import sys
from types import ModuleType

import shouhou

#: Private names the package exports on purpose.
INCLUDED_PRIVATE = ("__version__",)


def _exported() -> set[str]:
    """The names the package module holds that a caller may use, once every lazy one is loaded."""
    for name in shouhou.__all__:
        getattr(shouhou, name)
    return {
        name
        for name, value in vars(shouhou).items()
        if (not name.startswith("_") or name in INCLUDED_PRIVATE)
        and not isinstance(value, (ModuleType, __future__._Feature))
    }


def test_all_names_exactly_the_members_the_package_exports() -> None:
    assert len(shouhou.__all__) == len(set(shouhou.__all__))
    assert set(shouhou.__all__) == _exported()


def test_every_exported_name_resolves_to_a_shouhou_object() -> None:
    for name in shouhou.__all__:
        value = getattr(shouhou, name)
        if name != "__version__":
            assert value.__module__.startswith("shouhou."), name


def test_dir_lists_every_exported_name_before_it_is_loaded() -> None:
    assert set(shouhou.__all__) <= set(dir(shouhou))


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        shouhou.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("shouhou.NoSuchThing resolved")


def test_importing_the_package_loads_neither_the_engine_nor_a_framework() -> None:
    heavy = ("shouhou.bootstrap", "shouhou.api", "sqlalchemy", "fastapi", "pydantic", "yaml")
    code = f"import sys, shouhou; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
