"""Scenario files (SPEC §11): build orders, run actions on a virtual clock, check results.

A file is checked whole before anything runs — unknown keys or actions, bad durations, times
going backwards all stop it with exit code 2 and the line. Running prints one JSON line per
action, timeout and expectation; the first failed expectation stops that file (exit code 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain import commands as c
from shouhou.domain import lines
from shouhou.domain.model import (
    Actor,
    Discounts,
    Item,
    NoReasonReturn,
    Order,
    Promotion,
    ShippingMethod,
    parse_enum,
)
from shouhou.domain.values import format_yuan, parse_duration, parse_yuan
from shouhou.errors import ActionRefused, PolicyError, ScenarioError
from shouhou.services.deadlines import Fired
from shouhou.services.views import (
    BUYER_VIEW_FIELDS,
    CASE_VIEW_FIELDS,
    COMPLAINT_VIEW_FIELDS,
    ORDER_VIEW_FIELDS,
    SHOP_VIEW_FIELDS,
    complaint_view,
    shop_view,
)
from shouhou.sim import move_clock
from shouhou.sim.yamlines import Located, line_of, load
from shouhou.testing import MemoryAttachmentStore
from shouhou.times import show

Emit = Callable[[dict[str, Any]], None]

ITEM_KEYS = {"line", "sku", "title", "quantity", "unit_price", "discount"}
DISCOUNT_KEYS = {"shop_coupon", "cross_store", "platform_subsidy"}
TOP_KEYS = {"name", "description", "policy", "start", "shops", "orders", "steps"}
SHOP_KEYS = {"id", "return_address"}
ORDER_KEYS = {
    "id",
    "shop",
    "buyer",
    "total",
    "shipping_fee",
    "free_shipping",
    "items",
    "discounts",
    "promotion",
    "promised_ship_by",
    "shipping_method",
    "no_reason_return",
    "sanbao",
    "freight_insurance",
    "created_at",
    "paid_at",
    "shipped_at",
    "delivered_at",
    "trade_success_at",
}
#: Order facts given as times, and the platform action each stands for when it lies ahead.
ORDER_FACTS = (
    ("paid_at", "pay"),
    ("shipped_at", "ship"),
    ("delivered_at", "deliver"),
    ("trade_success_at", "confirm_receipt"),
)
STEP_KEYS = {
    "at",
    "after",
    "until",
    "actor",
    "action",
    "case",
    "order",
    "complaint",
    "params",
    "expect_error",
    "expect",
    "note",
}
TARGETS = ("case", "order", "complaint")
#: What an ``expect`` may be about, in the order that decides it when several names appear
#: (a complaint's view has ``case`` and ``order`` fields, a case's ``order``, ``shop``, ``buyer``).
EXPECT_TARGETS = ("complaint", "case", "order", "shop", "buyer")
ERROR_CODES = {"not_allowed", "not_eligible", "forbidden", "invalid", "not_found", "conflict"}


@dataclass
class Step:
    line: int
    at: datetime
    action: str | None = None
    actor: str | None = None
    target: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    expect_error: str | None = None
    expect: dict[str, Any] | None = None


@dataclass
class Scenario:
    name: str
    file: str
    start: datetime
    policies: list[str] | None
    orders: list[tuple[Order, list[tuple[datetime, str]]]]
    steps: list[Step]
    #: Each shop's default return address, by shop id.
    shops: dict[str, str | None] = field(default_factory=dict)


# --- parsing -----------------------------------------------------------------------------


def _moment(value: Any, where: str, file: str, line: int) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ScenarioError(f"{where}: bad time {value!r}", file=file, line=line) from None
    if moment.tzinfo is None:
        raise ScenarioError(
            f"{where}: time {value!r} needs a UTC offset, e.g. +08:00", file=file, line=line
        )
    return moment


def _duration(value: Any, where: str, file: str, line: int) -> timedelta:
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}", file=file, line=line) from None


def _unknown(keys: Iterable[str], allowed: Set[str], where: str, file: str, line: int) -> None:
    extra = sorted(set(keys) - allowed)
    if extra:
        if isinstance(keys, Located):
            line = keys.key_lines.get(str(extra[0]), line)
        names, allowed_names = ", ".join(map(str, extra)), ", ".join(sorted(allowed))
        raise ScenarioError(
            f"{where}: unknown key(s) {names}; allowed: {allowed_names}", file=file, line=line
        )


def parse(text: str, file: str = "<scenario>") -> Scenario:
    """Check a scenario file whole; ScenarioError names the first problem and its line."""
    try:
        data = load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ScenarioError(
            f"not valid YAML: {exc.problem}", file=file, line=mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not valid YAML: {exc}", file=file) from None
    if not isinstance(data, Located):
        raise ScenarioError(
            "a scenario is a mapping with name, start, orders and steps", file=file, line=1
        )
    _unknown(data, TOP_KEYS, "scenario", file, data.line)
    for key in ("name", "start", "steps"):
        if key not in data:
            raise ScenarioError(f"scenario needs {key!r}", file=file, line=data.line)
    start = _moment(data["start"], "start", file, data.line)
    policies = data.get("policy")
    if policies is not None:
        if isinstance(policies, str):
            policies = [policies]
        if not isinstance(policies, list) or not all(isinstance(p, str) for p in policies):
            raise ScenarioError("policy is a list of pack names", file=file, line=data.line)
    shops = dict(_shop(spec, file) for spec in data.get("shops") or [])
    orders = [_order(spec, start, file) for spec in data.get("orders") or []]
    raw_steps = data["steps"]
    if not isinstance(raw_steps, list):
        raise ScenarioError("steps is a list", file=file, line=data.line)
    steps: list[Step] = []
    now = start
    for raw in raw_steps:
        step = _step(raw, now, file, line_of(raw, data.line))
        now = step.at
        steps.append(step)
    return Scenario(
        name=str(data["name"]),
        file=file,
        start=start,
        policies=policies,
        orders=orders,
        steps=steps,
        shops=shops,
    )


def _shop(spec: Any, file: str) -> tuple[str, str | None]:
    line = line_of(spec)
    if not isinstance(spec, dict) or not isinstance(spec.get("id"), str):
        raise ScenarioError("each shop is a mapping with an id", file=file, line=line)
    _unknown(spec, SHOP_KEYS, "shop", file, line)
    address = spec.get("return_address")
    if address is not None and not isinstance(address, str):
        raise ScenarioError("a shop's return_address is text", file=file, line=line)
    return spec["id"], address


def _yuan(value: Any, where: str, file: str, line: int) -> int:
    try:
        return parse_yuan(value)
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}", file=file, line=line) from None


def _order(spec: Any, start: datetime, file: str) -> tuple[Order, list[tuple[datetime, str]]]:
    line = line_of(spec)
    if not isinstance(spec, dict):
        raise ScenarioError("each order is a mapping", file=file, line=line)
    _unknown(spec, ORDER_KEYS, "order", file, line)
    for key in ("id", "shop", "buyer", "total"):
        if key not in spec:
            raise ScenarioError(f"order needs {key!r}", file=file, line=line)
    times = {
        key: _moment(spec[key], f"order {spec['id']} {key}", file, line)
        for key in (
            "created_at",
            "paid_at",
            "shipped_at",
            "delivered_at",
            "trade_success_at",
            "promised_ship_by",
        )
        if spec.get(key) is not None
    }
    ahead = sorted(
        (times[key], action) for key, action in ORDER_FACTS if key in times and times[key] > start
    )
    past = {k: v for k, v in times.items() if v <= start or k == "promised_ship_by"}
    earliest = min([*(v for k, v in past.items() if k != "promised_ship_by"), start])
    try:
        order = Order(
            id=str(spec["id"]),
            shop=str(spec["shop"]),
            buyer=str(spec["buyer"]),
            total=_yuan(spec["total"], "total", file, line),
            shipping_fee=_yuan(spec.get("shipping_fee", "0"), "shipping_fee", file, line),
            free_shipping=bool(spec.get("free_shipping", False)),
            items=_items(spec.get("items") or [], file, line),
            discounts=_discounts(spec.get("discounts") or {}, file, line),
            promotion=parse_enum(Promotion, spec.get("promotion", "normal"), "promotion"),
            promised_ship_by=times.get("promised_ship_by"),
            shipping_method=parse_enum(
                ShippingMethod, spec.get("shipping_method", "express"), "shipping_method"
            ),
            no_reason_return=parse_enum(
                NoReasonReturn, spec.get("no_reason_return", "eligible"), "no_reason_return"
            ),
            sanbao=tuple(
                (str(k), _duration(v, f"sanbao {k}", file, line))
                for k, v in (spec.get("sanbao") or {}).items()
            ),
            freight_insurance=bool(spec.get("freight_insurance", False)),
            created_at=past.get("created_at", earliest),
            paid_at=past.get("paid_at"),
            shipped_at=past.get("shipped_at"),
            delivered_at=past.get("delivered_at"),
            trade_success_at=past.get("trade_success_at"),
        )
        lines.build(order)  # items, discounts and total must add up (SPEC §1)
    except ActionRefused as exc:
        raise ScenarioError(f"order {spec['id']}: {exc.message}", file=file, line=line) from None
    return order, ahead


def _items(raw: Any, file: str, line: int) -> tuple[Item, ...]:
    """An order's ``items:``, each ``{line, sku, title, quantity, unit_price, discount}``."""
    if not isinstance(raw, list):
        raise ScenarioError("items is a list", file=file, line=line)
    items = []
    for item in raw:
        if not isinstance(item, dict):
            raise ScenarioError("each item is a mapping", file=file, line=line)
        _unknown(item, ITEM_KEYS, "item", file, line_of(item, line))
        quantity = item.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise ScenarioError(
                f"item quantity {quantity!r} is not a whole number", file=file, line=line
            )
        items.append(
            Item(
                line=str(item.get("line", "")),
                sku=str(item.get("sku", "")),
                title=str(item.get("title", "")),
                quantity=quantity,
                unit_price=_yuan(item.get("unit_price", "0"), "unit_price", file, line),
                discount=_yuan(item.get("discount", "0"), "discount", file, line),
            )
        )
    return tuple(items)


