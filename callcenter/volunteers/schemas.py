"""Request and response schemas of the volunteers registry. Phone numbers and resident IDs follow the elders'
rules (callcenter.elders.schemas): the same number written two ways is one number, and an ID's check digit is
verified."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from callcenter.api.schemas import Page, PageQuery, RequestSchema, ResponseSchema, RowId, text
from callcenter.elders.masking import mask_id_number
from callcenter.elders.schemas import BirthDate, Items, Name, Notes, Phone, Place, ResidentId
from callcenter.volunteers.models import FeedbackKind, ReviewStatus

TeamName = text(200)
Label = text(100)
CertificateNumber = text(64)
# A description or a feedback text: several lines are fine, an empty one is not.
Description = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


PastDate = BirthDate  # a day that has come: the elders' check for birth dates, "is in the future" otherwise


def _not_null(value: object) -> object:
    # An "after" check: it sees only values the request gave (defaults are not validated), so an absent field
    # stays unchanged while an explicit null is refused. (A "wrap" check would re-validate nested dates in
    # Python mode, where strict mode refuses ISO strings.)
    if value is None:
        raise ValueError("may not be null")
    return value


class Training(RequestSchema):
    """A training course the volunteer completed."""

    name: Label  # type: ignore[valid-type]
    completed_on: PastDate
    hours: float = Field(gt=0, le=1000, description="length of the course in hours")


class Certificate(RequestSchema):
    """A qualification the volunteer holds (first aid, nursing assistant…)."""

    name: Label  # type: ignore[valid-type]
    number: CertificateNumber | None = None  # type: ignore[valid-type]
    issued_on: PastDate
    expires_on: dt.date | None = None

    @field_validator("expires_on")
    @classmethod
    def _expires_after_issue(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        issued_on = info.data.get("issued_on")  # absent when it failed its own check
        if value is not None and issued_on is not None and value < issued_on:
            raise ValueError("is before the date of issue")
        return value


Trainings = Annotated[list[Training], Field(max_length=100)]
Certificates = Annotated[list[Certificate], Field(max_length=100)]


# ---- teams ------------------------------------------------------------------------------------------------------

class VolunteerTeamCreate(RequestSchema):
    name: TeamName  # type: ignore[valid-type]
    leader_name: Name | None = None  # type: ignore[valid-type]
    phone: Phone | None = None
    community: Place | None = None  # type: ignore[valid-type]
    notes: Notes | None = None


class VolunteerTeamPatch(VolunteerTeamCreate):
    """Only the fields present are changed; ``null`` clears an optional field."""

    name: TeamName | None = None  # type: ignore[valid-type]
    review_status: ReviewStatus | None = Field(None, description="the team's standing with the centre")

    _required_not_null = field_validator("name", "review_status")(_not_null)

    def changes(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class VolunteerTeamOut(ResponseSchema):
    id: int
    name: str
    leader_name: str | None
    phone: str | None
    community: str | None
    review_status: ReviewStatus
    notes: str | None
    created_at: dt.datetime
    volunteer_count: int = Field(0, description="volunteers in the team")


class VolunteerTeamList(ResponseSchema):
    items: list[VolunteerTeamOut]


# ---- volunteers -------------------------------------------------------------------------------------------------

class VolunteerFields(RequestSchema):
    """Every field a volunteer's file may be given or changed with (the review has its own action)."""

    full_name: Name  # type: ignore[valid-type]
    phone: Phone
    id_number: ResidentId | None = Field(None, description="18-digit resident ID; the check digit is verified")
    team_id: RowId | None = None
    community: Place | None = None  # type: ignore[valid-type]
    skills: Items = Field(default_factory=list)
    trainings: Trainings = Field(default_factory=list)
    certificates: Certificates = Field(default_factory=list)
    notes: Notes | None = None

    def stored(self, *, only_given: bool = False) -> dict[str, object]:
        """Field values as the columns store them: trainings and certificates as JSON-ready dicts (dates as ISO
        strings), the rest as validated. ``only_given``: just the fields the request named (a PATCH)."""
        names = set(self.model_fields_set) if only_given else set(type(self).model_fields)
        dumped = self.model_dump(mode="json", include=names & {"trainings", "certificates"})
        return {name: dumped[name] if name in dumped else getattr(self, name) for name in names}


class VolunteerCreate(VolunteerFields):
    pass


class VolunteerPatch(VolunteerFields):
    """Only the fields present are changed; ``null`` clears an optional field. A new name or phone number is
    copied to the volunteer's entries among paired elders' contacts."""

    full_name: Name | None = None  # type: ignore[valid-type]
    phone: Phone | None = None
    skills: Items | None = None
    trainings: Trainings | None = None
    certificates: Certificates | None = None

    _required_not_null = field_validator("full_name", "phone", "skills", "trainings", "certificates")(_not_null)

    def changes(self) -> dict[str, object]:
        return self.stored(only_given=True)


