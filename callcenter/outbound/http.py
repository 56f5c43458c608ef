"""/api/v1/outbound-jobs: the outbound engine's queue as supervisors see it, and stopping a job."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.api.schemas import Page, PageQuery, RequestSchema, ResponseSchema, RowId, text
from callcenter.db.paging import paginate
from callcenter.outbound.models import AttemptState, JobState, OutboundAttempt, OutboundJob, OutboundPurpose
from callcenter.outbound.services import OutboundDialer
from callcenter.users.models import Role

routes = ApiRoutes("outbound")
OUTBOUND_DIALER = web.AppKey("outbound_dialer", OutboundDialer)
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)


class OutboundJobQuery(PageQuery):
    purpose: OutboundPurpose | None = None
    state: JobState | None = None
    elder_id: RowId | None = None
    alarm_id: RowId | None = None
    work_order_id: RowId | None = None


class OutboundAttemptOut(ResponseSchema):
    number: int
    channel_id: str = Field(description="the call's linkedid")
    call_id: int | None
    state: AttemptState
    reason: str | None
    started_at: dt.datetime
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    digit: str | None
    digit_at: dt.datetime | None
    choice: str | None


class OutboundJobOut(ResponseSchema):
    id: int
    purpose: OutboundPurpose
    priority: int
    state: JobState
    owner: str
    owner_ref: int | None
    elder_id: int | None
    alarm_id: int | None
    work_order_id: int | None
    attempts: int
    max_attempts: int
    window_start: str | None
    window_end: str | None
    next_attempt_at: dt.datetime
    expires_at: dt.datetime | None
    outcome: str | None
    digit: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    attempt_log: list[OutboundAttemptOut] = Field(default_factory=list, description="each dial, oldest first")


class OutboundJobPage(Page):
    items: list[OutboundJobOut]


class CancelJob(RequestSchema):
    reason: text(100) = Field(description="why it is stopped")  # type: ignore[valid-type]


@routes.route("GET", "/outbound-jobs", summary="The outbound calls queued, ringing and done",
              query=OutboundJobQuery, response=OutboundJobPage, roles=READERS)
async def index(request: ApiRequest) -> OutboundJobPage:
    """Newest first. The number dialled is not listed: it is on the call (``call_id``) and in the audit log."""
    query: OutboundJobQuery = request.query
    statement = select(OutboundJob).order_by(OutboundJob.id.desc())
    for column, value in ((OutboundJob.purpose, query.purpose), (OutboundJob.state, query.state),
                          (OutboundJob.elder_id, query.elder_id), (OutboundJob.alarm_id, query.alarm_id),
                          (OutboundJob.work_order_id, query.work_order_id)):
        if value is not None:
            statement = statement.where(column == value)
    async with request.require(DATABASE).transaction(read_only=True) as session:
        jobs, total = await paginate(session, statement, limit=query.limit, offset=query.offset)
        attempts = (await session.scalars(select(OutboundAttempt).where(
            OutboundAttempt.job_id.in_([job.id for job in jobs])).order_by(OutboundAttempt.id))).all()
    by_job: dict[int, list[OutboundAttemptOut]] = {}
    for attempt in attempts:
        by_job.setdefault(attempt.job_id, []).append(OutboundAttemptOut.model_validate(attempt))
    items = [OutboundJobOut.model_validate(job).model_copy(update={"attempt_log": by_job.get(job.id, [])})
             for job in jobs]
    return OutboundJobPage(items=items, total=total, limit=query.limit, offset=query.offset)


@routes.route("POST", "/outbound-jobs/{id}/cancel", summary="Stop an outbound call not yet reached",
              body=CancelJob, response=OutboundJobOut, roles=(Role.SUPERVISOR,), errors=(404,))
async def cancel(request: ApiRequest) -> OutboundJobOut:
    """A job queued is not dialled again; one ringing now is left to end and not retried."""
    body: CancelJob = request.body
    job = await request.http.app[OUTBOUND_DIALER].cancel(request.params["id"], reason=body.reason,
                                                          actor=request.actor)
    return OutboundJobOut.model_validate(job)
