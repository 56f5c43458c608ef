"""The one fan-out of live messages to browsers' WebSockets: the agent desk's ``/ws`` (screen-pops, agent states,
conference rosters, the wallboard) and the provider portal's ``/provider/ws`` (order notices).

Each open socket is a subscriber with its own bounded queue; a message goes to the subscribers an audience picks
(one account, some roles, one provider). A browser that stops reading (a frozen tab, a dead network) fills only its
own queue; when that is full it is dropped — what it had not read is thrown away and its socket closed with 1013,
so the page reconnects and reads the current state afresh — and nobody else ever waits for it. What a message
says is its domain's business: this module only delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from callcenter.logs import get_logger
from callcenter.users.models import Role

log = get_logger(__name__)

Message = dict[str, Any]


class Frame(dict[str, Any]):
    """A message for many browsers (a wallboard snapshot to every supervisor): its JSON is made once, by the first
    connection that sends it, and reused by the others."""

    @functools.cached_property
    def text(self) -> str:
        return json.dumps(self)


@dataclasses.dataclass(eq=False)
class Subscriber:
    """One open WebSocket: whose it is, and what it has not been sent yet."""

    username: str
    role: Role
    provider_id: int | None  # a provider-portal account's provider
    # None ends the feed: the subscriber was dropped (fell behind, or its log-in session ended).
    queue: asyncio.Queue[Message | None]
    dropped: bool = False
    user_id: int | None = None
    session_id: str | None = None  # the log-in session whose token opened the socket (users.sessions)
    source_ip: str | None = None  # where the browser is (the client's address as the app resolves it): audits
    # How the socket is closed when the feed ends: 1013 (fell behind: the page reconnects) unless said otherwise.
    close_code: int = WSCloseCode.TRY_AGAIN_LATER
    close_reason: bytes = b"too slow: reconnect"

    async def next(self) -> Message | None:
        """The next message, or None once this subscriber was dropped (its page then reconnects)."""
        return await self.queue.get()


# Who a message is for: true for each subscriber that should get it.
Audience = Callable[[Subscriber], bool]


def everyone(_subscriber: Subscriber) -> bool:
    return True


def user(username: str) -> Audience:
    """Every open page of one account."""
    return lambda subscriber: subscriber.username == username


def roles(wanted: Iterable[Role]) -> Audience:
    """Everyone with one of the ``wanted`` roles, and admins always: an admin sees what any member of staff sees."""
    audience = frozenset(wanted) | {Role.ADMIN}
    return lambda subscriber: subscriber.role in audience


def provider(provider_id: int) -> Audience:
    """Every open page of one provider's portal accounts."""
    return lambda subscriber: subscriber.provider_id == provider_id


class Fanout:
    """Who is subscribed to one WebSocket endpoint, and delivery to them. Use it from the event loop's thread."""

    def __init__(self, channel: str, queue_size: int) -> None:
        self.channel = channel  # which endpoint, for the logs
        self.queue_size = queue_size  # the messages a subscriber may leave unread before it is dropped
        self._subscribers: set[Subscriber] = set()

    def subscribe(self, username: str, role: Role, provider_id: int | None = None, *, user_id: int | None = None,
                  session_id: str | None = None, source_ip: str | None = None) -> Subscriber:
        # One slot more than the messages it may hold: room for the end-of-feed marker when they fill up.
        subscriber = Subscriber(username, role, provider_id, asyncio.Queue(self.queue_size + 1), user_id=user_id,
                                session_id=session_id, source_ip=source_ip)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def subscribers(self, audience: Audience = everyone) -> list[Subscriber]:
        return [subscriber for subscriber in self._subscribers if audience(subscriber)]

    def watching(self, audience: Audience) -> bool:
        """Someone ``audience`` picks is subscribed: work for nobody can be skipped."""
        return any(audience(subscriber) for subscriber in self._subscribers)

    def publish(self, audience: Audience, message: Message) -> int:
        """Hand ``message`` to every subscriber ``audience`` picks; returns how many took it. Nothing is kept for
        those who subscribe later."""
        return self._offer(self.subscribers(audience), message)

    def send(self, subscriber: Subscriber, message: Message) -> int:
        """Hand ``message`` to this one subscriber (its hello, a replay); 1 if it took it."""
        return self._offer([subscriber], message)

    def close_where(self, audience: Audience, code: int, reason: str) -> int:
        """End the feeds of the subscribers ``audience`` picks and close their sockets with ``code`` (a log-in
        session that ended: the page must not reconnect with it). How many were closed."""
        closing = self.subscribers(audience)
        for subscriber in closing:
            subscriber.close_code, subscriber.close_reason = code, reason.encode()[:120]
            self.drop(subscriber)
        return len(closing)

    def drop(self, subscriber: Subscriber) -> None:
        """End ``subscriber``'s feed: what it has not read is thrown away and its socket is closed (with 1013
        unless ``close_where`` said otherwise)."""
        subscriber.dropped = True
        self._subscribers.discard(subscriber)
        while not subscriber.queue.empty():
            subscriber.queue.get_nowait()
        subscriber.queue.put_nowait(None)

    def _offer(self, subscribers: Iterable[Subscriber], message: Message) -> int:
        delivered = 0
        for subscriber in subscribers:
            if subscriber.dropped:
                continue
            if subscriber.queue.qsize() >= self.queue_size:
                log.warning("push.subscriber_dropped", channel=self.channel, username=subscriber.username,
                            role=subscriber.role.value, provider_id=subscriber.provider_id, reason="queue full",
                            queue_size=self.queue_size)
                self.drop(subscriber)
                continue
            subscriber.queue.put_nowait(message)
            delivered += 1
        return delivered