class TrainingOut(ResponseSchema):
    name: str
    completed_on: dt.date
    hours: float


class CertificateOut(ResponseSchema):
    name: str
    number: str | None = None
    issued_on: dt.date
    expires_on: dt.date | None = None


class VolunteerSummary(ResponseSchema):
    service_records: int = Field(description="services recorded")
    service_hours: float = Field(description="hours over all service records")
    evaluations: int
    average_rating: float | None = Field(description="mean of the evaluations' ratings (1..5), none without any")
    complaints: int
    awards: int
    paired_elders: int


class VolunteerOut(ResponseSchema):
    id: int
    full_name: str
    phone: str
    id_number: str | None
    team_id: int | None
    team_name: str | None = None
    community: str | None
    skills: list[str]
    trainings: list[TrainingOut]
    certificates: list[CertificateOut]
    review_status: ReviewStatus
    reviewed_by_id: int | None
    reviewed_by: str | None = Field(None, description="the reviewer's user name")
    reviewed_at: dt.datetime | None
    review_note: str | None
    notes: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    summary: VolunteerSummary
    masked_fields: list[Literal["id_number"]] = Field(
        default_factory=list, description="fields shown masked in this answer (`id_number`: 4403**********2041)")

    def masked(self) -> VolunteerOut:
        """This file with the resident ID masked (callcenter.elders.masking)."""
        if self.id_number is None:
            return self
        return self.model_copy(update={"id_number": mask_id_number(self.id_number), "masked_fields": ["id_number"]})


class VolunteerPage(Page):
    items: list[VolunteerOut]


Search = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]


class VolunteerQuery(PageQuery):
    name: Search | None = Field(None, description="part of the name")
    phone: Phone | None = Field(None, description="the volunteer's number (any usual way of writing it)")
    community: Search | None = Field(None, description="exact")
    team_id: RowId | None = None
    review_status: ReviewStatus | None = None


class ReviewRequest(RequestSchema):
    status: Literal[ReviewStatus.APPROVED, ReviewStatus.REJECTED, ReviewStatus.SUSPENDED]
    note: Notes | None = Field(None, validate_default=True,
                               description="required when rejecting or suspending: the volunteer is told why")

    @field_validator("note")
    @classmethod
    def _reason_for_a_refusal(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = (value or "").strip() or None
        status = info.data.get("status")
        if value is None and status is not None and status is not ReviewStatus.APPROVED:
            raise ValueError(f"give the reason when the status is {status.value}")
        return value


# ---- service records and feedback --------------------------------------------------------------------------------

class ServiceRecordCreate(RequestSchema):
    served_on: PastDate
    hours: float = Field(gt=0, le=24, description="hours of service that day")
    description: Description
    elder_id: RowId | None = Field(None, description="the elder served, if one")


class ServiceRecordOut(ResponseSchema):
    id: int
    volunteer_id: int
    elder_id: int | None
    served_on: dt.date
    hours: float
    description: str
    recorded_by_id: int | None
    created_at: dt.datetime


class ServiceRecordPage(Page):
    items: list[ServiceRecordOut]


class FeedbackCreate(RequestSchema):
    kind: FeedbackKind
    rating: int | None = Field(None, ge=1, le=5, validate_default=True,
                               description="1..5; required for an evaluation, only there")
    text: Description
    given_on: PastDate
    elder_id: RowId | None = Field(None, description="the elder it came from or is about, if one")

    @field_validator("rating")
    @classmethod
    def _rating_with_evaluations_only(cls, value: int | None, info: ValidationInfo) -> int | None:
        kind = info.data.get("kind")
        if kind is FeedbackKind.EVALUATION and value is None:
            raise ValueError("an evaluation needs a rating from 1 to 5")
        if kind is not None and kind is not FeedbackKind.EVALUATION and value is not None:
            raise ValueError(f"only evaluations are rated, not a {kind.value}")
        return value


class FeedbackOut(ResponseSchema):
    id: int
    volunteer_id: int
    kind: FeedbackKind
    rating: int | None
    text: str
    given_on: dt.date
    elder_id: int | None
    recorded_by_id: int | None
    created_at: dt.datetime


class FeedbackPage(Page):
    items: list[FeedbackOut]


class FeedbackQuery(PageQuery):
    kind: FeedbackKind | None = None


# ---- pairings ---------------------------------------------------------------------------------------------------

class PairingCreate(RequestSchema):
    elder_id: RowId
    priority: int | None = Field(None, ge=1, le=99,
                                 description="order among the elder's volunteers; default: after the others")


class PairingOut(ResponseSchema):
    elder_id: int
    elder_name: str
    community: str | None
    contact_id: int
    priority: int
    created_at: dt.datetime


class PairingList(ResponseSchema):
    items: list[PairingOut]

