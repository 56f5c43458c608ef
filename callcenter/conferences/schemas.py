"""Schemas of the conference API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from callcenter.api.schemas import RequestSchema, ResponseSchema, RowId
from callcenter.conferences.models import PartyRole, PartyState

# Digits only (optionally a leading +): the number is dialled as PJSIP/<number>@trunk.
PhoneNumber = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{3,20}$")]


class ParticipantCreate(RequestSchema):
    role: PartyRole = Field(description="120 | doctor | relative | social_worker")
    contact_id: RowId | None = Field(None, description="a contact of the elder; default: the first by priority")
    number: PhoneNumber | None = Field(None, description="dial this number instead of a contact's")


class ParticipantOut(ResponseSchema):
    id: int
    role: PartyRole
    name: str | None
    number: str | None
    contact_id: int | None
    state: PartyState
    muted: bool
    failure_reason: str | None
    joined_at: dt.datetime | None
    left_at: dt.datetime | None


class Roster(ResponseSchema):
    call_id: int
    active: bool = Field(description="someone is still in the conference")
    participants: list[ParticipantOut]


class Done(ResponseSchema):
    ok: bool = True