def _discounts(raw: Any, file: str, line: int) -> Discounts:
    """An order's ``discounts:`` (yuan): ``shop_coupon``, ``cross_store``, ``platform_subsidy``."""
    if not isinstance(raw, dict):
        raise ScenarioError("discounts is a mapping", file=file, line=line)
    _unknown(raw, DISCOUNT_KEYS, "discounts", file, line)
    return Discounts(**{k: _yuan(v, f"discounts {k}", file, line) for k, v in raw.items()})


def _step(raw: Any, now: datetime, file: str, line: int) -> Step:
    if not isinstance(raw, dict):
        raise ScenarioError("each step is a mapping", file=file, line=line)
    _unknown(raw, STEP_KEYS, "step", file, line)
    timing = [k for k in ("at", "after", "until") if k in raw]
    if len(timing) > 1:
        raise ScenarioError(
            f"a step takes one of at/after/until, not {timing}", file=file, line=line
        )
    at = now
    if "after" in raw:
        at = now + _duration(raw["after"], "after", file, line)
    elif timing:
        at = _moment(raw[timing[0]], timing[0], file, line)
    if at < now:
        raise ScenarioError(
            f"time goes backwards: {at.isoformat()} is before {now.isoformat()}",
            file=file,
            line=line,
        )
    step = Step(line=line, at=at)
    if "action" in raw:
        action = str(raw["action"])
        if (
            action not in c.CASE_COMMANDS
            and action not in c.ORDER_COMMANDS
            and action not in c.COMPLAINT_COMMANDS
        ) or action == "timeout":
            every = set(c.CASE_COMMANDS) | set(c.ORDER_COMMANDS) | set(c.COMPLAINT_COMMANDS)
            known = ", ".join(sorted(every - {"timeout"}))
            raise ScenarioError(f"unknown action {action!r}; known: {known}", file=file, line=line)
        if "actor" not in raw:
            raise ScenarioError(f"action {action} needs an actor", file=file, line=line)
        step.action, step.actor = action, str(raw["actor"])
        step.target = {k: str(raw[k]) for k in TARGETS if k in raw}
        if not step.target:
            raise ScenarioError(f"action {action} needs a case or an order", file=file, line=line)
        params = raw.get("params") or {}
        if not isinstance(params, dict):
            raise ScenarioError("params is a mapping", file=file, line=line)
        step.params = dict(params)
        if "expect_error" in raw:
            code = str(raw["expect_error"])
            if code not in ERROR_CODES:
                raise ScenarioError(
                    f"expect_error {code!r} is not one of {sorted(ERROR_CODES)}",
                    file=file,
                    line=line,
                )
            step.expect_error = code
    elif "expect_error" in raw or "actor" in raw or "params" in raw:
        raise ScenarioError(
            "actor, params and expect_error go with an action", file=file, line=line
        )
    if "expect" in raw:
        step.expect = _expectation(raw["expect"], file, line)
    elif not step.action and not timing:
        raise ScenarioError(
            "a step is an action, a clock move (after/until/at) or an expect", file=file, line=line
        )
    return step


