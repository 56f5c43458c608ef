"""/api/v1/work-orders: work orders with their event trail (read: admin, supervisor, agent, auditor; edit during the
call: agents and supervisors)."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.orders.queries import find_orders, get_order
from callcenter.orders.schemas import WorkOrderDetail, WorkOrderPage, WorkOrderQuery, WorkOrderUpdate
from callcenter.orders.services import update_order
from callcenter.users.models import Role

routes = ApiRoutes("work-orders")
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)


@routes.route("GET", "/work-orders", summary="List work orders, most urgent first", query=WorkOrderQuery,
              response=WorkOrderPage, roles=READERS)
async def index(request: ApiRequest) -> WorkOrderPage:
    query: WorkOrderQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        found = await find_orders(session, elder_id=query.elder_id, status=query.status, kind=query.kind,
                                  limit=query.limit, offset=query.offset)
        return WorkOrderPage.of(found, query)


@routes.route("GET", "/work-orders/{id}", summary="Read a work order with its event trail",
              response=WorkOrderDetail, roles=READERS)
async def show(request: ApiRequest) -> WorkOrderDetail:
    async with request.require(DATABASE).transaction() as session:
        return WorkOrderDetail.model_validate(await get_order(session, request.params["id"]))


@routes.route("PATCH", "/work-orders/{id}", summary="Complete a work order during the call", body=WorkOrderUpdate,
              response=WorkOrderDetail, roles=(Role.SUPERVISOR, Role.AGENT), errors=(404, 409))
async def update(request: ApiRequest) -> WorkOrderDetail:
    """Send the ``version`` you read; a stale one gets 409 and changes nothing. Each change lands on the trail."""
    body: WorkOrderUpdate = request.body
    user = request.user
    async with request.require(DATABASE).transaction() as session:
        await update_order(session, request.params["id"], version=body.version, changes=body.changes(),
                           actor_id=user.user_id, actor_label=user.username)
    async with request.require(DATABASE).transaction() as session:
        return WorkOrderDetail.model_validate(await get_order(session, request.params["id"]))
