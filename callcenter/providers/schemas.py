"""Schemas of the providers API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from callcenter.api.schemas import QuerySchema, RequestSchema, ResponseSchema, text
from callcenter.providers.models import ServiceType

Community = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class ProviderCreate(RequestSchema):
    name: text(200)  # type: ignore[valid-type]
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9-]{2,30}$")] | None = None
    services: list[ServiceType] = Field(min_length=1, max_length=len(ServiceType))
    communities: list[Community] = Field(default_factory=list, max_length=200,
                                         description="communities served; empty: the whole city")


class ProviderOut(ResponseSchema):
    id: int
    name: str
    phone: str | None
    services: list[ServiceType]
    communities: list[str]
    active: bool
    created_at: dt.datetime


class ProviderList(ResponseSchema):
    items: list[ProviderOut]


class ProviderQuery(QuerySchema):
    service: ServiceType | None = None


class SuggestionQuery(QuerySchema):
    service: ServiceType
    elder_id: int | None = Field(None, ge=1)


class Suggestion(ResponseSchema):
    provider: ProviderOut
    reason: str = Field(description="chosen_by_elder | serves_community | citywide | other_area")
    rank: int


class SuggestionList(ResponseSchema):
    service: ServiceType
    elder_id: int | None
    items: list[Suggestion]
