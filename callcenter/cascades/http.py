"""/api/v1/cascades and /api/v1/elders/{id}/responders: contact cascades from the alarm card or the order, and
the elder's responder list; /api/v1/work-orders/{id}/help-coming tells the elder help is on its way."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from pydantic import Field, model_validator
from sqlalchemy import select

from callcenter.api.context import DATABASE
from callcenter.api.errors import NotFound
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.api.schemas import Page, PageQuery, RequestSchema, ResponseSchema, RowId
from callcenter.cascades.models import (
    Cascade,
    CascadeCall,
    CascadeCallState,
    CascadeState,
    Responder,
    ResponderChannel,
)
from callcenter.cascades.services import CascadeService, responder_list, set_responders
from callcenter.db.paging import paginate
from callcenter.elders.models import Elder
from callcenter.users.models import Role

routes = ApiRoutes("cascades")
CASCADES = web.AppKey("cascades", CascadeService)
STAFF = (Role.SUPERVISOR, Role.AGENT)
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)


class ResponderIn(RequestSchema):
    contact_id: RowId = Field(description="one of the elder's contacts")
    channel: ResponderChannel = ResponderChannel.CALL
    wait_seconds: int = Field(90, ge=30, le=1800, description="before the next responder is also called")
    eta_minutes: int = Field(30, ge=1, le=240, description="how long they take to reach the elder")


class ResponderListIn(RequestSchema):
    responders: list[ResponderIn] = Field(max_length=20, description="in calling order")


class ResponderOut(ResponseSchema):
    contact_id: int | None
    name: str
    channel: ResponderChannel
    wait_seconds: int
    eta_minutes: int


class ResponderListOut(ResponseSchema):
    configured: bool = Field(description="false: the default order of the elder's contacts")
    responders: list[ResponderOut]


class CascadeStart(RequestSchema):
    alarm_id: RowId | None = None
    work_order_id: RowId | None = None

    @model_validator(mode="after")
    def _one(self) -> CascadeStart:
        if (self.alarm_id is None) == (self.work_order_id is None):
            raise ValueError("give the alarm_id or the work_order_id, not both")
        return self


class CascadeCallOut(ResponseSchema):
    position: int
    name: str
    channel: ResponderChannel
    state: CascadeCallState
    key: str | None
    key_at: dt.datetime | None
    call_id: int | None
    started_at: dt.datetime
    ended_at: dt.datetime | None


class CascadeOut(ResponseSchema):
    id: int
    elder_id: int
    alarm_id: int | None
    work_order_id: int
    reason: str
    state: CascadeState
    steps: int
    started_by: str
    started_at: dt.datetime
    accepted_by: str | None
    accepted_at: dt.datetime | None
    eta_minutes: int | None
    finished_at: dt.datetime | None
    calls: list[CascadeCallOut] = Field(default_factory=list)


class CascadePage(Page):
    items: list[CascadeOut]


class CascadeQuery(PageQuery):
    alarm_id: RowId | None = None
    work_order_id: RowId | None = None
    state: CascadeState | None = None


class HelpComing(RequestSchema):
    eta_minutes: int = Field(ge=1, le=240, description="expected arrival, said to the elder")


class HelpComingOut(ResponseSchema):
    job_id: int
    work_order_id: int
    eta_minutes: int


async def _with_calls(request: ApiRequest, cascades: list[Cascade]) -> list[CascadeOut]:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        calls = (await session.scalars(select(CascadeCall).where(
            CascadeCall.cascade_id.in_([c.id for c in cascades])).order_by(CascadeCall.position))).all()
    by_cascade: dict[int, list[CascadeCallOut]] = {}
    for call in calls:
        by_cascade.setdefault(call.cascade_id, []).append(CascadeCallOut.model_validate(call))
    return [CascadeOut.model_validate(c).model_copy(update={"calls": by_cascade.get(c.id, [])}) for c in cascades]


@routes.route("GET", "/elders/{id}/responders", summary="An elder's responders, in calling order",
              response=ResponderListOut, roles=READERS, errors=(404,))
async def responders(request: ApiRequest) -> ResponderListOut:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        if await session.get(Elder, request.params["id"]) is None:
            raise NotFound(f"no elder {request.params['id']}", field="id")
        configured = await session.scalar(select(Responder.id).where(
            Responder.elder_id == request.params["id"]).limit(1)) is not None
        entries = await responder_list(session, request.params["id"], request.http.app[CASCADES].settings)
    return ResponderListOut(configured=configured, responders=[ResponderOut(
        contact_id=e.contact_id, name=e.name, channel=e.channel, wait_seconds=e.wait_seconds,
        eta_minutes=e.eta_minutes) for e in entries])


@routes.route("PUT", "/elders/{id}/responders", summary="Set an elder's responders", body=ResponderListIn,
              response=ResponderListOut, roles=STAFF, errors=(404,))
async def put_responders(request: ApiRequest) -> ResponderListOut:
    """Replaces the list (empty: back to the contacts' default order). Each responder must be one of the elder's
    contacts with a dialable number (422 names ``responders[i].contact_id``). Audited."""
    body: ResponderListIn = request.body
    async with request.require(DATABASE).transaction() as session:
        await set_responders(session, request.params["id"], [r.model_dump() for r in body.responders],
                             actor=request.actor)
    return await responders(request)


@routes.route("POST", "/cascades", summary="Start calling an alarm's responders", body=CascadeStart,
              response=CascadeOut, status=201, roles=STAFF, errors=(404, 409))
async def start(request: ApiRequest) -> CascadeOut:
    """From the alarm card (``alarm_id``) or the order (``work_order_id``): the responders are called in order
    until one presses 1. 409: one is running for that order; 422: nobody to call."""
    body: CascadeStart = request.body
    cascade = await request.http.app[CASCADES].begin(alarm_id=body.alarm_id, work_order_id=body.work_order_id,
                                                      actor=request.actor)
    return (await _with_calls(request, [cascade]))[0]


@routes.route("GET", "/cascades", summary="Contact cascades", query=CascadeQuery, response=CascadePage,
              roles=READERS)
async def index(request: ApiRequest) -> CascadePage:
    query: CascadeQuery = request.query
    statement = select(Cascade).order_by(Cascade.id.desc())
    for column, value in ((Cascade.alarm_id, query.alarm_id), (Cascade.work_order_id, query.work_order_id),
                          (Cascade.state, query.state)):
        if value is not None:
            statement = statement.where(column == value)
    async with request.require(DATABASE).transaction(read_only=True) as session:
        cascades, total = await paginate(session, statement, limit=query.limit, offset=query.offset)
    return CascadePage(items=await _with_calls(request, cascades), total=total, limit=query.limit,
                       offset=query.offset)


def _control(action: str, summary: str) -> None:
    @routes.route("POST", f"/cascades/{{id}}/{action}", summary=summary, response=CascadeOut, roles=STAFF,
                  errors=(404, 409))
    async def control(request: ApiRequest) -> CascadeOut:
        service = request.http.app[CASCADES]
        method = {"pause": service.pause, "resume": service.resume, "stop": service.halt}[action]
        cascade = await method(request.params["id"], actor=request.actor)
        return (await _with_calls(request, [cascade]))[0]

    control.__name__ = f"cascade_{action}"


_control("pause", "Pause a cascade: nobody new is called")
_control("resume", "Resume a paused cascade")
_control("stop", "Stop a cascade: calls not yet answered are cancelled")


@routes.route("POST", "/work-orders/{id}/help-coming", summary="Tell the elder help is on its way",
              body=HelpComing, response=HelpComingOut, status=201, roles=STAFF, errors=(404,))
async def help_coming(request: ApiRequest) -> HelpComingOut:
    """After dispatching 120 or a provider: the elder's phone (or device) is called with a short message and the
    expected arrival. Done by itself when a responder accepts a cascade."""
    body: HelpComing = request.body
    job = await request.http.app[CASCADES].help_coming(request.params["id"], eta_minutes=body.eta_minutes,
                                                        actor=request.actor)
    return HelpComingOut(job_id=job.id, work_order_id=request.params["id"], eta_minutes=body.eta_minutes)
