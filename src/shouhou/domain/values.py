"""Money in fen, durations like ``1d12h``, and the time zone policies are written in."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``30m``, ``72h``, ``5d`` or ``1d12h``; raise ValueError otherwise."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"bad duration {text!r}: write it like 90s, 30m, 72h, 5d or 1d12h")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest spelling of a whole-second duration (``1d12h``); ``0s`` for zero."""
    total = int(delta.total_seconds())
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    parts = []
    for unit, size in _UNITS:
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


_UNITS_ZH = (("天", 86400), ("小时", 3600), ("分钟", 60), ("秒", 1))


def format_duration_zh(delta: timedelta) -> str:
    """A whole-second duration in Chinese (``1天12小时``)."""
    total = int(delta.total_seconds())
    parts = []
    for unit, size in _UNITS_ZH:
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0秒"


def parse_yuan(text: str | int | float | Decimal) -> int:
    """``"199.00"`` yuan to 19900 fen; at most two decimals; raise ValueError otherwise."""
    try:
        amount = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise ValueError(f'bad amount {text!r}: write yuan like "199.00"') from exc
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"bad amount {text!r}: at most two decimals of yuan")
    return int(amount * 100)


def format_yuan(fen: int) -> str:
    """19900 fen as ``"199.00"``."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def percent_of(fen: int, rate: Decimal) -> int:
    """``rate`` (a fraction) of an amount, rounded half up to the fen."""
    return int((Decimal(fen) * rate).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def require_aware(moment: datetime, what: str = "time") -> datetime:
    """Return ``moment`` if it is timezone-aware; raise ValueError for a naive one."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must carry a timezone: {moment.isoformat()}")
    return moment


def local(moment: datetime) -> datetime:
    """The same instant in Asia/Shanghai time, for display and policy windows."""
    return moment.astimezone(SHANGHAI)


def format_time(moment: datetime, zone: tzinfo = SHANGHAI) -> str:
    """The one format a time leaves the system in: ``2023-03-08T12:00:00+08:00``, to the
    second, with the offset of ``zone``."""
    return require_aware(moment).astimezone(zone).isoformat(timespec="seconds")
