"""Response and query schemas of work orders and their event trail (seed 4.2.4, 6)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from callcenter.api.schemas import MAX_INT, Instant, Page, PageQuery, RequestSchema, ResponseSchema, RowId, text
from callcenter.elders.schemas import Phone
from callcenter.orders.models import ComplaintSource, WorkOrderKind, WorkOrderStatus
from callcenter.providers.models import ServiceType


class Action(enum.StrEnum):
    """The steps of an order's life (seed 6); orders.workflow says which is allowed from where and by whom."""

    SUBMIT = "submit"  # the intake is complete: to review
    RETURN = "return"  # the reviewer sends it back, with a reason
    DISPATCH = "dispatch"  # the reviewer sends it to the provider
    ACCEPT = "accept"  # provider
    DECLINE = "decline"  # provider, with a reason: the order is re-matched
    ASSIGN = "assign"  # provider: the staff member who goes
    START = "start"  # staff on site
    FINISH = "finish"  # staff done: the receipt
    APPROVE_RECEIPT = "approve_receipt"  # centre: receipt complete, on to the follow-up call
    REJECT_RECEIPT = "reject_receipt"  # centre: incomplete receipt goes back
    RECORD_FOLLOW_UP = "record_follow_up"  # centre: the elder's satisfaction and comments from the call back
    CLOSE = "close"
    REOPEN = "reopen"  # follow-up found it unsolved: back to review for another dispatch
    ANSWER = "answer"  # a consultation's answer
    INVESTIGATE = "investigate"  # complaint handler takes it
    ADD_EVIDENCE = "add_evidence"
    PROPOSE_RESOLUTION = "propose_resolution"
    CONTACT_COMPLAINANT = "contact_complainant"
    CANCEL = "cancel"


class WorkOrderEventOut(ResponseSchema):
    id: int
    at: dt.datetime
    actor_id: int | None
    actor_label: str
    action: str
    from_status: str | None
    to_status: str | None
    call_id: int | None
    details: dict[str, Any]


class WorkOrderSummary(ResponseSchema):
    """An order in a list: what picks it out, no more (minimum necessary). The description (what the elder said),
    the place and the coordinates (where the elder is) are in the detail, a read of the elder's file."""

    id: int
    number: str
    kind: WorkOrderKind
    status: WorkOrderStatus
    priority: int = Field(description="1 most urgent … 5 least")
    elder_id: int | None
    call_id: int | None
    device_id: int | None
    title: str
    service: ServiceType | None = Field(description="the service needed")
    provider_id: int | None = Field(description="the provider chosen for it")
    created_by_id: int | None
    due_at: dt.datetime | None
    dispatched_at: dt.datetime | None = Field(description="when it was last sent to its provider")
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    legal_hold: bool = Field(description="a legal hold keeps the log and recordings of this order's calls from "
                                         "retention; details at /api/v1/work-orders/{id}/legal-hold")


class ComplaintOut(ResponseSchema):
    source: ComplaintSource
    external_reference: str | None
    external_deadline: dt.datetime | None
    complainant_name: str | None
    complainant_phone: str | None
    about_provider_id: int | None
    handler_id: int | None
    evidence: list[dict[str, Any]]
    proposed_resolution: str | None
    complainant_contacted_at: dt.datetime | None
    complainant_response: str | None
    founded: bool | None


class ElderSummary(ResponseSchema):
    """What the one serving the order needs to reach the elder: no health data (minimum necessary)."""

    id: int
    full_name: str
    phone: str | None
    address: str | None
    community: str | None


class FollowUpElder(ResponseSchema):
    """Whom the follow-up queue calls back: the name and number, nothing more of the file."""

    id: int
    full_name: str
    phone: str | None


class WorkOrderDetail(WorkOrderSummary):
    description: str | None
    location_text: str | None
    latitude: float | None
    longitude: float | None
    staff_id: int | None
    accepted_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    closed_at: dt.datetime | None
    receipt: dict[str, Any] | None
    follow_up: dict[str, Any] | None
    satisfaction: int | None = Field(description="1 very dissatisfied … 5 very satisfied")
    resolution: str | None
    complaint: ComplaintOut | None
    elder: ElderSummary | None = None
    allowed_actions: list[Action] = Field(default_factory=list,
                                       description="the workflow actions the requester may take now")
    events: list[WorkOrderEventOut]


class ComplaintIntake(RequestSchema):
    source: ComplaintSource = ComplaintSource.CALL
    external_reference: text(100) | None = None  # type: ignore[valid-type]
    external_deadline: Instant | None = Field(None, description="the forwarding body's own deadline")
    complainant_name: text(100) | None = None  # type: ignore[valid-type]
    complainant_phone: Phone | None = None
    about_provider_id: RowId | None = None


