"""/api/v1/work-orders: work orders with their event trail, read-only here (admin, supervisor, agent, auditor)."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.orders.queries import find_orders, get_order
from callcenter.orders.schemas import WorkOrderDetail, WorkOrderPage, WorkOrderQuery
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