# The first message a page sends on a new socket: {"type": "auth", "token": "<bearer token>"}. Tokens never travel
# in URLs (they end up in proxies' and servers' access logs); browsers cannot set headers on a WebSocket.
AUTH_MESSAGE = "auth"
AUTH_SECONDS = 10.0
# Close codes of a socket refused at its start (RFC 6455 leaves 4000–4999 to applications, 4xxx mirroring HTTP).
UNAUTHORIZED_CLOSE = 4401
FORBIDDEN_CLOSE = 4403


async def open_socket(request: web.Request) -> web.WebSocketResponse:
    """Accept the WebSocket upgrade; who asks is checked on its first message (``first_message_token``)."""
    socket = web.WebSocketResponse(heartbeat=20, max_msg_size=64 * 1024)
    await socket.prepare(request)
    return socket


async def first_message_token(socket: web.WebSocketResponse, timeout: float = AUTH_SECONDS) -> str | None:
    """The bearer token of the socket's first message, ``{"type": "auth", "token": …}``; None when the first message
    is something else, is not JSON, or does not come within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            message = await socket.receive()
    except TimeoutError:
        return None
    if message.type != WSMsgType.TEXT:
        return None
    try:
        body = json.loads(message.data)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("type") != AUTH_MESSAGE or not isinstance(body.get("token"), str):
        return None
    return body["token"]


async def refuse(socket: web.WebSocketResponse, code: int, reason: str) -> web.WebSocketResponse:
    """Close a socket whose first message did not authenticate it (4401) or whose account may not use it (4403)."""
    await socket.send_json({"type": "error", "code": code, "message": reason})
    await socket.close(code=code, message=reason.encode()[:120])
    return socket


async def serve(socket: web.WebSocketResponse, fanout: Fanout, subscriber: Subscriber) -> None:
    """Send ``subscriber``'s messages on ``socket`` until the browser goes, or falls behind (then the socket is closed
    with 1013 so the page reconnects). The browser only listens: what it sends is ignored, a close ends it. However
    it ends, ``subscriber`` is unsubscribed."""
    sender = asyncio.create_task(_send(socket, subscriber))
    try:
        async for message in socket:
            if message.type == WSMsgType.ERROR:
                break
    finally:
        fanout.unsubscribe(subscriber)
        # Cancelled when the browser goes: the pending get() must go too, or every closed page leaves a task
        # waiting for ever on a queue nobody fills.
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


async def _send(socket: web.WebSocketResponse, subscriber: Subscriber) -> None:
    while (message := await subscriber.next()) is not None:
        if isinstance(message, Frame):
            await socket.send_str(message.text)  # encoded once for every browser it goes to
        else:
            await socket.send_json(message)
    # Too far behind (the page reconnects and is sent the current state afresh), or the session ended.
    await socket.close(code=subscriber.close_code, message=subscriber.close_reason)
