"""The volunteers registry (seed 5.11): teams, volunteers' files, their review, service records, feedback, and
pairing with elders. Each function works in the caller's transaction and writes its audit entry there.

A pairing is a row among the elder's contacts (role ``volunteer``, ``volunteer_id`` set), so the agent sees the
volunteer wherever the elder's contacts are shown. Only an approved volunteer is paired: rejecting or suspending
one removes their pairings (the audit entry lists the elders), and a change of name or phone number is copied to
their contact rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from callcenter.api.errors import Conflict, Invalid, NotFound
from callcenter.audit.services import Actor, record
from callcenter.db.base import utcnow
from callcenter.db.paging import paginate
from callcenter.db.sealed import lookup_digest
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.users.models import User
from callcenter.volunteers.models import (
    ID_NUMBER_INDEX,
    FeedbackKind,
    ReviewStatus,
    Volunteer,
    VolunteerFeedback,
    VolunteerServiceRecord,
    VolunteerTeam,
)

# Copied to the volunteer's contact rows when they change.
_CONTACT_FIELDS = {"full_name": "name", "phone": "phone"}


@dataclasses.dataclass(frozen=True, slots=True)
class Summary:
    service_records: int = 0
    service_hours: float = 0.0
    evaluations: int = 0
    average_rating: float | None = None
    complaints: int = 0
    awards: int = 0
    paired_elders: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class VolunteerView:
    """A volunteer with what the file shows beside its columns."""

    volunteer: Volunteer
    summary: Summary
    reviewed_by: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Pairing:
    contact: Contact
    elder: Elder


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---- teams ------------------------------------------------------------------------------------------------------

async def _check_team_name_free(session: AsyncSession, name: str, team_id: int | None) -> None:
    holder = await session.scalar(select(VolunteerTeam.id).where(VolunteerTeam.name == name))
    if holder is not None and holder != team_id:
        raise Conflict(f"a volunteer team named {name!r} exists already", field="name")


async def team_sizes(session: AsyncSession, team_ids: Sequence[int]) -> dict[int, int]:
    rows = await session.execute(select(Volunteer.team_id, func.count()).where(Volunteer.team_id.in_(team_ids))
                                 .group_by(Volunteer.team_id))
    return {team_id: int(count) for team_id, count in rows.all()}


async def get_team(session: AsyncSession, team_id: int) -> VolunteerTeam:
    team = await session.get(VolunteerTeam, team_id)
    if team is None:
        raise NotFound(f"no volunteer team {team_id}", field="id")
    return team


async def create_team(session: AsyncSession, fields: Mapping[str, Any], actor: Actor) -> VolunteerTeam:
    await _check_team_name_free(session, fields["name"], None)
    team = VolunteerTeam(**fields)
    session.add(team)
    await session.flush()
    record(session, actor, action="volunteer_team.create", target_type="volunteer_team", target_id=team.id,
           details={"name": team.name})
    return team


async def update_team(session: AsyncSession, team_id: int, changes: Mapping[str, Any],
                      actor: Actor) -> VolunteerTeam:
    team = await get_team(session, team_id)
    if "name" in changes:
        await _check_team_name_free(session, changes["name"], team_id)
    changed = sorted(name for name, value in changes.items() if getattr(team, name) != value)
    for name in changed:
        setattr(team, name, changes[name])
    if changed:
        await session.flush()
        record(session, actor, action="volunteer_team.update", target_type="volunteer_team", target_id=team.id,
               details={"fields": changed})
    return team


async def list_teams(session: AsyncSession) -> list[VolunteerTeam]:
    return list((await session.scalars(select(VolunteerTeam).order_by(VolunteerTeam.name))).all())


# ---- volunteers -------------------------------------------------------------------------------------------------

def _with_team(statement: Select[tuple[Volunteer]]) -> Select[tuple[Volunteer]]:
    return statement.options(selectinload(Volunteer.team))


async def get_volunteer(session: AsyncSession, volunteer_id: int) -> Volunteer:
    volunteer = await session.scalar(_with_team(select(Volunteer).where(Volunteer.id == volunteer_id)))
    if volunteer is None:
        raise NotFound(f"no volunteer {volunteer_id}", field="id")
    return volunteer


async def _check_references(session: AsyncSession, fields: Mapping[str, Any], volunteer_id: int | None) -> None:
    id_number = fields.get("id_number")
    if id_number is not None:
        holder = await session.scalar(select(Volunteer.id).where(
            Volunteer.id_number_digest == lookup_digest(session, id_number, ID_NUMBER_INDEX)))
        if holder is not None and holder != volunteer_id:
            raise Conflict(f"this resident ID is already on volunteer {holder}'s file", field="id_number")
    team_id = fields.get("team_id")
    if team_id is not None and await session.get(VolunteerTeam, team_id) is None:
        raise Invalid(f"no volunteer team {team_id}", field="team_id")


async def create_volunteer(session: AsyncSession, fields: Mapping[str, Any], actor: Actor) -> Volunteer:
    """A new volunteer's file, pending review."""
    await _check_references(session, fields, None)
    volunteer = Volunteer(**fields, review_status=ReviewStatus.PENDING)
    session.add(volunteer)
    await session.flush()
    record(session, actor, action="volunteer.create", target_type="volunteer", target_id=volunteer.id,
           details={"team_id": volunteer.team_id})
    return await get_volunteer(session, volunteer.id)


