"""Order lines and their money (SPEC §1 "Lines and money"): one rule, written once.

Order-level discounts are shared out to the lines in proportion to each line's price after its
own discount, in whole fen: every line first gets the floor of its exact share, then the fen
left over go to the largest line (ties: the first line), spilling to the next largest only
when a line would be discounted below zero. A line's paid share is its price less its own and
its allocated discounts; the shipping fee is a part of its own. Refunds are counted per line:
a line never gives back more than its paid share, the order never more than it was paid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shouhou.domain.model import Case, CaseLine, Discounts, Line, LineRefund, Order, evolve
from shouhou.errors import Conflict, Invalid

#: The line id of an order listed without items: the whole goods amount is one line.
IMPLICIT_LINE = "1"
#: The order-level discounts, in the order they are shared out.
DISCOUNT_KINDS = ("shop_coupon", "cross_store", "platform_subsidy")


#: The rule an order whose amounts don't add up breaks: a rule between fields that no schema of
#: one field can state, so it is not a refusal of the parameters themselves.
AMOUNTS = "shouhou/order-amounts"


def share_out(amounts: Sequence[int], weights: Sequence[int]) -> list[list[int]]:
    """Each of ``amounts`` shared out in proportion to ``weights``; exact and deterministic.

    ``result[k][i]`` is line ``i``'s share of amount ``k``. Every amount is shared in full, and
    no line gets more in all than its weight, provided the amounts add up to at most the
    weights. The floors of every amount are placed first, so the leftover fen always fit.
    """
    if any(a < 0 for a in amounts) or any(w < 0 for w in weights):
        raise ValueError("amounts and weights can't be negative")
    whole = sum(weights)
    if sum(amounts) > whole:
        raise ValueError(f"{sum(amounts)} fen can't be shared out of {whole}")
    if whole == 0:
        return [[0] * len(weights) for _ in amounts]
    shares = [[amount * w // whole for w in weights] for amount in amounts]
    room = [w - sum(share[i] for share in shares) for i, w in enumerate(weights)]
    # the largest line first; ties keep the lines' own order (sorted is stable)
    order = sorted(range(len(weights)), key=lambda i: -weights[i])
    for amount, share in zip(amounts, shares, strict=True):
        left = amount - sum(share)
        for i in order:
            if left == 0:
                break
            extra = min(left, room[i])
            share[i] += extra
            room[i] -= extra
            left -= extra
    return shares


def build(order: Order) -> tuple[Line, ...]:
    """The lines of ``order`` with their shares of its discounts; ``invalid`` when its items,
    discounts and total don't add up. An order without items has one implicit line."""
    goods = order.total - order.shipping_fee
    if not order.items:
        if order.discounts != Discounts():
            raise Invalid(
                f"order {order.id}: order-level discounts need the items listed", rule=AMOUNTS
            )
        return (Line(line=IMPLICIT_LINE, quantity=1, price=goods, paid=goods),)
    ids = [item.line or str(n) for n, item in enumerate(order.items, start=1)]
    if len(set(ids)) != len(ids):
        raise Invalid(f"order {order.id}: line ids must differ: {', '.join(ids)}", rule=AMOUNTS)
    prices: list[int] = []
    for line_id, item in zip(ids, order.items, strict=True):
        price = item.unit_price * item.quantity
        if item.quantity < 1 or item.unit_price < 0:
            raise Invalid(f"order {order.id} line {line_id}: quantity and price must be positive")
        if not 0 <= item.discount <= price:
            raise Invalid(
                f"order {order.id} line {line_id}: its discount is more than its price",
                rule=AMOUNTS,
            )
        prices.append(price)
    after_own = [p - item.discount for p, item in zip(prices, order.items, strict=True)]
    amounts = [getattr(order.discounts, kind) for kind in DISCOUNT_KINDS]
    if any(a < 0 for a in amounts) or sum(amounts) > sum(after_own):
        raise Invalid(
            f"order {order.id}: the order's discounts ({sum(amounts)} fen) must be between 0"
            f" and the lines' prices after their own discounts ({sum(after_own)} fen)",
            rule=AMOUNTS,
        )
    coupon, cross, subsidy = share_out(amounts, after_own)
    lines = tuple(
        Line(
            line=ids[i],
            sku=item.sku,
            title=item.title,
            quantity=item.quantity,
            price=prices[i],
            own_discount=item.discount,
            shop_coupon=coupon[i],
            cross_store=cross[i],
            platform_subsidy=subsidy[i],
            paid=after_own[i] - coupon[i] - cross[i] - subsidy[i],
        )
        for i, item in enumerate(order.items)
    )
    paid = sum(line.paid for line in lines)
    if paid + order.shipping_fee != order.total:
        raise Invalid(
            f"order {order.id}: the total ({order.total} fen) must be what the lines cost after"
            f" their discounts ({paid} fen) plus the shipping fee ({order.shipping_fee} fen)",
            rule=AMOUNTS,
        )
    return lines


