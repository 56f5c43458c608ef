"""The work-order domain (seed §6): intake, the state machine, the trail, the follow-up queue, complaints, and
live notices to provider portals."""

from __future__ import annotations

from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.orders import http
from callcenter.orders.models import Complaint, WorkOrder, WorkOrderEvent
from callcenter.orders.notify import ORDER_NOTIFIER, OrderNotifier


def load(ctx: PluginContext) -> Contribution:
    ctx.provide(ORDER_NOTIFIER, OrderNotifier())
    return Contribution(routes=http.routes)


plugin = Plugin("orders", load, models=(WorkOrder, WorkOrderEvent, Complaint))
