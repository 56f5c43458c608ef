"""Supervision cases (督办, seed 6.6): raised automatically by ``scan``, then urged and resolved by supervisors.

``scan(session, now)`` looks for four situations and opens one case for each, at most once (``trigger_key``):

- ``due_soon``: an order still open whose deadline is near (``deadlines.due_soon_at``) — escalated *before* it
  passes, e.g. a consultation not answered 36 h into its 48 h;
- ``overdue``: an order still open past its deadline;
- ``repeated_complaints``: two or more complaint orders within 30 days about the same provider, or from the same
  elder — one case per provider (or elder) per window, listing the complaint orders;
- ``dissatisfied``: an order whose receipt or follow-up rates the service 2 or lower (of 5).

Every case puts a trail event on its order(s). Urgings (催办: a call or a platform message to the provider, and
what came of it) are recorded on the case and count in the provider's evaluation (``providers.services``
reads them through the case's ``provider_id``). Each function works in the caller's transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Conflict, NotFound
from callcenter.audit.services import Actor, record
from callcenter.db.paging import paginate
from callcenter.elders.models import Elder
from callcenter.orders import deadlines
from callcenter.orders.models import Complaint, WorkOrder, WorkOrderKind, WorkOrderStatus
from callcenter.orders.services import DEFAULT_TITLE
from callcenter.orders.trail import SYSTEM, record_event
from callcenter.providers.models import ServiceProvider
from callcenter.providers.services import recompute_rating
from callcenter.supervision_cases.models import CaseReason, CaseStatus, SupervisionCase, SupervisionUrging, UrgingMethod

# Orders no longer running: no deadline can be missed. A draft has not been raised yet.
NOT_RUNNING = (WorkOrderStatus.CLOSED, WorkOrderStatus.CANCELLED, WorkOrderStatus.DRAFT)
# Seed 6.6: complaints about the same provider (or from the same elder) "repeatedly": this many within the window.
REPEATED_COMPLAINTS_AT_LEAST = 2
REPEATED_COMPLAINTS_WINDOW = dt.timedelta(days=30)
# How far back the scan reads complaints: two windows, so a scanner stopped for up to a window still catches up
# on the windows that closed meanwhile.
REPEATED_COMPLAINTS_LOOKBACK = 2 * REPEATED_COMPLAINTS_WINDOW
# Satisfaction is 1 (very dissatisfied) .. 5 (very satisfied); 1 and 2 are the two "dissatisfied" answers.
DISSATISFIED_AT_MOST = 2


@dataclasses.dataclass(frozen=True, slots=True)
class Trigger:
    """A case the scan would open: what it is about and the orders whose trail records it."""

    key: str
    reason: CaseReason
    summary: str
    details: dict[str, Any]
    order_ids: tuple[int, ...]
    work_order_id: int | None = None
    provider_id: int | None = None
    elder_id: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Joining:
    """A complaint that falls in the window of an existing repeated-complaints case: added to that case."""

    case_id: int
    order: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Findings:
    triggers: list[Trigger]
    joinings: list[Joining]

    def __bool__(self) -> bool:
        return bool(self.triggers or self.joinings)


def case_number(now: dt.datetime) -> str:
    """SC-YYYYMMDD-XXXXXXXX: sortable by day, unguessable within it (like order numbers)."""
    return f"SC-{now:%Y%m%d}-{secrets.token_hex(4).upper()}"


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def _kind_label(kind: WorkOrderKind | str) -> str:
    return DEFAULT_TITLE.get(WorkOrderKind(kind), str(kind))


# --- finding what to escalate (reads only) -------------------------------------------------------------------

def _without_case(statement: Select[Any], reason: CaseReason) -> Select[Any]:
    """Orders that have no case of ``reason`` yet (the scan is the only one opening order-level cases)."""
    return statement.where(~exists().where(SupervisionCase.work_order_id == WorkOrder.id,
                                           SupervisionCase.reason == reason))


_ORDER_COLUMNS = (WorkOrder.id, WorkOrder.number, WorkOrder.kind, WorkOrder.status, WorkOrder.created_at,
                  WorkOrder.due_at, WorkOrder.provider_id, WorkOrder.elder_id)


async def _deadline_triggers(session: AsyncSession, now: dt.datetime) -> list[Trigger]:
    running = select(*_ORDER_COLUMNS).where(WorkOrder.status.not_in(NOT_RUNNING), WorkOrder.due_at.is_not(None))
    triggers: list[Trigger] = []
    overdue = _without_case(running.where(WorkOrder.due_at <= now), CaseReason.OVERDUE).order_by(WorkOrder.id)
    for order in (await session.execute(overdue)).all():
        triggers.append(Trigger(
            key=f"overdue:order:{order.id}", reason=CaseReason.OVERDUE,
            summary=f"{_kind_label(order.kind)}工单 {order.number} 已超过办理时限仍未办结",
            details={"order_number": order.number, "kind": str(order.kind), "status": str(order.status),
                     "due_at": _iso(order.due_at)},
            order_ids=(order.id,), work_order_id=order.id, provider_id=order.provider_id, elder_id=order.elder_id))
    # The near-deadline point is a share of each order's own span: read the running orders not yet due, then
    # compute it here (the same function the order's page uses) rather than in SQL.
    upcoming = _without_case(running.where(WorkOrder.due_at > now), CaseReason.DUE_SOON).order_by(WorkOrder.id)
    for order in (await session.execute(upcoming)).all():
        soon_at = deadlines.due_soon_at(order.created_at, order.due_at)
        if soon_at > now:
            continue
        triggers.append(Trigger(
            key=f"due_soon:order:{order.id}", reason=CaseReason.DUE_SOON,
            summary=f"{_kind_label(order.kind)}工单 {order.number} 临近办理时限仍未办结",
            details={"order_number": order.number, "kind": str(order.kind), "status": str(order.status),
                     "due_at": _iso(order.due_at), "due_soon_at": _iso(soon_at)},
            order_ids=(order.id,), work_order_id=order.id, provider_id=order.provider_id, elder_id=order.elder_id))
    return triggers


def rating(value: object) -> int | None:
    """A satisfaction answer as stored in a receipt or follow-up (an integer 1..5), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _json_rating(document: dict[str, Any] | None) -> int | None:
    return rating(document.get("satisfaction")) if isinstance(document, dict) else None