def of(order: Order) -> tuple[Line, ...]:
    """The order's lines: as placed, or (for an order not yet placed) as :func:`build` makes
    them."""
    return order.lines or build(order)


def find(order: Order, line_id: str) -> Line:
    """Line ``line_id`` of ``order``; ``invalid`` naming the lines when there is none."""
    for line in of(order):
        if line.line == line_id:
            return line
    known = ", ".join(line.line for line in of(order))
    raise Invalid(f"order {order.id} has no line {line_id!r}; its lines: {known}")


def units_left(line: Line) -> int:
    return max(0, line.quantity - line.returned)


def done(line: Line) -> bool:
    """Whether the line was refunded whole: every unit, and everything the buyer paid."""
    return line.refunded >= line.paid and line.returned >= line.quantity


def requested(order: Order, wanted: Sequence[CaseLine]) -> tuple[CaseLine, ...]:
    """The lines an application is about, each with its units: those named (checked; no
    quantity means every unit left), or every line not yet refunded whole when none is named.
    A line whose units were all refunded in part keeps the money left (quantity 0)."""
    if not wanted:
        return tuple(
            CaseLine(line=line.line, quantity=units_left(line))
            for line in of(order)
            if not done(line)
        )
    seen: set[str] = set()
    out = []
    for want in wanted:
        line = find(order, want.line)
        if want.line in seen:
            raise Invalid(f"line {want.line} is named twice")
        seen.add(want.line)
        if done(line):
            raise Invalid(f"line {want.line} of order {order.id} was refunded whole already")
        quantity = want.quantity or units_left(line)
        if quantity > units_left(line):
            raise Invalid(
                f"line {want.line} of order {order.id} has {units_left(line)} unit(s) left to"
                f" refund, not {quantity}"
            )
        out.append(CaseLine(line=want.line, quantity=quantity))
    return tuple(out)


def of_case(case: Case, order: Order) -> tuple[CaseLine, ...]:
    """The lines ``case`` is about; a case stored before lines existed is about every line."""
    if case.lines:
        return case.lines
    return tuple(CaseLine(line=line.line, quantity=units_left(line)) for line in of(order))


def line_cap(line: Line, quantity: int) -> int:
    """What ``quantity`` more units of ``line`` can still refund: their proportional part of
    the paid share, and for the last units whatever is left of it."""
    left = max(0, line.paid - line.refunded)
    if line.returned + quantity >= line.quantity:
        return left
    before = line.paid * line.returned // line.quantity
    upto = line.paid * (line.returned + quantity) // line.quantity
    return max(0, min(left, upto - before))


def shipping_left(order: Order) -> int:
    """The part of the shipping fee not yet refunded nor kept by a freight rule."""
    goods_back = sum(line.refunded for line in of(order))
    return max(0, order.shipping_fee - (order.refunded - goods_back) - order.withheld)