class WorkOrderCreate(RequestSchema):
    """Intake (seed 6.1). A consultation answered on the call (``answer`` given) is closed at once."""

    kind: WorkOrderKind
    elder_id: RowId | None = None
    call_id: RowId | None = Field(None, description="the call it was taken on")
    title: text(200) | None = None  # type: ignore[valid-type]
    description: text(4000) | None = None  # type: ignore[valid-type]
    priority: int | None = Field(None, ge=1, le=5)
    location_text: text(300) | None = None  # type: ignore[valid-type]
    service: ServiceType | None = None
    provider_id: RowId | None = None
    due_at: Instant | None = Field(None, description="default: the kind's deadline (48 h consultation, "
                                                           "5 working days complaint, …)")
    answer: text(4000) | None = Field(None, description="consultation only: the answer given on the call")  # type: ignore[valid-type]
    complaint: ComplaintIntake | None = Field(None, description="complaint only")

    @model_validator(mode="after")
    def _kind_specific(self) -> WorkOrderCreate:
        if self.answer is not None and self.kind is not WorkOrderKind.CONSULTATION:
            raise ValueError("answer is for consultations only")
        if self.complaint is not None and self.kind is not WorkOrderKind.COMPLAINT:
            raise ValueError("complaint details are for complaints only")
        return self


class Receipt(RequestSchema):
    """The service receipt (seed 6.3): what was done, the result, how long, the elder's satisfaction."""

    summary: text(2000) = Field(description="what was done")  # type: ignore[valid-type]
    result: Literal["completed", "partial", "not_done"]
    duration_minutes: int = Field(ge=1, le=24 * 60)
    satisfaction: int = Field(ge=1, le=5, description="the elder's: 1 very dissatisfied … 5 very satisfied")
    notes: text(2000) | None = None  # type: ignore[valid-type]


class FollowUpResult(RequestSchema):
    """The centre's call back to the elder (seed 6.4)."""

    satisfaction: int = Field(ge=1, le=5)
    comments: text(2000) | None = None  # type: ignore[valid-type]
    solved: bool = Field(description="false keeps the order open: reopen it for another visit")
    call_id: RowId | None = Field(None, description="the follow-up call")


class ActionPayload(RequestSchema):
    """The fields an action may need; each action checks the ones it needs (see orders.workflow)."""

    reason: text(2000) | None = None  # type: ignore[valid-type]
    provider_id: RowId | None = Field(None, description="dispatch: the provider (default: the best match)")
    staff_id: RowId | None = Field(None, description="assign: the provider's staff member")
    at: Instant | None = Field(None, description="start: when the staff member arrived (default now)")
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    receipt: Receipt | None = None
    follow_up: FollowUpResult | None = None
    answer: text(4000) | None = None  # type: ignore[valid-type]
    evidence: text(4000) | None = None  # type: ignore[valid-type]
    proposed_resolution: text(4000) | None = None  # type: ignore[valid-type]
    complainant_response: text(4000) | None = None  # type: ignore[valid-type]
    outcome: text(4000) | None = Field(None, description="close: the outcome / resolution")  # type: ignore[valid-type]
    founded: bool | None = Field(None, description="closing a complaint: was it founded")
    call_id: RowId | None = Field(None, description="the call this step was taken on")


class ActionRequest(ActionPayload):
    action: Action
    version: int = Field(ge=1, le=MAX_INT, description="the order's version as read; a stale one is refused with 409")

    def payload(self) -> ActionPayload:
        return ActionPayload.model_validate(self.model_dump(exclude={"action", "version"}, exclude_unset=True))


class FollowUpItem(ResponseSchema):
    order: WorkOrderSummary
    elder: FollowUpElder | None
    receipt: dict[str, Any] | None
    waiting_since: dt.datetime


class FollowUpQueue(ResponseSchema):
    items: list[FollowUpItem]


class WorkOrderPage(Page):
    items: list[WorkOrderSummary]


class WorkOrderQuery(PageQuery):
    elder_id: RowId | None = None
    provider_id: RowId | None = None
    status: WorkOrderStatus | None = None
    kind: WorkOrderKind | None = None


class WorkOrderUpdate(RequestSchema):
    """What an agent completes during the call. ``version`` is the one the agent read (optimistic locking)."""

    version: int = Field(ge=1, le=MAX_INT, description="the order's version as read; a stale one is refused with 409")
    kind: WorkOrderKind | None = None
    title: text(200) | None = None  # type: ignore[valid-type]
    description: text(4000, min_length=0) | None = None  # type: ignore[valid-type]
    priority: int | None = Field(None, ge=1, le=5)
    location_text: text(300) | None = None  # type: ignore[valid-type]
    service: ServiceType | None = None
    provider_id: RowId | None = Field(None, description="must offer the order's service")
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    due_at: Instant | None = None

    @field_validator("kind", "title", "priority")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

    def changes(self) -> dict[str, object]:
        """Only the fields the request names (an omitted field is left as it is)."""
        return {name: getattr(self, name) for name in self.model_fields_set if name != "version"}
