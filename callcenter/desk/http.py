"""``GET /ws``: the panel's one authenticated WebSocket.

Browsers cannot put an Authorization header on a WebSocket, so the bearer token comes as ``?token=``; it is
checked exactly like the REST API's (signature, expiry, the account still active with the same role). Messages
are JSON objects with a ``type``: ``hello`` first, then ``screen_pop``, ``call_ended``, … Each connection drains
its own bounded queue (see hub.py); a slow browser is dropped, never waited for.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSCloseCode, WSMsgType, web

from callcenter.api.errors import ApiError, Forbidden
from callcenter.api.middleware import error_response, principal_for_token
from callcenter.api.tokens import TokenService
from callcenter.db.session import Database
from callcenter.desk.hub import Frame, PanelClient, PanelHub
from callcenter.desk.screenpop import ScreenPops
from callcenter.logs import get_logger
from callcenter.users.models import Role

log = get_logger(__name__)

HUB = web.AppKey("desk_hub", PanelHub)
POPS = web.AppKey("desk_pops", ScreenPops)
DB = web.AppKey("desk_db", Database)
TOKENS = web.AppKey("desk_tokens", TokenService)


async def websocket(request: web.Request) -> web.StreamResponse:
    try:
        principal = await principal_for_token(request.app[DB], request.app[TOKENS], request.query.get("token", ""))
        if principal.role is Role.PROVIDER:
            # The desk carries elders' screen-pops and agents' states: a provider's portal has its own socket.
            raise Forbidden("provider accounts use /provider/ws")
    except ApiError as error:
        return error_response(error)
    socket = web.WebSocketResponse(heartbeat=20, max_msg_size=64 * 1024)
    await socket.prepare(request)
    hub = request.app[HUB]
    client = hub.connect(principal.username, principal.role)
    log.info("desk.connected", username=principal.username, role=principal.role.value, panels=hub.clients)
    hub.to_client(client, {"type": "hello", "username": principal.username, "role": principal.role.value})
    request.app[POPS].replay(client)
    sender = asyncio.create_task(_send(socket, client))
    try:
        async for message in socket:
            # The panel only listens for now; anything it sends is ignored, a close ends the loop.
            if message.type == WSMsgType.ERROR:
                break
    finally:
        hub.disconnect(client)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        log.info("desk.disconnected", username=principal.username, panels=hub.clients)
    return socket


async def _send(socket: web.WebSocketResponse, client: PanelClient) -> None:
    dropped = asyncio.create_task(client.dropped.wait())
    next_message: asyncio.Task[dict[str, object]] | None = None
    try:
        while True:
            next_message = asyncio.create_task(client.queue.get())
            done, _ = await asyncio.wait({next_message, dropped}, return_when=asyncio.FIRST_COMPLETED)
            if dropped in done:
                next_message.cancel()
                # Too far behind: close so the panel reconnects and is sent the current state afresh.
                await socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow: reconnect")
                return
            message = next_message.result()
            if isinstance(message, Frame):
                await socket.send_str(message.text)  # encoded once for every browser it goes to
            else:
                await socket.send_json(message)
    finally:
        # Cancelled when the browser goes: the pending get() must go too, or every closed panel leaves a task
        # waiting for ever on a queue nobody fills.
        dropped.cancel()
        if next_message is not None:
            next_message.cancel()


def register(app: web.Application, *, hub: PanelHub, pops: ScreenPops, db: Database, tokens: TokenService) -> None:
    app[HUB] = hub
    app[POPS] = pops
    app[DB] = db
    app[TOKENS] = tokens
    app.router.add_get("/ws", websocket)