def refundable(order: Order, wanted: Iterable[CaseLine]) -> int:
    """The most a case about ``wanted`` may refund: its lines' caps and the shipping left."""
    goods = sum(line_cap(find(order, want.line), want.quantity) for want in wanted)
    return goods + shipping_left(order)


def split(order: Order, wanted: Sequence[CaseLine], amount: int) -> tuple[LineRefund, ...]:
    """``amount`` as a refund of ``wanted``: the goods first, shared over the lines in
    proportion to what each may still refund, the rest shipping; each line with the platform
    subsidy part it reclaims. ``conflict`` when the amount no longer fits."""
    if amount > refundable(order, wanted):
        raise Conflict(
            f"a refund of {amount} fen is more than order {order.id} can still refund on those"
            " lines; try again"
        )
    lines = [find(order, want.line) for want in wanted]
    caps = [line_cap(line, want.quantity) for line, want in zip(lines, wanted, strict=True)]
    goods = min(amount, sum(caps))
    (shares,) = share_out([goods], caps)
    return tuple(
        LineRefund(
            line=line.line,
            buyer=share,
            platform=_reclaim(line, share, want.quantity),
            quantity=want.quantity,
        )
        for line, want, share in zip(lines, wanted, shares, strict=True)
    )


def _reclaim(line: Line, buyer: int, quantity: int) -> int:
    """The platform subsidy a refund of ``buyer`` fen and ``quantity`` units reclaims: the
    subsidy in step with the paid share given back, all of it once the line is refunded whole
    (by units when the buyer paid nothing for it)."""
    if line.paid > 0:
        after = line.platform_subsidy * min(line.refunded + buyer, line.paid) // line.paid
    else:
        after = line.platform_subsidy * min(line.returned + quantity, line.quantity)
        after //= line.quantity
    return max(0, after - line.reclaimed)


def book(order: Order, refunds: Sequence[LineRefund], total: int, withheld: int) -> None:
    """Refuse (``conflict``) a refund that would take a line, or the order, past what was
    paid: checked on the order in the transaction that writes the refund."""
    for refund in refunds:
        line = find(order, refund.line)
        back = line.refunded + refund.buyer
        if back > line.paid:
            raise Conflict(
                f"line {line.line} of order {order.id} would give back {back} fen of the"
                f" {line.paid} fen paid for it"
            )
        if line.reclaimed + refund.platform > line.platform_subsidy:
            raise Conflict(f"line {line.line} of order {order.id}: subsidy reclaimed twice")
    goods = sum(refund.buyer for refund in refunds)
    if total - goods + withheld > shipping_left(order):
        raise Conflict(f"order {order.id} would give back more shipping than was paid")
    if order.refunded + order.withheld + total + withheld > order.total:
        raise Conflict(f"order {order.id} would give back more than its {order.total} fen")


def booked(lines: Sequence[Line], case_id: str, refunds: Sequence[LineRefund]) -> tuple[Line, ...]:
    """The lines after case ``case_id`` ended with ``refunds``: amounts added, lines freed."""
    by_line = {refund.line: refund for refund in refunds}
    out = []
    for line in lines:
        if line.open_case == case_id:
            line = evolve(line, open_case=None)
        refund = by_line.get(line.line)
        if refund is not None:
            line = evolve(
                line,
                refunded=line.refunded + refund.buyer,
                reclaimed=line.reclaimed + refund.platform,
                returned=line.returned + refund.quantity,
            )
        out.append(line)
    return tuple(out)


def opened(lines: Sequence[Line], case_id: str, ids: Iterable[str]) -> tuple[Line, ...]:
    """The lines after case ``case_id`` opened on ``ids``."""
    chosen = set(ids)
    return tuple(
        evolve(line, open_case=case_id, cases=line.cases + 1) if line.line in chosen else line
        for line in lines
    )
