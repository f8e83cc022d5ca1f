"""Wiring: open an engine on a database URL and run commands through the services.

>>> engine = Engine.open("sqlite:///var/shop.db")
>>> engine.act("apply", actor="buyer:b1", params={"order": "o1", ...})
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from shouhou.clock import SystemClock
from shouhou.domain import applications
from shouhou.domain import commands as c
from shouhou.domain.buckets import DEFAULT_BUCKETS, bucket_of, in_bucket
from shouhou.domain.metrics import Metrics
from shouhou.domain.model import Actor, Attachment, Case, Complaint, Order
from shouhou.errors import Invalid, NotFound
from shouhou.policy.loader import Registry
from shouhou.policy.rulebook import Rulebook
from shouhou.services import complaints, deadlines, handlers, ledger, metrics, report, views
from shouhou.services.ports import ApiUnitOfWork, AttachmentStore, Clock, StoredEvent, UnitOfWork
from shouhou.settings import Settings

#: Public parameter names that differ from the command field names.
ALIASES = {"order": "order_id", "case": "case_id"}


#: The rolling window of shop metrics (SPEC §9).
METRICS_WINDOW = timedelta(days=30)


def new_case_id() -> str:
    return "c" + uuid.uuid4().hex[:16]


def new_complaint_id() -> str:
    return "k" + uuid.uuid4().hex[:16]


#: The units of work an engine opens: ``ApiUnitOfWork`` for the API and the worker.
U = TypeVar("U", bound=UnitOfWork, covariant=True)
T = TypeVar("T")


class Engine(Generic[U]):
    """The library interface: commands in, case views out (SPEC §10).

    ``Engine[ApiUnitOfWork]`` (from :meth:`open`, or on the fakes of ``shouhou.testing``)
    also reaches API keys, idempotency records, lists and webhooks: the REST API and the
    worker need one.
    """

    def __init__(
        self,
        uow_factory: Callable[[], U],
        *,
        clock: Clock | None = None,
        registry: Registry | None = None,
        policies: Sequence[str] | None = None,
        new_id: Callable[[], str] = new_case_id,
        reader: Callable[[], U] | None = None,
        attachments: AttachmentStore | None = None,
        sql_engine: Any = None,
        buckets: int = DEFAULT_BUCKETS,
    ) -> None:
        self.uow_factory = uow_factory
        #: The installation's number of buckets (docs/decisions/0021-fixed-buckets.md).
        self.buckets = buckets
        self.attachments = attachments
        self.reader = reader or uow_factory
        #: The SQLAlchemy engine the units of work connect through (disposed by :meth:`close`).
        self.sql_engine = sql_engine
        self.clock: Clock = clock or SystemClock()
        self.registry = registry or Registry.default()
        self.policies = list(policies or self.registry.default_selection())
        self.new_id = new_id
        self._rulebooks: dict[tuple[str, ...], Rulebook] = {}
        #: The instants at which a selected pack gets a new version, in order: between two
        #: of them the same rulebook is in force (the registry never changes once loaded).
        self._changes = sorted(
            {
                v.pack.effective_from
                for name in self.policies
                for v in self.registry.versions(name)
                if v.pack.effective_from is not None
            }
        )
        self._by_period: dict[int, Rulebook] = {}
        self.rules_at(None)  # fail now, not on first use, when a pack is unknown

    @staticmethod
    def open(
        url: str | None = None,
        *,
        clock: Clock | None = None,
        policies: Sequence[str] | None = None,
        registry: Registry | None = None,
        migrate: bool = True,
        new_id: Callable[[], str] = new_case_id,
        attachments: AttachmentStore | None = None,
    ) -> Engine[ApiUnitOfWork]:
        """An engine on ``url`` (default: ``SHOUHOU_DATABASE_URL`` or a SQLite file); evidence
        files go to ``attachments`` (default: ``SHOUHOU_ATTACHMENTS_DIR``)."""
        from shouhou.db import engine as db_engine
        from shouhou.db.api_uow import SqlApiUnitOfWork
        from shouhou.db.attachments import FileAttachmentStore

        sql = db_engine.create(url or Settings.from_env().database_url)
        if migrate:
            db_engine.upgrade(sql)
        layout = db_engine.layout(sql)

        def writer() -> ApiUnitOfWork:
            return SqlApiUnitOfWork(sql)

        def reader() -> ApiUnitOfWork:
            return SqlApiUnitOfWork(sql, readonly=True)

        return Engine(
            writer,
            reader=reader,
            clock=clock,
            policies=policies,
            registry=registry,
            new_id=new_id,
            attachments=attachments
            or FileAttachmentStore(Path(Settings.from_env().attachments_dir)),
            sql_engine=sql,
            buckets=layout.buckets,
        )

    def close(self) -> None:
        """Close the SQL engine's pooled connections (nothing to do on the fakes)."""
        if self.sql_engine is not None:
            from shouhou.db import engine as db_engine

            db_engine.dispose(self.sql_engine)

    # --- rules ---------------------------------------------------------------------------

    def rules_at(self, at: datetime | None) -> Rulebook:
        """The rulebook in force at ``at`` (the newest version of each selected pack)."""
        period = -1 if at is None else bisect.bisect_right(self._changes, at)
        found = self._by_period.get(period)
        if found is not None:
            return found
        refs = tuple(self.registry.in_force(name, at).ref for name in self.policies)
        book = self._rulebooks.get(refs)
        if book is None:
            book = Rulebook.select(self.registry, self.policies, at)
            self._rulebooks[refs] = book
        self._by_period[period] = book
        return book

    # --- commands ------------------------------------------------------------------------

    def place_order(self, order: Order, *, uow: UnitOfWork | None = None) -> Order:
        """Record ``order``; in ``uow`` when given (an open unit of work that commits later)."""
        now = self.clock.now()
        return handlers.place_order(uow or self.uow_factory(), order, self.rules_at(now), now)

    def set_return_address(self, shop: str, address: str | None) -> None:
        """The shop's default return address: the system agrees with it when the shop's
        seller lets a return's ``seller_respond`` pass (SPEC §2). None clears it."""
        with self.uow_factory() as uow:
            uow.shops.set_return_address(shop, address, self.clock.now())
            uow.commit()

    def build(
        self,
        action: str,
        *,
        actor: Actor | str,
        target: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
        money: Callable[[Any], int] = int,
        moment: Callable[[Any], datetime] = datetime.fromisoformat,
        uow: UnitOfWork | None = None,
    ) -> c.Command:
        """A command from an action name and public parameter names (``order``, ``amount``…).

        Parameters are judged last (SPEC §1): when they are refused, a case action is first
        admitted (:meth:`admit`, in ``uow`` when given), so that ``forbidden`` and
        ``not_allowed`` answer before ``invalid``."""
        try:
            return self._build(action, actor, target, params, money, moment)
        except Invalid:
            who = Actor.parse(actor) if isinstance(actor, str) else actor
            if action == "apply":
                applications.check_applicant(who)
            elif "case_id" in target and action in c.CASE_COMMANDS:
                self.admit(action, who, target["case_id"], uow=uow)
            raise

    def admit(
        self,
        action: str,
        actor: Actor,
        case_id: str,
        *,
        uow: UnitOfWork | None = None,
        visible: Callable[[Case], bool] | None = None,
    ) -> None:
        """Refuse ``action`` on the case as it would be refused before its parameters are read:
        ``not_found`` (``visible``), ``forbidden``, ``not_allowed``; changes nothing."""
        handlers.admit(
            uow or self.uow_factory(),
            action,
            actor,
            case_id,
            self.rules_at,
            self.clock.now(),
            visible,
        )

    def _build(
        self,
        action: str,
        actor: Actor | str,
        target: Mapping[str, str],
        params: Mapping[str, Any] | None,
        money: Callable[[Any], int],
        moment: Callable[[Any], datetime],
    ) -> c.Command:
        who = Actor.parse(actor) if isinstance(actor, str) else actor
        on_order = "order_id" in target and "case_id" not in target and action in c.ORDER_COMMANDS
        table = c.ORDER_COMMANDS if on_order else c.CASE_COMMANDS
        if action in c.COMPLAINT_COMMANDS:
            table = c.COMPLAINT_COMMANDS
        cls = table.get(action)
        if cls is None:
            known = ", ".join(
                sorted(set(c.CASE_COMMANDS) | set(c.ORDER_COMMANDS) | set(c.COMPLAINT_COMMANDS))
            )
            raise Invalid(f"unknown action {action!r}; known actions: {known}")
        plain = {ALIASES.get(k, k): v for k, v in (params or {}).items()}
        return c.build(cls, {"actor": who, **target}, plain, money=money, moment=moment)

    def execute(self, cmd: c.Command, *, uow: UnitOfWork | None = None) -> Case | Order | Complaint:
        """Carry out ``cmd``; in ``uow`` when given (an open unit of work that commits later)."""
        now = self.clock.now()
        work = uow or self.uow_factory()
        if isinstance(cmd, c.OrderCommand):
            return handlers.order_action(work, cmd, self.rules_at, now)
        if isinstance(cmd, c.ComplaintCommand):
            return complaints.complaint_action(work, cmd, self.rules_at, now)
        new_id = self.new_id
        if new_id is new_case_id and isinstance(cmd, c.Apply):
            order_id = cmd.order_id

            def new_id() -> str:  # in the order's bucket: the id alone names it
                return self.in_order_bucket(new_case_id(), order_id)

        return handlers.case_action(
            work, cmd, self.rules_at, now, new_id, attachments=self.attachments
        )

    def in_order_bucket(self, base: str, order_id: str) -> str:
        """An id made from ``base`` that hashes to ``order_id``'s bucket."""
        return in_bucket(base, bucket_of(order_id, self.buckets), self.buckets)

    def new_complaint_id(self, order_id: str) -> str:
        """A new complaint id, in ``order_id``'s bucket."""
        return self.in_order_bucket(new_complaint_id(), order_id)

    def attach(self, data: bytes, filename: str) -> Attachment:
        """Keep an evidence file (checked for size and type); submit it by its ``sha256``."""
        if self.attachments is None:
            raise Invalid("this engine keeps no attachments")
        return self.attachments.put(data, filename)

    def complaint(self, complaint_id: str) -> Complaint:
        with self.reader() as uow:
            return _found(
                uow.complaints.get(complaint_id), NotFound(f"no complaint {complaint_id}")
            )

    def complaint_queue(self) -> list[Complaint]:
        """Complaints waiting for an agent, oldest first."""
        return complaints.complaint_queue(self.reader())

    def shop_metrics(
        self, shop: str, at: datetime | None = None, window: timedelta = METRICS_WINDOW
    ) -> Metrics:
        """SPEC §9 metrics of ``shop`` over ``window`` (30 days) ending at ``at`` (now)."""
        return metrics.shop_metrics(self.reader(), shop, at or self.clock.now(), window)

    def shop_report(
        self,
        shop: str,
        at: datetime | None = None,
        *,
        days: int = report.REPORT_DAYS,
        window: timedelta = METRICS_WINDOW,
    ) -> report.ShopReport:
        """``shop``'s classified cases by product and cause, the cases awaiting a classification,
        and its metrics at ``at`` (now) and on each of the ``days`` before."""
        when = at or self.clock.now()
        return report.shop_report(self.reader(), shop, at=when, window=window, days=days)

    def ledger(self, account: str, kind: str) -> int:
        """A ledger balance: ``shop:s1`` penalty_points, or ``buyer:b1`` compensation (fen)."""
        return ledger.balance(self.reader(), account, kind)

    def intervention_queue(self) -> list[Case]:
        """Cases in intervention, those awaiting a ruling first, then by stage deadline."""
        return handlers.intervention_queue(self.reader())

    def run_due(self, now: datetime | None = None, **kwargs: Any) -> list[deadlines.Fired]:
        """Fire every deadline due at or before ``now`` (default: the clock's now)."""
        return deadlines.run_due(self.uow_factory, self.rules_at, now or self.clock.now(), **kwargs)

    # --- queries -------------------------------------------------------------------------

    def case(self, case_id: str) -> Case:
        with self.reader() as uow:
            return _found(uow.cases.get(case_id), NotFound(f"no case {case_id}", case=case_id))

    def order(self, order_id: str) -> Order:
        with self.reader() as uow:
            return _found(uow.orders.get(order_id), NotFound(f"no order {order_id}"))

    def timeline(self, case_id: str) -> list[StoredEvent]:
        with self.reader() as uow:
            return uow.cases.timeline(case_id)

    def view(
        self, case_id: str, *, actor: Actor | None = None, money: views.Money = int
    ) -> dict[str, Any]:
        """The case view for ``actor`` (everything when None), as of now."""
        with self.reader() as uow:
            return self.view_in(uow, case_id, actor=actor, money=money)

    def view_in(
        self,
        uow: UnitOfWork,
        case_id: str,
        *,
        actor: Actor | None = None,
        money: views.Money = int,
    ) -> dict[str, Any]:
        """The case view read in ``uow``, an open unit of work: it sees that work's changes."""
        case = _found(uow.cases.get(case_id), NotFound(f"no case {case_id}", case=case_id))
        order = uow.orders.get(case.order_id)
        assert order is not None  # a case is opened on a stored order
        timeline = uow.cases.timeline(case_id)
        rules = self.rules_at(case.opened_at)
        return views.case_view(
            case, order, rules, timeline=timeline, actor=actor, money=money, now=self.clock.now()
        )

    def order_view(self, order_id: str, *, money: views.Money = int) -> dict[str, Any]:
        return views.order_view(self.order(order_id), money=money)


def _found(value: T | None, missing: NotFound) -> T:
    """``value``, or ``missing`` raised when there is none."""
    if value is None:
        raise missing
    return value
