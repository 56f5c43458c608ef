"""The providers' own portal (seed 6.3): the page at ``/provider`` and its live notices on ``/provider/ws``.

The page (``static/provider.js``) lists the orders dispatched to the account's provider (``GET /api/v1/work-orders``
scopes them), each with the steps the API allows now — accept, decline, assign staff, start on site, the receipt —
and hears on its WebSocket when one is dispatched (orders.notify). Only provider accounts; centre staff are sent to
their panel.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from callcenter import push
from callcenter.api.context import DATABASE, TOKENS
from callcenter.api.middleware import socket_principal
from callcenter.contract import PORTAL_ACCOUNTS, Page, PageContent, PageRequest
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrderStatus
from callcenter.orders.schemas import Receipt

log = get_logger(__name__)

# The statuses an order dispatched to a provider can be in while the provider still sees it (the portal's filter).
PORTAL_STATUSES = (WorkOrderStatus.DISPATCHED, WorkOrderStatus.ACCEPTED, WorkOrderStatus.IN_SERVICE,
                   WorkOrderStatus.SERVICE_DONE, WorkOrderStatus.FOLLOW_UP, WorkOrderStatus.CLOSED,
                   WorkOrderStatus.CANCELLED)
RECEIPT_RESULTS: tuple[str, ...] = typing.get_args(Receipt.model_fields["result"].annotation)


async def portal_page(_request: PageRequest) -> PageContent:
    return PageContent(values={"statuses": [status.value for status in PORTAL_STATUSES],
                               "results": RECEIPT_RESULTS})


PORTAL_PAGE = Page("/provider", "provider", Path(__file__).parent, content=portal_page, css=True,
                   accounts=PORTAL_ACCOUNTS, home=True)


def portal_socket(portal: push.Fanout) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """``GET /provider/ws`` over ``portal`` (the orders notifier's channel). The bearer token comes as the first
    message, ``{"type": "auth", "token": …}``, and is checked like the desk WebSocket's; only a provider account is
    subscribed, and only to its own provider's notices. ``hello`` first: the page then re-reads its list, so
    nothing published while it was away is missed."""

    async def provider_socket(request: web.Request) -> web.StreamResponse:
        socket = await push.open_socket(request)
        principal = await socket_principal(socket, request.app[DATABASE], request.app[TOKENS])
        if principal is None:
            return socket
        if principal.role not in PORTAL_ACCOUNTS or principal.provider_id is None:
            return await push.refuse(socket, push.FORBIDDEN_CLOSE,
                                     "only a provider's portal account receives its notices")
        # Subscribed before the hello: a dispatch in between is queued after it, not lost.
        subscription = portal.subscribe(principal.username, principal.role, principal.provider_id,
                                        user_id=principal.user_id, session_id=principal.session_id)
        log.info("provider_portal.connected", username=principal.username, provider_id=principal.provider_id,
                 pages=len(portal.subscribers(push.provider(principal.provider_id))))
        portal.send(subscription, {"type": "hello", "username": principal.username, "role": principal.role.value})
        try:
            await push.serve(socket, portal, subscription)
        finally:
            log.info("provider_portal.disconnected", username=principal.username, provider_id=principal.provider_id)
        return socket

    return provider_socket