def _expectation(raw: Any, file: str, line: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ScenarioError("expect is a mapping", file=file, line=line)
    # the first of these names the target; later ones may be fields of its view
    targets = [k for k in EXPECT_TARGETS if k in raw][:1]
    if len(targets) != 1:
        raise ScenarioError(
            "expect names exactly one of case, order, complaint, shop, buyer", file=file, line=line
        )
    target = targets[0]
    fields = {
        "case": CASE_VIEW_FIELDS,
        "order": ORDER_VIEW_FIELDS,
        "complaint": COMPLAINT_VIEW_FIELDS,
        "shop": SHOP_VIEW_FIELDS,
        "buyer": BUYER_VIEW_FIELDS,
    }[target]
    extra_keys = {target, "as"} if target == "case" else {target}
    rest = {k: v for k, v in raw.items() if k not in extra_keys}
    _unknown(rest, fields, f"expect on {target}", file, line)
    return dict(raw)


# --- running -----------------------------------------------------------------------------


def _money_view(fen: int) -> str:
    return format_yuan(fen)


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _same(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_same(a, b) for a, b in zip(expected, actual, strict=True))
        )
    if isinstance(expected, datetime) or (isinstance(expected, str) and isinstance(actual, str)):
        moment_e, moment_a = _as_moment(expected), _as_moment(actual)
        if moment_e is not None and moment_a is not None:
            return moment_e == moment_a
        dec_e, dec_a = _as_decimal(expected), _as_decimal(actual)
        if dec_e is not None and dec_a is not None:
            return dec_e == dec_a
    if isinstance(expected, int | float) and isinstance(actual, str):
        dec = _as_decimal(actual)
        return dec is not None and dec == Decimal(str(expected))
    return bool(expected == actual)


