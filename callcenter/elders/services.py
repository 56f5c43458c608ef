"""Elders' files and their contacts: create, change, find. Each function works in the caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, column, func, or_, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from callcenter.api.errors import Conflict, NotFound
from callcenter.audit.services import Actor, record
from callcenter.db.paging import paginate
from callcenter.db.sealed import lookup_digest
from callcenter.elders.models import ID_NUMBER_INDEX, Contact, ContactRole, Elder
from callcenter.providers.services import active_provider


@dataclass(frozen=True, slots=True)
class NewContact:
    role: ContactRole
    name: str
    phone: str
    priority: int
    relationship: str | None = None


def _with_contacts(statement: Select[tuple[Elder]]) -> Select[tuple[Elder]]:
    return statement.options(selectinload(Elder.contacts))


async def get_elder(session: AsyncSession, elder_id: int) -> Elder:
    elder = await session.scalar(_with_contacts(select(Elder).where(Elder.id == elder_id)))
    if elder is None:
        raise NotFound(f"no elder {elder_id}", field="id")
    return elder


async def _check_id_number_free(session: AsyncSession, id_number: str | None, elder_id: int | None) -> None:
    if id_number is None:
        return
    holder = await session.scalar(select(Elder.id).where(
        Elder.id_number_digest == lookup_digest(session, id_number, ID_NUMBER_INDEX)))
    if holder is not None and holder != elder_id:
        raise Conflict(f"this resident ID is already on elder {holder}'s file", field="id_number")


def _check_contacts_unique(contacts: Sequence[NewContact], taken: set[tuple[ContactRole, int]],
                           field_prefix: str) -> None:
    seen = set(taken)
    for index, contact in enumerate(contacts):
        key = (contact.role, contact.priority)
        if key in seen:
            raise Conflict(f"a {contact.role.value} with priority {contact.priority} already exists",
                           field=f"{field_prefix}{index}.priority" if field_prefix else "priority")
        seen.add(key)


def _contact(elder_id: int | None, contact: NewContact) -> Contact:
    return Contact(elder_id=elder_id, role=contact.role, name=contact.name, phone=contact.phone,
                   priority=contact.priority, relationship_to_elder=contact.relationship)


async def create_elder(session: AsyncSession, fields: Mapping[str, Any], contacts: Sequence[NewContact],
                       actor: Actor, *, today: dt.date) -> Elder:
    """``today`` is the centre's date: a chosen provider's licence must be valid on it."""
    await _check_id_number_free(session, fields.get("id_number"), None)
    if fields.get("preferred_provider_id") is not None:
        await active_provider(session, fields["preferred_provider_id"], field="preferred_provider_id", today=today)
    _check_contacts_unique(contacts, set(), "contacts.")
    elder = Elder(**fields)
    elder.contacts = [_contact(None, c) for c in contacts]
    session.add(elder)
    await session.flush()
    record(session, actor, action="elder.create", target_type="elder",
           target_id=elder.id, details={"contacts": len(contacts)})
    return elder


async def update_elder(session: AsyncSession, elder_id: int, changes: Mapping[str, Any], actor: Actor, *,
                       today: dt.date) -> Elder:
    """``today`` is the centre's date: a newly chosen provider's licence must be valid on it."""
    elder = await get_elder(session, elder_id)
    if "id_number" in changes:
        await _check_id_number_free(session, changes["id_number"], elder_id)
    if changes.get("preferred_provider_id") is not None:
        await active_provider(session, changes["preferred_provider_id"], field="preferred_provider_id",
                              today=today)
    changed = sorted(name for name, value in changes.items() if getattr(elder, name) != value)
    for name in changed:
        setattr(elder, name, changes[name])
    if changed:
        await session.flush()
        await session.refresh(elder, ["updated_at"])
        record(session, actor, action="elder.update", target_type="elder",
               target_id=elder.id, details={"fields": changed})
    return elder


# What refers to an elder and is their history: a file with any of it cannot be deleted (the calls' and orders'
# trail would lose whom it was about). Named as tables, not models, so this module imports none of those domains.
HISTORY = (("calls", "call(s)"), ("work_orders", "work order(s)"), ("devices", "device(s)"),
           ("supervision_cases", "supervision case(s)"), ("volunteer_service_records", "volunteer service record(s)"),
           ("volunteer_feedback", "volunteer feedback record(s)"), ("alarms", "alarm(s)"),
           ("readings", "health reading(s)"),
           ("health_examinations", "examination(s)"), ("health_visits", "follow-up visit(s)"),
           ("health_doctor_notes", "doctor's note(s)"), ("capability_assessments", "capability assessment(s)"),
           ("chronic_disease_plans", "chronic-disease plan(s)"), ("sms_messages", "SMS message(s)"))


async def delete_elder(session: AsyncSession, elder_id: int, actor: Actor) -> None:
    """Delete an elder's file with its contacts; refused (409) while anything of their history refers to it."""
    elder = await get_elder(session, elder_id)
    history: list[str] = []
    for table_name, label in HISTORY:
        rows = table(table_name, column("elder_id"))
        count = await session.scalar(select(func.count()).select_from(rows).where(rows.c.elder_id == elder_id))
        if count:
            history.append(f"{count} {label}")
    if history:
        raise Conflict(f"elder {elder_id}'s file has history ({', '.join(history)}) and cannot be deleted: "
                       "a file that calls, orders or devices refer to is kept", code="elder_has_history")
    record(session, actor, action="elder.delete", target_type="elder", target_id=elder.id,
           details={"full_name": elder.full_name, "contacts": len(elder.contacts)})
    await session.delete(elder)
    await session.flush()


async def add_contact(session: AsyncSession, elder_id: int, contact: NewContact, actor: Actor) -> Contact:
    elder = await get_elder(session, elder_id)
    _check_contacts_unique([contact], {(c.role, c.priority) for c in elder.contacts}, "")
    row = _contact(elder.id, contact)
    session.add(row)
    await session.flush()
    record(session, actor, action="contact.create", target_type="elder",
           target_id=elder.id,
           details={"contact_id": row.id, "role": contact.role.value, "priority": contact.priority})
    return row


async def list_contacts(session: AsyncSession, elder_id: int) -> list[Contact]:
    return list((await get_elder(session, elder_id)).contacts)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_elders(session: AsyncSession, *, q: str | None, phone: str | None, community: str | None,
                        limit: int, offset: int) -> tuple[list[Elder], int]:
    """``q``: part of the name or address, or a whole resident ID (sealed at rest, it is found by its blind index,
    never by a part); ``phone``: the elder's or any contact's number (normalised); ``community``: exact."""
    statement = _with_contacts(select(Elder)).order_by(Elder.id)
    if q:
        pattern = f"%{_escape_like(q)}%"
        statement = statement.where(or_(Elder.full_name.ilike(pattern, escape="\\"),
                                        Elder.address.ilike(pattern, escape="\\"),
                                        Elder.id_number_digest == lookup_digest(session, q, ID_NUMBER_INDEX)))
    if phone:
        statement = statement.where(or_(Elder.phone == phone,
                                        Elder.id.in_(select(Contact.elder_id).where(Contact.phone == phone))))
    if community:
        statement = statement.where(Elder.community == community)
    return await paginate(session, statement, limit=limit, offset=offset)