async def _dissatisfied_triggers(session: AsyncSession) -> list[Trigger]:
    # SQL narrows to orders rated low somewhere; Python reads the answers themselves for the case's details.
    low = or_(WorkOrder.satisfaction <= DISSATISFIED_AT_MOST,
              WorkOrder.receipt["satisfaction"].as_integer() <= DISSATISFIED_AT_MOST,
              WorkOrder.follow_up["satisfaction"].as_integer() <= DISSATISFIED_AT_MOST)
    statement = _without_case(select(*_ORDER_COLUMNS, WorkOrder.receipt, WorkOrder.follow_up,
                                     WorkOrder.satisfaction).where(low), CaseReason.DISSATISFIED)
    triggers: list[Trigger] = []
    for order in (await session.execute(statement.order_by(WorkOrder.id))).all():
        receipt, follow_up = _json_rating(order.receipt), _json_rating(order.follow_up)
        ratings = [r for r in (receipt, follow_up, order.satisfaction) if r is not None]
        if not ratings or min(ratings) > DISSATISFIED_AT_MOST:
            continue
        triggers.append(Trigger(
            key=f"dissatisfied:order:{order.id}", reason=CaseReason.DISSATISFIED,
            summary=f"{_kind_label(order.kind)}工单 {order.number} 服务评价不满意（满意度 {min(ratings)}/5）",
            details={"order_number": order.number, "kind": str(order.kind),
                     "receipt_satisfaction": receipt, "follow_up_satisfaction": follow_up},
            order_ids=(order.id,), work_order_id=order.id, provider_id=order.provider_id, elder_id=order.elder_id))
    return triggers


@dataclasses.dataclass(frozen=True, slots=True)
class _Window:
    case_id: int
    start: dt.datetime
    end: dt.datetime
    order_ids: frozenset[int]


def _order_entry(order: Any) -> dict[str, Any]:
    return {"id": order.id, "number": order.number, "created_at": _iso(order.created_at)}