def _as_moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _as_decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Runner:
    """Runs one parsed scenario on an engine with a virtual clock."""

    def __init__(self, scenario: Scenario, emit: Emit, db_url: str = "sqlite:///:memory:") -> None:
        self.sc = scenario
        self.emit = emit
        self.clock = VirtualClock(scenario.start)
        self.engine = Engine.open(
            db_url,
            clock=self.clock,
            policies=scenario.policies,
            attachments=MemoryAttachmentStore(),
        )
        self.pending: list[tuple[datetime, str, str]] = sorted(
            (at, action, order.id) for order, ahead in scenario.orders for at, action in ahead
        )

    def run(self) -> bool:
        try:
            for shop, address in self.sc.shops.items():
                self.engine.set_return_address(shop, address)
            for order, _ in self.sc.orders:
                self.engine.place_order(order)
            return all(self._step(step) for step in self.sc.steps)
        finally:
            self.engine.close()

    def _on_fired(self, fired: Fired) -> None:
        self.emit(
            {
                "event": "timeout",
                "at": show(fired.due_at),
                fired.subject_type: fired.subject_id,
                "deadline": fired.name,
                "rule_id": fired.rule_id,
                "status": fired.status,
            }
        )

    def _advance(self, to: datetime) -> None:
        """Move the clock to ``to``: order facts and deadlines happen in time order."""
        while self.pending and self.pending[0][0] <= to:
            at, action, order_id = self.pending.pop(0)
            move_clock(self.engine, self.clock, at, self._on_fired)
            cmd = self.engine.build(action, actor="platform", target={"order_id": order_id})
            order = self.engine.execute(cmd)
            self.emit(
                {
                    "event": "order",
                    "at": show(at),
                    "order": order_id,
                    "action": action,
                    "status": order.status.value,
                }
            )
        move_clock(self.engine, self.clock, to, self._on_fired)

    def _step(self, step: Step) -> bool:
        self._advance(step.at)
        if step.action is not None and not self._act(step):
            return False
        if step.expect is not None:
            return self._check(step)
        return True

    def _command(self, step: Step) -> c.Command:
        assert step.action is not None and step.actor is not None
        target = {f"{k}_id": v for k, v in step.target.items()}
        return self.engine.build(
            step.action,
            actor=step.actor,
            target=target,
            params=step.params,
            money=parse_yuan,
            moment=lambda v: _moment(v, "param", self.sc.file, step.line),
        )

    def _act(self, step: Step) -> bool:
        record: dict[str, Any] = {
            "event": "action",
            "line": step.line,
            "at": show(step.at),
            "actor": step.actor,
            "action": step.action,
            **step.target,
        }
        try:
            result = self.engine.execute(self._command(step))
        except ActionRefused as exc:
            record["error"] = exc.to_dict()
            ok = step.expect_error == exc.code
            if not ok:
                record["ok"] = False
                record["expected"] = step.expect_error or "success"
            self.emit(record)
            return ok
        record["status"] = result.status.value
        if step.expect_error is not None:
            record.update(ok=False, expected=step.expect_error)
            self.emit(record)
            return False
        self.emit(record)
        return True

    def _check(self, step: Step) -> bool:
        expect = dict(step.expect or {})
        target = next(k for k in EXPECT_TARGETS if k in expect)
        key = str(expect.pop(target))
        what = {target: key}
        actual: dict[str, Any] | None
        if target == "complaint":
            actual = self._view(
                lambda: complaint_view(self.engine.complaint(key), money=_money_view)
            )
        elif target == "case":
            viewer = Actor.parse(str(expect.pop("as"))) if "as" in expect else None
            actual = self._view(lambda: self.engine.view(key, actor=viewer, money=_money_view))
        elif target == "order":
            actual = self._view(lambda: self.engine.order_view(key, money=_money_view))
        elif target == "shop":
            actual = shop_view(key, self.engine.shop_metrics(key), money=_money_view)
        else:
            fen = self.engine.ledger(f"buyer:{key}", "compensation")
            actual = {"buyer": key, "compensation": _money_view(fen), "compensation_points": fen}
        diff = {
            name: {"expected": _plain(value), "actual": actual.get(name) if actual else None}
            for name, value in expect.items()
            if actual is None or not _same(value, actual.get(name))
        }
        record = {
            "event": "expect",
            "line": step.line,
            "at": show(step.at),
            **what,
            "ok": not diff,
        }
        if diff:
            record["diff"] = diff
        self.emit(record)
        return not diff

    @staticmethod
    def _view(fetch: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        try:
            return fetch()
        except ActionRefused:
            return None


def run_files(paths: Iterable[Path], emit: Emit, db_url: str = "sqlite:///:memory:") -> int:
    """Run scenario files; 0 when all hold, 1 when an expectation failed, 2 for a bad file."""
    worst = 0
    for path in paths:
        try:
            scenario = parse(path.read_text(encoding="utf-8"), str(path))
            emit({"event": "scenario", "file": str(path), "name": scenario.name})
            passed = Runner(scenario, emit, db_url).run()
        except OSError as exc:
            emit({"event": "invalid", "file": str(path), "error": f"can't read: {exc.strerror}"})
            worst = 2
            continue
        except ScenarioError as exc:
            emit({"event": "invalid", "file": str(path), "line": exc.line, "error": exc.reason})
            worst = 2
            continue
        except PolicyError as exc:
            emit({"event": "invalid", "file": str(path), "error": str(exc)})
            worst = 2
            continue
        emit({"event": "result", "file": str(path), "ok": passed})
        if not passed:
            worst = max(worst, 1)
    return worst


def print_json(record: dict[str, Any]) -> None:
    print(json.dumps(record, ensure_ascii=False), flush=True)
