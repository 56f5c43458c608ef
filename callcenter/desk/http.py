"""``GET /ws``: the panel's one authenticated WebSocket.

Browsers cannot put an Authorization header on a WebSocket, and a token in the URL would end up in access logs, so
the page's first message is ``{"type": "auth", "token": …}``; the token is checked exactly like the REST API's
(signature, expiry, its session live, the account still active with the same role), and the socket closes with
4401 when its session ends. Messages are JSON objects with a ``type``: ``hello`` first, then ``screen_pop``,
``call_ended``, ``alarm_offer``, … Each connection drains its own bounded queue (callcenter.push, the one
fan-out); a slow browser is dropped, never waited for.
"""

from __future__ import annotations

from aiohttp import web

from callcenter import push
from callcenter.alarms.distribution import AlarmDistributor
from callcenter.api.middleware import socket_principal
from callcenter.api.tokens import TokenService
from callcenter.db.session import Database
from callcenter.desk.screenpop import ScreenPops
from callcenter.logs import get_logger
from callcenter.telephony.mqtt import MqttClient
from callcenter.users.models import Role

log = get_logger(__name__)

# The panels' WebSocket channel: what the desk, the agent registry, conferences and the wallboard push.
HUB = web.AppKey("desk_hub", push.Fanout)
POPS = web.AppKey("desk_pops", ScreenPops)
# The platform's MQTT connection, read by the agent page to say when devices' alarms cannot reach the centre.
DEVICE_CHANNEL = web.AppKey("desk_device_channel", MqttClient)
DB = web.AppKey("desk_db", Database)
TOKENS = web.AppKey("desk_tokens", TokenService)
ALARMS = web.AppKey("desk_alarms", AlarmDistributor)
# The messages a panel may leave unread before it is dropped (a burst of every agent's state to a supervisor).
PANEL_QUEUE = 256


def panel_hub() -> push.Fanout:
    """The panels' channel, one per process: every browser on ``/ws`` subscribes to it."""
    return push.Fanout("desk", queue_size=PANEL_QUEUE)


async def websocket(request: web.Request) -> web.StreamResponse:
    socket = await push.open_socket(request)
    principal = await socket_principal(socket, request.app[DB], request.app[TOKENS])
    if principal is None:
        return socket
    if principal.role is Role.PROVIDER:
        # The desk carries elders' screen-pops and agents' states: a provider's portal has its own socket.
        return await push.refuse(socket, push.FORBIDDEN_CLOSE, "provider accounts use /provider/ws")
    hub = request.app[HUB]
    client = hub.subscribe(principal.username, principal.role, user_id=principal.user_id,
                           session_id=principal.session_id, source_ip=request.remote)
    log.info("desk.connected", username=principal.username, role=principal.role.value,
             panels=len(hub.subscribers()))
    hub.send(client, {"type": "hello", "username": principal.username, "role": principal.role.value})
    request.app[POPS].replay(client)
    request.app[ALARMS].replay(client)  # the alarm offered on this agent's panel; to supervisors, the overflowing
    try:
        await push.serve(socket, hub, client)
    finally:
        log.info("desk.disconnected", username=principal.username, panels=len(hub.subscribers()))
    return socket


def register(app: web.Application, *, hub: push.Fanout, pops: ScreenPops, db: Database, tokens: TokenService,
             alarms: AlarmDistributor) -> None:
    app[HUB] = hub
    app[ALARMS] = alarms
    app[POPS] = pops
    app[DB] = db
    app[TOKENS] = tokens
    app.router.add_get("/ws", websocket)