async def _complaint_findings(session: AsyncSession, now: dt.datetime) -> Findings:
    """Complaints are grouped per subject (a provider complained about, an elder complaining) into windows: a
    window opens with a complaint not yet counted in a case about that subject and holds the complaints of the
    next 30 days. A window holding at least two raises one case, keyed by its start; a later complaint inside
    the window of an existing case joins that case. So every complaint counts once per subject, and running the
    scan again finds nothing new."""
    since = now - REPEATED_COMPLAINTS_LOOKBACK
    complaints = (await session.execute(
        select(WorkOrder.id, WorkOrder.number, WorkOrder.created_at, WorkOrder.elder_id,
               Complaint.about_provider_id)
        .outerjoin(Complaint, Complaint.work_order_id == WorkOrder.id)
        # A cancelled complaint (entered twice, withdrawn) or one found unfounded is not a complaint against anyone.
        .where(WorkOrder.kind == WorkOrderKind.COMPLAINT, WorkOrder.status != WorkOrderStatus.CANCELLED,
               WorkOrder.created_at >= since, WorkOrder.created_at <= now,
               or_(Complaint.founded.is_(None), Complaint.founded.is_(True)))
        .order_by(WorkOrder.created_at, WorkOrder.id))).all()
    by_subject: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for complaint in complaints:
        if complaint.about_provider_id is not None:
            by_subject[("provider", complaint.about_provider_id)].append(complaint)
        if complaint.elder_id is not None:
            by_subject[("elder", complaint.elder_id)].append(complaint)
    if not by_subject:
        return Findings([], [])
    # Cases whose window can overlap the complaints read: opened at most a window before the oldest of them.
    windows: dict[tuple[str, int], list[_Window]] = defaultdict(list)
    for case in (await session.scalars(select(SupervisionCase).where(
            SupervisionCase.reason == CaseReason.REPEATED_COMPLAINTS,
            SupervisionCase.opened_at >= since - REPEATED_COMPLAINTS_WINDOW))).all():
        details = case.details or {}
        subject = (str(details.get("subject")), int(details.get("subject_id") or 0))
        windows[subject].append(_Window(case.id, dt.datetime.fromisoformat(details["window_start"]),
                                        dt.datetime.fromisoformat(details["window_end"]),
                                        frozenset(int(o["id"]) for o in details.get("orders", []))))
    findings = Findings([], [])
    for (subject, subject_id), rows in sorted(by_subject.items()):
        known = windows.get((subject, subject_id), [])
        counted = frozenset().union(*(w.order_ids for w in known))
        fresh: list[Any] = []
        for row in rows:
            if row.id in counted:
                continue
            window = next((w for w in known if w.start <= row.created_at < w.end), None)
            if window is not None:
                findings.joinings.append(Joining(window.case_id, _order_entry(row)))
            else:
                fresh.append(row)
        # Greedy windows over the complaints not counted yet, oldest first.
        index = 0
        while index < len(fresh):
            start = fresh[index].created_at
            end = start + REPEATED_COMPLAINTS_WINDOW
            members = [row for row in fresh[index:] if row.created_at < end]
            index += len(members)
            if len(members) < REPEATED_COMPLAINTS_AT_LEAST:
                continue
            findings.triggers.append(_complaints_trigger(subject, subject_id, start, end, members))
    return findings


def _complaints_trigger(subject: str, subject_id: int, start: dt.datetime, end: dt.datetime,
                        members: Sequence[Any]) -> Trigger:
    numbers = "、".join(row.number for row in members)
    about = "针对同一服务商" if subject == "provider" else "同一老人"
    latest = members[-1]
    return Trigger(
        key=f"complaints:{subject}:{subject_id}:{start.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}",
        reason=CaseReason.REPEATED_COMPLAINTS,
        summary=f"{about} 30 天内投诉 {len(members)} 次：{numbers}"[:300],
        details={"subject": subject, "subject_id": subject_id, "window_start": _iso(start), "window_end": _iso(end),
                 "orders": [_order_entry(row) for row in members]},
        order_ids=tuple(row.id for row in members), work_order_id=latest.id,
        provider_id=subject_id if subject == "provider" else None,
        elder_id=subject_id if subject == "elder" else None)


async def find(session: AsyncSession, now: dt.datetime) -> Findings:
    """What ``scan`` would do at ``now``, without writing: lets the scanner skip a write transaction when there
    is nothing to escalate."""
    complaints = await _complaint_findings(session, now)
    triggers = [*await _deadline_triggers(session, now), *await _dissatisfied_triggers(session),
                *complaints.triggers]
    return Findings(triggers, complaints.joinings)


