"""Schemas of the providers API: the registry, staff, portal accounts, API keys, matching, evaluation and the
signed reporting API's report."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from callcenter.api.schemas import Instant, QuerySchema, RequestSchema, ResponseSchema, RowId, Secret, refuse_null, text
from callcenter.elders.schemas import Phone
from callcenter.orders.schemas import Receipt
from callcenter.providers.models import ServiceType
from callcenter.users.models import Role
from callcenter.users.schemas import DisplayName, Username

Community = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Name = text(200)
PersonName = text(100)
Address = text(300)
Label = text(200)
LicenceNumber = text(64)


class Fee(RequestSchema):
    """What one service costs the elder (or the subsidy scheme)."""

    price_yuan: float = Field(ge=0, le=1_000_000, description="price in yuan, 0 for a free service")
    unit: text(20) | None = Field(None, description="per what: 次, 小时, 餐…")  # type: ignore[valid-type]
    note: text(200) | None = None  # type: ignore[valid-type]


Fees = Annotated[dict[ServiceType, Fee], Field(max_length=len(ServiceType),
                                               description="price per service offered")]


def _fees_offered(fees: dict[ServiceType, Fee] | None, services: list[ServiceType] | None) -> None:
    if fees and services is not None:
        stray = sorted(service.value for service in fees if service not in services)
        if stray:
            raise ValueError(f"fees for services not offered: {', '.join(stray)}")


class ProviderFields(RequestSchema):
    """Every field a provider's registry entry may be given or changed with."""

    name: Name  # type: ignore[valid-type]
    phone: Phone | None = None
    services: list[ServiceType] = Field(min_length=1, max_length=len(ServiceType))
    communities: list[Community] = Field(default_factory=list, max_length=200,
                                         description="communities served; empty: the whole city")
    contact_person: PersonName | None = None  # type: ignore[valid-type]
    address: Address | None = None  # type: ignore[valid-type]
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    qualification: Label | None = Field(None, description="资质: what the provider is certified for")  # type: ignore[valid-type]
    licence_number: LicenceNumber | None = None  # type: ignore[valid-type]
    licence_expires_on: dt.date | None = Field(None, description="past this day the provider is neither matched "
                                                                  "nor dispatched")
    fees: Fees = Field(default_factory=dict)
    active: bool = True


class ProviderCreate(ProviderFields):
    @model_validator(mode="after")
    def _fees_for_offered_services(self) -> Self:
        _fees_offered(self.fees, self.services)
        return self


def _changes(patch: RequestSchema) -> dict[str, object]:
    """The fields a PATCH body gave, with their new values."""
    return {name: getattr(patch, name) for name in patch.model_fields_set}


# Fields a provider cannot be without: PATCH may change them but never set them to null.
_NOT_NULL = ("name", "services", "communities", "fees", "active")


class ProviderPatch(ProviderFields):
    """Only the fields present are changed; ``null`` clears an optional field. Fees must name services the
    provider offers after the change."""

    name: Name | None = None  # type: ignore[valid-type]
    services: list[ServiceType] | None = Field(None, min_length=1, max_length=len(ServiceType))
    communities: list[Community] | None = Field(None, max_length=200)
    fees: Fees | None = None
    active: bool | None = None

    _not_null = field_validator(*_NOT_NULL, mode="wrap")(refuse_null)

    @model_validator(mode="after")
    def _fees_for_offered_services(self) -> Self:
        _fees_offered(self.fees, self.services)  # the rest is checked against the stored services
        return self

    changes = _changes


class FeeOut(ResponseSchema):
    price_yuan: float
    unit: str | None = None
    note: str | None = None


class ProviderOut(ResponseSchema):
    id: int
    name: str
    phone: str | None
    services: list[ServiceType]
    communities: list[str]
    active: bool
    contact_person: str | None
    address: str | None
    latitude: float | None
    longitude: float | None
    qualification: str | None
    licence_number: str | None
    licence_expires_on: dt.date | None
    fees: dict[str, FeeOut]
    rating: float | None = Field(description="1..5 from satisfaction, complaints and urgings; null: not rated yet")
    created_at: dt.datetime
    updated_at: dt.datetime