async def update_volunteer(session: AsyncSession, volunteer_id: int, changes: Mapping[str, Any],
                           actor: Actor) -> Volunteer:
    volunteer = await get_volunteer(session, volunteer_id)
    await _check_references(session, changes, volunteer_id)
    changed = sorted(name for name, value in changes.items() if getattr(volunteer, name) != value)
    if not changed:
        return volunteer
    for name in changed:
        setattr(volunteer, name, changes[name])
    details: dict[str, Any] = {"fields": changed}
    contact_changes = {column: changes[name] for name, column in _CONTACT_FIELDS.items() if name in changed}
    if contact_changes:
        # The elders' contact lists show the volunteer as they are now: an old number would ring the wrong phone.
        synced = await session.execute(update(Contact).where(Contact.volunteer_id == volunteer_id)
                                       .values(**contact_changes).returning(Contact.elder_id))
        details["synced_elders"] = sorted(synced.scalars().all())
    await session.flush()
    record(session, actor, action="volunteer.update", target_type="volunteer", target_id=volunteer_id,
           details=details)
    return await _reloaded(session, volunteer)


async def _reloaded(session: AsyncSession, volunteer: Volunteer) -> Volunteer:
    """The volunteer with its server-set columns and its (possibly new) team read afresh."""
    await session.refresh(volunteer, ["updated_at", "team"])
    return volunteer


async def search_volunteers(session: AsyncSession, *, name: str | None, phone: str | None,
                            community: str | None, team_id: int | None, review_status: ReviewStatus | None,
                            limit: int, offset: int) -> tuple[list[Volunteer], int]:
    """``name``: part of it; ``phone``: the normalised number; ``community``, ``team_id``, ``review_status``:
    exact."""
    statement = _with_team(select(Volunteer)).order_by(Volunteer.id)
    if name:
        statement = statement.where(Volunteer.full_name.ilike(f"%{_escape_like(name)}%", escape="\\"))
    if phone:
        statement = statement.where(Volunteer.phone == phone)
    if community:
        statement = statement.where(Volunteer.community == community)
    if team_id is not None:
        statement = statement.where(Volunteer.team_id == team_id)
    if review_status is not None:
        statement = statement.where(Volunteer.review_status == review_status)
    return await paginate(session, statement, limit=limit, offset=offset)