# --- writing --------------------------------------------------------------------------------------------------

def _trail(session: AsyncSession, order_ids: Iterable[int], action: str, details: dict[str, Any], *,
           at: dt.datetime | None = None, actor: Actor | None = None) -> None:
    # Without an actor it is the scan's own doing.
    for order_id in order_ids:
        record_event(session, order_id, action, actor_id=actor.id if actor else None,
                     actor_label=actor.label if actor else SYSTEM, details=details, at=at)


async def scan(session: AsyncSession, now: dt.datetime) -> list[SupervisionCase]:
    """Open the cases due at ``now`` that are not open yet; returns the new ones. Idempotent: a trigger whose
    case exists (``trigger_key``) is skipped, so running it twice raises nothing new."""
    findings = await find(session, now)
    keys = [trigger.key for trigger in findings.triggers]
    existing = set((await session.scalars(select(SupervisionCase.trigger_key)
                                          .where(SupervisionCase.trigger_key.in_(keys)))).all()) if keys else set()
    opened: list[SupervisionCase] = []
    for trigger in findings.triggers:
        if trigger.key in existing:
            continue
        case = SupervisionCase(number=case_number(now), reason=trigger.reason, status=CaseStatus.OPEN,
                               trigger_key=trigger.key, work_order_id=trigger.work_order_id,
                               provider_id=trigger.provider_id, elder_id=trigger.elder_id,
                               summary=trigger.summary[:300], details=trigger.details, opened_at=now)
        session.add(case)
        existing.add(trigger.key)
        opened.append(case)
        _trail(session, trigger.order_ids, "supervision_case_opened",
               {"case": case.number, "reason": trigger.reason.value}, at=now)
    for joining in findings.joinings:
        await _join(session, joining, now)
    await session.flush()
    return opened


async def _join(session: AsyncSession, joining: Joining, now: dt.datetime) -> None:
    # Locked: a supervisor resolving it at this moment must not lose this complaint or its reopening.
    case = await session.get(SupervisionCase, joining.case_id, with_for_update=True)
    if case is None:
        return
    details = dict(case.details)
    details["orders"] = [*details.get("orders", []), joining.order]
    if case.status is CaseStatus.RESOLVED:
        # A new complaint in the window undoes the resolution: the case is open again, the old outcome kept.
        details["earlier_resolutions"] = [*details.get("earlier_resolutions", []), {
            "resolved_at": _iso(case.resolved_at), "resolved_by_id": case.resolved_by_id,
            "resolution": case.resolution}]
        case.status = CaseStatus.URGING if case.urgings else CaseStatus.OPEN
        case.resolved_at = case.resolved_by_id = case.resolution = None
    case.details = details  # a new dict: JSON columns see reassignment, not in-place changes
    count = len(details["orders"])
    subject = "针对同一服务商" if details.get("subject") == "provider" else "同一老人"
    case.summary = f"{subject} 30 天内投诉 {count} 次：{'、'.join(o['number'] for o in details['orders'])}"[:300]
    _trail(session, [int(joining.order["id"])], "supervision_case_joined",
           {"case": case.number, "reason": case.reason.value}, at=now)


async def get_case(session: AsyncSession, case_id: int, *, for_update: bool = False) -> SupervisionCase:
    case = await session.get(SupervisionCase, case_id, with_for_update=for_update)
    if case is None:
        raise NotFound(f"no supervision case {case_id}", field="id")
    return case


def _case_orders(case: SupervisionCase) -> list[int]:
    """The orders a case is about: every complaint of a repeated-complaints case, else its one order."""
    listed = [int(o["id"]) for o in (case.details or {}).get("orders", [])]
    if listed:
        return listed
    return [case.work_order_id] if case.work_order_id is not None else []


