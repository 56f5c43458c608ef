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
    # None ends the feed: the subscriber was dropped for falling behind.
    queue: asyncio.Queue[Message | None]
    dropped: bool = False

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

    def subscribe(self, username: str, role: Role, provider_id: int | None = None) -> Subscriber:
        # One slot more than the messages it may hold: room for the end-of-feed marker when they fill up.
        subscriber = Subscriber(username, role, provider_id, asyncio.Queue(self.queue_size + 1))
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

    def drop(self, subscriber: Subscriber) -> None:
        """End ``subscriber``'s feed: what it has not read is thrown away and its socket is closed with 1013."""
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


async def open_socket(request: web.Request) -> web.WebSocketResponse:
    """Accept the WebSocket upgrade (after the caller checked who asks)."""
    socket = web.WebSocketResponse(heartbeat=20, max_msg_size=64 * 1024)
    await socket.prepare(request)
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
    # Too far behind: close so the page reconnects and is sent the current state afresh.
    await socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow: reconnect")