async def describe(session: AsyncSession, volunteers: Sequence[Volunteer]) -> list[VolunteerView]:
    """Each volunteer with its summary and reviewer's name, in a fixed number of queries for a whole page."""
    ids = [v.id for v in volunteers]
    if not ids:
        return []
    service = VolunteerServiceRecord  # (shorter lines below)
    served: dict[int, tuple[int, float]] = {
        volunteer_id: (int(count), float(hours or 0)) for volunteer_id, count, hours in (await session.execute(
            select(service.volunteer_id, func.count(), func.sum(service.hours))
            .where(service.volunteer_id.in_(ids)).group_by(service.volunteer_id))).all()}
    feedback: dict[tuple[int, FeedbackKind], tuple[int, float | None]] = {}
    for volunteer_id, kind, count, average in (await session.execute(
            select(VolunteerFeedback.volunteer_id, VolunteerFeedback.kind, func.count(),
                   func.avg(VolunteerFeedback.rating))
            .where(VolunteerFeedback.volunteer_id.in_(ids))
            .group_by(VolunteerFeedback.volunteer_id, VolunteerFeedback.kind))).all():
        feedback[(volunteer_id, FeedbackKind(kind))] = (int(count), None if average is None else float(average))
    paired = dict((await session.execute(
        select(Contact.volunteer_id, func.count(func.distinct(Contact.elder_id)))
        .where(Contact.volunteer_id.in_(ids)).group_by(Contact.volunteer_id))).all())
    reviewer_ids = {v.reviewed_by_id for v in volunteers if v.reviewed_by_id is not None}
    reviewers = dict((await session.execute(select(User.id, User.username).where(User.id.in_(reviewer_ids))))
                     .all()) if reviewer_ids else {}
    views = []
    for volunteer in volunteers:
        records, hours = served.get(volunteer.id, (0, 0.0))
        evaluations, average = feedback.get((volunteer.id, FeedbackKind.EVALUATION), (0, None))
        summary = Summary(
            service_records=records, service_hours=round(hours, 2), evaluations=evaluations,
            average_rating=None if average is None else round(average, 2),
            complaints=feedback.get((volunteer.id, FeedbackKind.COMPLAINT), (0, None))[0],
            awards=feedback.get((volunteer.id, FeedbackKind.AWARD), (0, None))[0],
            paired_elders=int(paired.get(volunteer.id, 0)))
        views.append(VolunteerView(volunteer, summary, reviewers.get(volunteer.reviewed_by_id)
                                   if volunteer.reviewed_by_id is not None else None))
    return views


async def describe_one(session: AsyncSession, volunteer: Volunteer) -> VolunteerView:
    return (await describe(session, [volunteer]))[0]


async def review(session: AsyncSession, volunteer_id: int, status: ReviewStatus, note: str | None, actor: Actor,
                 *, now: dt.datetime | None = None) -> Volunteer:
    """Approve, reject or suspend: who and when are kept on the file. A volunteer no longer approved loses their
    pairings, so no agent calls them as an elder's contact."""
    volunteer = await get_volunteer(session, volunteer_id)
    previous = volunteer.review_status
    volunteer.review_status = status
    volunteer.reviewed_by_id = actor.id
    volunteer.reviewed_at = now or utcnow()
    volunteer.review_note = note
    details: dict[str, Any] = {"status": status.value, "previous": previous.value}
    if status is not ReviewStatus.APPROVED:
        removed = await session.execute(delete(Contact).where(Contact.volunteer_id == volunteer_id)
                                        .returning(Contact.elder_id))
        details["unpaired_elders"] = sorted(removed.scalars().all())
    await session.flush()
    record(session, actor, action="volunteer.review", target_type="volunteer", target_id=volunteer_id,
           details=details)
    return await _reloaded(session, volunteer)


# ---- service records and feedback --------------------------------------------------------------------------------

async def _existing_elder(session: AsyncSession, elder_id: int | None) -> Elder | None:
    if elder_id is None:
        return None
    elder = await session.get(Elder, elder_id)
    if elder is None:
        raise Invalid(f"no elder {elder_id}", field="elder_id")
    return elder


async def add_service_record(session: AsyncSession, volunteer_id: int, fields: Mapping[str, Any],
                             actor: Actor) -> VolunteerServiceRecord:
    """A service given. A volunteer suspended now may have served before; one never approved has not."""
    volunteer = await get_volunteer(session, volunteer_id)
    if volunteer.review_status in (ReviewStatus.PENDING, ReviewStatus.REJECTED):
        raise Conflict(f"volunteer {volunteer_id} is {volunteer.review_status.value}, never approved to serve",
                       code="not_approved")
    await _existing_elder(session, fields.get("elder_id"))
    row = VolunteerServiceRecord(volunteer_id=volunteer_id, recorded_by_id=actor.id, **fields)
    session.add(row)
    await session.flush()
    record(session, actor, action="volunteer.service_record", target_type="volunteer", target_id=volunteer_id,
           details={"record_id": row.id, "hours": row.hours, "elder_id": row.elder_id})
    return row


async def list_service_records(session: AsyncSession, volunteer_id: int, *, limit: int,
                               offset: int) -> tuple[list[VolunteerServiceRecord], int]:
    await get_volunteer(session, volunteer_id)
    statement = (select(VolunteerServiceRecord).where(VolunteerServiceRecord.volunteer_id == volunteer_id)
                 .order_by(VolunteerServiceRecord.served_on.desc(), VolunteerServiceRecord.id.desc()))
    return await paginate(session, statement, limit=limit, offset=offset)