async def urge(session: AsyncSession, case_id: int, method: UrgingMethod, message: str | None, result: str,
               actor: Actor, *, now: dt.datetime | None = None) -> SupervisionUrging:
    """Record an urging (催办) of the provider and what came of it; the case is then being urged."""
    case = await get_case(session, case_id, for_update=True)
    if case.status is CaseStatus.RESOLVED:
        raise Conflict(f"supervision case {case.number} is resolved; it can no longer be urged", field="status")
    urging = SupervisionUrging(method=method, actor_id=actor.id, actor_label=actor.label[:100], message=message,
                               result=result)
    if now is not None:
        urging.at = now
    case.urgings.append(urging)
    case.status = CaseStatus.URGING
    _trail(session, _case_orders(case), "supervision_urging",
           {"case": case.number, "method": method.value, "result": result}, at=now, actor=actor)
    record(session, actor, action="supervision_case.urge", target_type="supervision_case", target_id=case.id,
           details={"method": method.value, "result": result})
    await session.flush()
    if case.provider_id is not None:
        await recompute_rating(session, case.provider_id)  # urgings count in the provider's evaluation
    return urging


async def resolve(session: AsyncSession, case_id: int, resolution: str, actor: Actor, *,
                  now: dt.datetime | None = None) -> SupervisionCase:
    case = await get_case(session, case_id, for_update=True)
    if case.status is CaseStatus.RESOLVED:
        raise Conflict(f"supervision case {case.number} is already resolved", field="status")
    case.status = CaseStatus.RESOLVED
    case.resolved_at = now or dt.datetime.now(dt.UTC)
    case.resolved_by_id = actor.id
    case.resolution = resolution
    _trail(session, _case_orders(case), "supervision_case_resolved",
           {"case": case.number, "resolution": resolution}, at=now, actor=actor)
    record(session, actor, action="supervision_case.resolve", target_type="supervision_case", target_id=case.id,
           details={"resolution": resolution})
    await session.flush()
    return case


async def list_cases(session: AsyncSession, *, status: CaseStatus | None = None, reason: CaseReason | None = None,
                     provider_id: int | None = None, unresolved: bool | None = None, limit: int = 50,
                     offset: int = 0) -> tuple[list[SupervisionCase], int]:
    """Newest first."""
    statement = select(SupervisionCase).order_by(SupervisionCase.opened_at.desc(), SupervisionCase.id.desc())
    if status is not None:
        statement = statement.where(SupervisionCase.status == status)
    if reason is not None:
        statement = statement.where(SupervisionCase.reason == reason)
    if provider_id is not None:
        statement = statement.where(SupervisionCase.provider_id == provider_id)
    if unresolved is not None:
        statement = statement.where((SupervisionCase.status != CaseStatus.RESOLVED) if unresolved
                                    else (SupervisionCase.status == CaseStatus.RESOLVED))
    return await paginate(session, statement, limit=limit, offset=offset)



async def describe(session: AsyncSession, cases: Sequence[SupervisionCase]) -> list[dict[str, Any]]:
    """The cases with what a supervisor reads them by: the order's number and status, the provider's and the
    elder's names (three queries for a page, not three a case)."""
    order_ids = {c.work_order_id for c in cases if c.work_order_id is not None}
    provider_ids = {c.provider_id for c in cases if c.provider_id is not None}
    elder_ids = {c.elder_id for c in cases if c.elder_id is not None}
    orders = {row.id: row for row in (await session.execute(
        select(WorkOrder.id, WorkOrder.number, WorkOrder.status).where(WorkOrder.id.in_(order_ids)))).all()
    } if order_ids else {}
    providers = {row.id: row.name for row in (await session.execute(
        select(ServiceProvider.id, ServiceProvider.name).where(ServiceProvider.id.in_(provider_ids)))).all()
    } if provider_ids else {}
    elders = {row.id: row.full_name for row in (await session.execute(
        select(Elder.id, Elder.full_name).where(Elder.id.in_(elder_ids)))).all()} if elder_ids else {}
    described = []
    for case in cases:
        order = orders.get(case.work_order_id) if case.work_order_id is not None else None
        described.append({
            "id": case.id, "number": case.number, "reason": case.reason, "status": case.status,
            "trigger_key": case.trigger_key, "work_order_id": case.work_order_id,
            "work_order_number": order.number if order else None, "work_order_status": order.status if order else None,
            "provider_id": case.provider_id, "provider_name": providers.get(case.provider_id),
            "elder_id": case.elder_id, "elder_name": elders.get(case.elder_id), "summary": case.summary,
            "details": case.details or {}, "opened_at": case.opened_at, "resolved_at": case.resolved_at,
            "resolved_by_id": case.resolved_by_id, "resolution": case.resolution,
            "urging_count": len(case.urgings), "urgings": list(case.urgings)})
    return described
