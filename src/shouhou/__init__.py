"""shouhou (售后): an after-sales engine for online marketplaces.

The public surface, importable from here::

    from shouhou import Engine, Order, Item, NotAllowed
    engine = Engine.open("sqlite:///var/shop.db")

``import shouhou`` stays light: each name is imported from its module on first use (the
engine pulls in the rulebook loader, ``create_app`` FastAPI), so a program that needs only the
errors or the domain types never loads the rest.
"""

from __future__ import annotations

import importlib
import typing

__version__ = "0.1.0"

#: Every public name and the module it lives in.
_HOMES = {
    # wiring
    "Engine": "shouhou.bootstrap",
    "Settings": "shouhou.settings",
    "SystemClock": "shouhou.clock",
    "VirtualClock": "shouhou.clock",
    "create_app": "shouhou.api.app",
    # the error tree
    "ShouhouError": "shouhou.errors",
    "ActionRefused": "shouhou.errors",
    "NotAllowed": "shouhou.errors",
    "TransitionNotAllowed": "shouhou.errors",
    "NotEligible": "shouhou.errors",
    "Forbidden": "shouhou.errors",
    "Invalid": "shouhou.errors",
    "NotFound": "shouhou.errors",
    "Conflict": "shouhou.errors",
    "PolicyError": "shouhou.errors",
    "ScenarioError": "shouhou.errors",
    # the domain types a caller builds or reads
    "Actor": "shouhou.domain.model",
    "Role": "shouhou.domain.model",
    "Order": "shouhou.domain.model",
    "OrderStatus": "shouhou.domain.model",
    "Item": "shouhou.domain.model",
    "Discounts": "shouhou.domain.model",
    "Promotion": "shouhou.domain.model",
    "ShippingMethod": "shouhou.domain.model",
    "NoReasonReturn": "shouhou.domain.model",
    "Case": "shouhou.domain.model",
    "CaseStatus": "shouhou.domain.model",
    "CaseKind": "shouhou.domain.model",
    "Reason": "shouhou.domain.model",
    "Complaint": "shouhou.domain.model",
    "Attachment": "shouhou.domain.model",
}

__all__ = [
    "ActionRefused",
    "Actor",
    "Attachment",
    "Case",
    "CaseKind",
    "CaseStatus",
    "Complaint",
    "Conflict",
    "Discounts",
    "Engine",
    "Forbidden",
    "Invalid",
    "Item",
    "NoReasonReturn",
    "NotAllowed",
    "NotEligible",
    "NotFound",
    "Order",
    "OrderStatus",
    "PolicyError",
    "Promotion",
    "Reason",
    "Role",
    "ScenarioError",
    "Settings",
    "ShippingMethod",
    "ShouhouError",
    "SystemClock",
    "TransitionNotAllowed",
    "VirtualClock",
    "__version__",
    "create_app",
]

if typing.TYPE_CHECKING:
    from shouhou.api.app import create_app
    from shouhou.bootstrap import Engine
    from shouhou.clock import SystemClock, VirtualClock
    from shouhou.domain.model import (
        Actor,
        Attachment,
        Case,
        CaseKind,
        CaseStatus,
        Complaint,
        Discounts,
        Item,
        NoReasonReturn,
        Order,
        OrderStatus,
        Promotion,
        Reason,
        Role,
        ShippingMethod,
    )
    from shouhou.errors import (
        ActionRefused,
        Conflict,
        Forbidden,
        Invalid,
        NotAllowed,
        NotEligible,
        NotFound,
        PolicyError,
        ScenarioError,
        ShouhouError,
        TransitionNotAllowed,
    )
    from shouhou.settings import Settings


def __getattr__(name: str) -> object:
    """Import a public name from its module on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shouhou' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
