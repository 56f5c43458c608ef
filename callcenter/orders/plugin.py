"""The work-order domain (seed §6): intake, the state machine, the trail, the follow-up queue, complaints, and
live notices to provider portals; the centre's work-order page."""

from __future__ import annotations

from pathlib import Path

from callcenter.contract import Contribution, NavLink, Page, PageContent, PageRequest, Plugin, PluginContext
from callcenter.orders import http
from callcenter.orders.models import (
    Complaint,
    ComplaintSource,
    WorkOrder,
    WorkOrderEvent,
    WorkOrderKind,
    WorkOrderStatus,
)
from callcenter.orders.notify import ORDER_NOTIFIER, OrderNotifier
from callcenter.providers.models import ServiceType


async def orders_page(_request: PageRequest) -> PageContent:
    """The centre's work orders (``static/orders.js`` over ``/api/v1/work-orders``): the list, one order with its
    trail and the steps allowed now, the follow-up queue with one-click call back, and intake."""
    return PageContent(values={
        "statuses": [status.value for status in WorkOrderStatus if status is not WorkOrderStatus.DRAFT],
        "kinds": [kind.value for kind in WorkOrderKind], "services": [service.value for service in ServiceType],
        "complaint_sources": [source.value for source in ComplaintSource]})


# The page opens on the follow-up queue, so it is for those the API lets read it (the centre's desk staff);
# anyone else signed in gets a 403 page, anonymous visitors the log-in.
ORDERS_PAGE = Page("/orders", "orders", Path(__file__).parent, content=orders_page, css=True,
                   roles=http.routes.roles_for("GET", "/follow-ups"), nav=NavLink("common.nav.orders", "nav-orders"))


def load(ctx: PluginContext) -> Contribution:
    ctx.provide(ORDER_NOTIFIER, OrderNotifier())
    return Contribution(routes=http.routes, pages=[ORDERS_PAGE])


plugin = Plugin("orders", load, models=(WorkOrder, WorkOrderEvent, Complaint))
