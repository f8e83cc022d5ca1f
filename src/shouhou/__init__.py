"""shouhou (售后): an after-sales engine for online marketplaces."""

from __future__ import annotations

__version__ = "0.1.0"
