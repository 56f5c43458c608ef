"""Live notices to provider portals (seed 6.3): an order dispatched to a provider, or a centre step that affects
it (its receipt sent back, the order cancelled, an urging), reaches that provider's open portal pages at once.

What a notice says is decided here; delivery is the one WebSocket fan-out's (callcenter.push): each portal page
subscribes on ``/provider/ws`` (providers.portal) with its own bounded queue, and one that falls behind is cut off (its
page reconnects and re-reads its list) while nobody ever waits for it. ``orders.http`` publishes after the step's
transaction has committed, so a notice never announces a step that was rolled back. A notice names the order,
never the elder: the page reads the order through the API, which checks who asks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from callcenter import push
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder
from callcenter.orders.schemas import Action

log = get_logger(__name__)

# The centre's steps a provider must hear about at once, and what the portal calls them.
NOTIFIED_ACTIONS: dict[Action, str] = {
    Action.DISPATCH: "dispatched",
    Action.REJECT_RECEIPT: "receipt_rejected",
    Action.CANCEL: "cancelled",
}


@dataclasses.dataclass(frozen=True, slots=True)
class OrderNotice:
    provider_id: int
    event: str  # a value of NOTIFIED_ACTIONS
    order_id: int
    number: str
    title: str
    status: str
    service: str | None
    # The centre's words to the provider: the text of a supervision urging sent as a platform message.
    note: str | None = None

    def message(self) -> dict[str, Any]:
        """The WebSocket message: ``type`` order_notice, the rest as it is (no provider id: the page knows it)."""
        return {"type": "order_notice", "event": self.event, "order_id": self.order_id, "number": self.number,
                "title": self.title, "status": self.status, "service": self.service, "note": self.note}


def notice_for(order: WorkOrder, action: Action) -> OrderNotice | None:
    """The notice a step on ``order`` owes its provider, or None. Read it inside the step's transaction (the order
    as the step left it) and publish it after the commit. An order that is no longer dispatched to anyone (declined,
    re-matched, awaiting review) concerns no provider portal yet."""
    event = NOTIFIED_ACTIONS.get(action)
    if event is None or order.provider_id is None or order.dispatched_at is None:
        return None
    return OrderNotice(provider_id=order.provider_id, event=event, order_id=order.id, number=order.number,
                       title=order.title, status=order.status.value,
                       service=order.service)


def urging_notice(order: WorkOrder, provider_id: int, message: str) -> OrderNotice:
    """A supervision urging (督办催办) sent to the provider as a platform message about one of its orders."""
    return OrderNotice(provider_id=provider_id, event="urged", order_id=order.id, number=order.number,
                       title=order.title, status=order.status.value, service=order.service, note=message)


class OrderNotifier:
    """The provider portal's live channel: each notice to the open pages of the provider it concerns. Publish from
    the event loop's thread."""

    def __init__(self, queue_size: int = 64) -> None:
        self.pages = push.Fanout("provider_portal", queue_size)

    def publish(self, notice: OrderNotice) -> int:
        """Hand ``notice`` to every page of its provider; returns how many took it."""
        delivered = self.pages.publish(push.provider(notice.provider_id), notice.message())
        log.info("orders.notice", provider_id=notice.provider_id, notice=notice.event, order=notice.number,
                 delivered=delivered)
        return delivered


# Live notices to provider portals: dispatches and the centre's steps that affect a provider.
ORDER_NOTIFIER = web.AppKey("order_notifier", OrderNotifier)
