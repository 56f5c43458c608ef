"""The one WebSocket fan-out: each subscriber has its own bounded queue, a slow one is dropped (its unread messages
thrown away, its feed ended) and never delays the others, and a message reaches exactly the audience it names."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from callcenter import push
from callcenter.users.models import Role


async def test_a_slow_subscriber_is_dropped_and_never_delays_the_others() -> None:
    fanout = push.Fanout("test", queue_size=10)
    slow = fanout.subscribe("agent01", Role.AGENT)  # never drained
    fast = fanout.subscribe("agent01", Role.AGENT)
    received = []
    for index in range(50):
        delivered = fanout.publish(push.user("agent01"), {"type": "tick", "n": index})
        assert delivered == (2 if index < 10 else 1)
        while not fast.queue.empty():
            received.append((fast.queue.get_nowait() or {})["n"])
    assert received == list(range(50))
    # The 11th message found 10 unread: what it had is gone, its feed ends, and nothing more is queued for it.
    assert slow.dropped and fanout.subscribers() == [fast]
    assert await slow.next() is None and slow.queue.empty()
    assert fanout.send(slow, {"type": "late"}) == 0 and slow.queue.empty()


async def test_a_full_queue_holds_exactly_its_bound() -> None:
    fanout = push.Fanout("test", queue_size=3)
    page = fanout.subscribe("p", Role.PROVIDER, provider_id=1)
    assert [fanout.send(page, {"n": n}) for n in range(3)] == [1, 1, 1]
    assert not page.dropped
    assert [(await page.next() or {})["n"] for _ in range(3)] == [0, 1, 2]  # read in time: not dropped
    assert [fanout.send(page, {"n": n}) for n in range(4)] == [1, 1, 1, 0]
    assert page.dropped and await page.next() is None


async def test_messages_reach_the_audience_they_name() -> None:
    fanout = push.Fanout("test", queue_size=8)
    agent = fanout.subscribe("agent01", Role.AGENT)
    other_agent = fanout.subscribe("agent02", Role.AGENT)
    supervisor = fanout.subscribe("sup", Role.SUPERVISOR)
    admin = fanout.subscribe("admin", Role.ADMIN)
    auditor = fanout.subscribe("audit", Role.AUDITOR)
    mine = fanout.subscribe("portal01", Role.PROVIDER, provider_id=1)
    theirs = fanout.subscribe("portal02", Role.PROVIDER, provider_id=2)

    def inbox(subscriber: push.Subscriber) -> list[Any]:
        messages = []
        while not subscriber.queue.empty():
            messages.append((subscriber.queue.get_nowait() or {})["to"])
        return messages

    assert fanout.publish(push.user("agent01"), {"to": "agent01"}) == 1
    assert fanout.publish(push.roles([Role.SUPERVISOR]), {"to": "supervisors"}) == 2  # and the admin
    assert fanout.publish(push.provider(1), {"to": "provider 1"}) == 1
    assert fanout.publish(push.provider(3), {"to": "provider 3"}) == 0  # nobody: nothing kept for later
    assert inbox(agent) == ["agent01"] and inbox(other_agent) == [] and inbox(auditor) == []
    assert inbox(supervisor) == ["supervisors"] and inbox(admin) == ["supervisors"]
    assert inbox(mine) == ["provider 1"] and inbox(theirs) == []

    assert fanout.watching(push.roles([Role.SUPERVISOR]))
    fanout.unsubscribe(supervisor)
    assert fanout.watching(push.roles([Role.SUPERVISOR]))  # the admin still is
    fanout.unsubscribe(admin)
    assert not fanout.watching(push.roles([Role.SUPERVISOR]))
    assert fanout.publish(push.roles([Role.SUPERVISOR]), {"to": "supervisors"}) == 0
    assert len(fanout.subscribers()) == 5 and fanout.subscribers(push.provider(2)) == [theirs]


def test_a_frame_is_encoded_once() -> None:
    frame = push.Frame(type="wallboard", queues=[{"name": "hotline", "waiting": 2}])
    assert json.loads(frame.text) == frame and frame.text is frame.text


async def _socket_app(fanout: push.Fanout) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        socket = await push.open_socket(request)
        subscriber = fanout.subscribe(request.query["user"], Role.AGENT)
        fanout.send(subscriber, {"type": "hello"})
        await push.serve(socket, fanout, subscriber)
        return socket

    app = web.Application()
    app.router.add_get("/ws", handler)
    return app


async def test_the_socket_carries_the_feed_and_is_closed_with_1013_when_dropped() -> None:
    fanout = push.Fanout("test", queue_size=4)
    async with TestClient(TestServer(await _socket_app(fanout))) as client:
        socket = await client.ws_connect("/ws?user=agent01")
        assert await socket.receive_json(timeout=5) == {"type": "hello"}
        assert fanout.publish(push.user("agent01"), push.Frame(type="wallboard", n=1)) == 1
        assert await socket.receive_json(timeout=5) == {"type": "wallboard", "n": 1}
        [subscriber] = fanout.subscribers()
        fanout.drop(subscriber)
        closing = await socket.receive(timeout=5)
        assert closing.type is WSMsgType.CLOSE and closing.data == 1013
        assert closing.extra == "too slow: reconnect"
        await socket.close()

        # A browser that goes is unsubscribed, and its sender is not left waiting on its queue.
        socket = await client.ws_connect("/ws?user=agent02")
        assert await socket.receive_json(timeout=5) == {"type": "hello"}
        assert len(fanout.subscribers()) == 1 and _senders() == 1
        await socket.close()
        for _ in range(50):
            if not fanout.subscribers() and not _senders():
                break
            await asyncio.sleep(0.02)
        assert fanout.subscribers() == [] and _senders() == 0


def _senders() -> int:
    return sum(1 for task in asyncio.all_tasks() if getattr(task.get_coro(), "__qualname__", "") == "_send")
