"""/api/v1/supervision-cases: supervision cases (督办) the scanner raised; supervisors urge and resolve them.
Read: supervisors, agents, auditors (and admins); write: supervisors (and admins)."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.orders.models import WorkOrder
from callcenter.orders.notify import ORDER_NOTIFIER, urging_notice
from callcenter.supervision_cases.models import UrgingMethod
from callcenter.supervision_cases.schemas import CaseDetail, CasePage, CaseQuery, ResolveBody, UrgingCreate, UrgingOut
from callcenter.supervision_cases.services import describe, get_case, list_cases, resolve, urge
from callcenter.users.models import Role

routes = ApiRoutes("supervision-cases")
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)
WRITERS = (Role.SUPERVISOR,)


@routes.route("GET", "/supervision-cases", summary="List supervision cases, newest first", query=CaseQuery,
              response=CasePage, roles=READERS)
async def index(request: ApiRequest) -> CasePage:
    query: CaseQuery = request.query
    async with request.require(DATABASE).transaction(read_only=True) as session:
        cases, total = await list_cases(session, status=query.status, reason=query.reason,
                                        provider_id=query.provider_id, unresolved=query.unresolved,
                                        limit=query.limit, offset=query.offset)
        return CasePage.of((await describe(session, cases), total), query)


@routes.route("GET", "/supervision-cases/{id}", summary="Read a supervision case with its urgings",
              response=CaseDetail, roles=READERS)
async def show(request: ApiRequest) -> CaseDetail:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        case = await get_case(session, request.params["id"])
        return CaseDetail.model_validate((await describe(session, [case]))[0])


@routes.route("POST", "/supervision-cases/{id}/urgings", summary="Record an urging of the provider and its result",
              body=UrgingCreate, response=UrgingOut, status=201, roles=WRITERS, errors=(409,),
              description="The case moves to urging; the order's trail records it. A resolved case answers 409.")
async def create_urging(request: ApiRequest) -> UrgingOut:
    """An urging by platform message (method ``message``) on a case about a provider's order also reaches that
    provider's open portal pages at once, with the message's text."""
    body: UrgingCreate = request.body
    notice = None
    async with request.require(DATABASE).transaction() as session:
        urging = await urge(session, request.params["id"], body.method, body.message, body.result, request.actor)
        case = urging.case  # urge() loaded and locked it
        if body.method is UrgingMethod.MESSAGE and body.message and case.provider_id and case.work_order_id:
            order = await session.get(WorkOrder, case.work_order_id)
            if order is not None and order.provider_id == case.provider_id and order.dispatched_at is not None:
                notice = urging_notice(order, case.provider_id, body.message)
        created = UrgingOut.model_validate(urging)
    if notice is not None:  # committed: the provider's portal hears it now
        request.require(ORDER_NOTIFIER).publish(notice)
    return created


@routes.route("POST", "/supervision-cases/{id}/resolve", summary="Resolve a supervision case", body=ResolveBody,
              response=CaseDetail, roles=WRITERS, errors=(409,),
              description="Closes the case with what was done; an already resolved case answers 409.")
async def resolve_case(request: ApiRequest) -> CaseDetail:
    body: ResolveBody = request.body
    async with request.require(DATABASE).transaction() as session:
        case = await resolve(session, request.params["id"], body.resolution, request.actor)
        return CaseDetail.model_validate((await describe(session, [case]))[0])