async def add_feedback(session: AsyncSession, volunteer_id: int, fields: Mapping[str, Any],
                       actor: Actor) -> VolunteerFeedback:
    await get_volunteer(session, volunteer_id)
    await _existing_elder(session, fields.get("elder_id"))
    row = VolunteerFeedback(volunteer_id=volunteer_id, recorded_by_id=actor.id, **fields)
    session.add(row)
    await session.flush()
    record(session, actor, action="volunteer.feedback", target_type="volunteer", target_id=volunteer_id,
           details={"feedback_id": row.id, "kind": row.kind.value, "rating": row.rating})
    return row


async def list_feedback(session: AsyncSession, volunteer_id: int, *, kind: FeedbackKind | None, limit: int,
                        offset: int) -> tuple[list[VolunteerFeedback], int]:
    await get_volunteer(session, volunteer_id)
    statement = (select(VolunteerFeedback).where(VolunteerFeedback.volunteer_id == volunteer_id)
                 .order_by(VolunteerFeedback.given_on.desc(), VolunteerFeedback.id.desc()))
    if kind is not None:
        statement = statement.where(VolunteerFeedback.kind == kind)
    return await paginate(session, statement, limit=limit, offset=offset)


# ---- pairings ---------------------------------------------------------------------------------------------------

async def list_pairings(session: AsyncSession, volunteer_id: int) -> list[Pairing]:
    await get_volunteer(session, volunteer_id)
    rows = await session.execute(select(Contact, Elder).join(Elder, Elder.id == Contact.elder_id)
                                 .where(Contact.volunteer_id == volunteer_id).order_by(Elder.id))
    return [Pairing(contact, elder) for contact, elder in rows.all()]


async def pair(session: AsyncSession, volunteer_id: int, elder_id: int, priority: int | None,
               actor: Actor) -> Pairing:
    """The volunteer becomes one of the elder's contacts (role volunteer), after the elder's other volunteers
    unless ``priority`` says where."""
    volunteer = await get_volunteer(session, volunteer_id)
    if volunteer.review_status is not ReviewStatus.APPROVED:
        raise Conflict(f"volunteer {volunteer_id} is {volunteer.review_status.value}: only approved volunteers "
                       "are paired with elders", code="not_approved")
    elder = await _existing_elder(session, elder_id)
    assert elder is not None
    taken = dict((await session.execute(
        select(Contact.priority, Contact.volunteer_id)
        .where(Contact.elder_id == elder_id, Contact.role == ContactRole.VOLUNTEER))).all())
    if volunteer_id in taken.values():
        raise Conflict(f"volunteer {volunteer_id} is already paired with elder {elder_id}", field="elder_id",
                       code="already_paired")
    if priority is None:
        priority = max(taken, default=0) + 1
    elif priority in taken:
        raise Conflict(f"elder {elder_id} has a volunteer with priority {priority} already", field="priority")
    contact = Contact(elder_id=elder_id, role=ContactRole.VOLUNTEER, name=volunteer.full_name,
                      phone=volunteer.phone, priority=priority, volunteer_id=volunteer_id)
    try:
        async with session.begin_nested():
            session.add(contact)
    except IntegrityError:  # another pairing took the priority between our read and this write
        raise Conflict(f"elder {elder_id} has a volunteer with priority {priority} already",
                       field="priority") from None
    record(session, actor, action="volunteer.pair", target_type="volunteer", target_id=volunteer_id,
           details={"elder_id": elder_id, "contact_id": contact.id, "priority": priority})
    return Pairing(contact, elder)


async def unpair(session: AsyncSession, volunteer_id: int, elder_id: int, actor: Actor) -> None:
    await get_volunteer(session, volunteer_id)
    removed = (await session.execute(delete(Contact).where(Contact.volunteer_id == volunteer_id,
                                                           Contact.elder_id == elder_id)
                                     .returning(Contact.id))).scalars().all()
    if not removed:
        raise NotFound(f"volunteer {volunteer_id} is not paired with elder {elder_id}", field="elder_id")
    record(session, actor, action="volunteer.unpair", target_type="volunteer", target_id=volunteer_id,
           details={"elder_id": elder_id, "contact_ids": sorted(removed)})