class ProviderList(ResponseSchema):
    items: list[ProviderOut]


class ProviderQuery(QuerySchema):
    service: ServiceType | None = None


class StaffFields(RequestSchema):
    name: PersonName  # type: ignore[valid-type]
    phone: Phone | None = None
    skills: list[ServiceType] = Field(default_factory=list, max_length=len(ServiceType),
                                      description="services this person delivers (among the provider's); "
                                                  "empty: any the provider offers")
    certificate: Label | None = Field(None, description="e.g. 养老护理员证 and its number")  # type: ignore[valid-type]
    active: bool = True


class StaffCreate(StaffFields):
    pass


class StaffPatch(StaffFields):
    """Only the fields present are changed; ``active: false`` takes the person off new assignments."""

    name: PersonName | None = None  # type: ignore[valid-type]
    skills: list[ServiceType] | None = Field(None, max_length=len(ServiceType))
    active: bool | None = None

    _not_null = field_validator("name", "skills", "active", mode="wrap")(refuse_null)
    changes = _changes


class StaffOut(ResponseSchema):
    id: int
    provider_id: int
    name: str
    phone: str | None
    skills: list[ServiceType]
    certificate: str | None
    active: bool
    created_at: dt.datetime


class StaffList(ResponseSchema):
    items: list[StaffOut]


class AccountCreate(RequestSchema):
    username: Username
    password: Secret
    display_name: DisplayName | None = None  # type: ignore[valid-type]


class AccountOut(ResponseSchema):
    id: int
    username: str
    display_name: str | None
    role: Role
    provider_id: int | None
    active: bool
    created_at: dt.datetime


class ApiKeyOut(ResponseSchema):
    key_id: str
    provider_id: int
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="the HMAC-SHA256 signing secret: shown this once, never again")


class ApiKeyList(ResponseSchema):
    items: list[ApiKeyOut]


class SuggestionQuery(QuerySchema):
    service: ServiceType
    elder_id: RowId | None = None


class Suggestion(ResponseSchema):
    provider: ProviderOut
    reason: Literal["chosen_by_elder", "serves_community", "citywide", "other_area"]
    rank: int
    distance_km: float | None = Field(description="from the elder's home; null when either position is unknown")
    rating: float | None
    load: int = Field(description="the provider's orders now dispatched, accepted or in service")
    score: float = Field(description="area + distance + rating − load; higher is better (see providers.services)")


class SuggestionList(ResponseSchema):
    service: ServiceType
    elder_id: int | None
    items: list[Suggestion]


class Evaluation(ResponseSchema):
    provider_id: int
    orders_closed: int = Field(description="closed orders the provider served")
    rated_orders: int = Field(description="closed orders with a satisfaction score")
    average_satisfaction: float | None = Field(description="1..5 over the rated closed orders")
    founded_complaints: int
    supervision_cases: int
    urgings: int
    rating: float | None = Field(description="the rating by the formula, from these figures")


ReportAction = Literal["accept", "decline", "assign", "start", "finish"]


class ProviderReportIn(RequestSchema):
    """A status report from a provider's own system (see docs/provider-api.md)."""

    report_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")] = Field(
        description="the provider's idempotency key: a retried delivery with the same one gets the first answer")
    work_order_id: RowId | None = None
    work_order_number: text(32) | None = None  # type: ignore[valid-type]
    action: ReportAction
    reason: text(500) | None = Field(None, description="decline: why")  # type: ignore[valid-type]
    staff_id: RowId | None = Field(None, description="assign: the staff member sent")
    at: Instant | None = Field(None, description="start: when the staff member arrived (with its time zone)")
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    receipt: Receipt | None = Field(None, description="finish: the service receipt")

    @model_validator(mode="after")
    def _one_order_reference(self) -> Self:
        if (self.work_order_id is None) == (self.work_order_number is None):
            raise ValueError("give exactly one of work_order_id and work_order_number")
        return self


class ProviderReportOut(ResponseSchema):
    report_id: str
    work_order_id: int
    work_order_number: str
    action: ReportAction
    status: str = Field(description="the order's status after the report")
    received_at: dt.datetime
