"""The HTTP gateway channel against a real HTTP server on 127.0.0.1 playing a Chinese SMS provider: it verifies each
request's signature (api.signing, the platform's HMAC scheme) and answers as such providers do. Taken → submitted
under the provider's id; a 5xx tried again; a 400 failed at once and reported; a bad signature refused by the peer."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from callcenter.api.signing import SignatureRejected, check_signature, read_headers
from callcenter.db.session import Database
from callcenter.notifications.http_gateway import HttpGatewayChannel
from callcenter.notifications.models import MessageState, Purpose
from callcenter.notifications.services import NotificationService, Policy
from callcenter.notifications.templates import Templates
from tests.harness import free_tcp_port
from tests.unit.notifications.factory import ALARM_VALUES, RETRY, an_order, message, number, sms_events

KEY, SECRET = "cc-sms", "gateway-secret-for-tests"


class Provider:
    """A provider's send endpoint: verifies the signature, records what it took, answers per the number's tail."""

    def __init__(self) -> None:
        self.taken: list[dict[str, Any]] = []
        self.refused_signatures = 0
        self.url = ""

    async def send(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            check_signature(read_headers(request.headers), SECRET, request.method, request.path, body,
                            now=dt.datetime.now(dt.UTC))
        except SignatureRejected as rejected:
            self.refused_signatures += 1
            return web.json_response({"code": "isv.INVALID_SIGNATURE", "message": rejected.message}, status=401)
        document = json.loads(body)
        phone = document["phone_number"]
        if phone.endswith("0500"):
            return web.json_response({"code": "isp.SYSTEM_ERROR", "message": "busy"}, status=503)
        if phone.endswith("0400"):
            return web.json_response({"code": "isv.MOBILE_NUMBER_ILLEGAL", "message": "illegal number"}, status=400)
        self.taken.append({**document, "key": request.headers["X-CC-Key-Id"]})
        return web.json_response({"code": "OK", "message": "OK", "biz_id": f"biz-{len(self.taken)}"})


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    peer = Provider()
    app = web.Application()
    app.router.add_post("/sms/send", peer.send)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_tcp_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    peer.url = f"http://127.0.0.1:{port}/sms/send"
    try:
        yield peer
    finally:
        await runner.cleanup()


def http_service(db: Database, provider: Provider, *, secret: str = SECRET) -> NotificationService:
    service = NotificationService(db, Templates.load(), channel="http", signature="养老服务中心",
                                  policy=Policy(max_attempts=3, retry=RETRY, round_seconds=3600))
    service.channels.add(HttpGatewayChannel(url=provider.url, key=KEY, secret=secret, signature="养老服务中心",
                                            timeout=5.0, templates={"alarm_notice": "SMS_0001"}))
    return service


async def test_a_signed_template_request_is_taken_under_the_providers_id(db: Database, provider: Provider) -> None:
    service = http_service(db, provider)
    await service.channel.start()  # type: ignore[union-attr] - the test drives the rounds
    try:
        to = number()
        sent = await service.send(to=to, template="alarm_notice", values=ALARM_VALUES, purpose=Purpose.ALARM_NOTICE)
        assert await service.run_once() == 1
        row = await message(db, sent.id)
        assert service.channel is not None and service.channel.check().ok
    finally:
        await service.stop()
    assert (row.state, row.provider_message_id, row.attempts) == (MessageState.SUBMITTED, "biz-1", 1)
    assert provider.taken == [{"phone_number": to, "sign_name": "养老服务中心", "template_code": "SMS_0001",
                               "template_param": {**ALARM_VALUES, "elder_name": "张某某"}, "out_id": str(sent.id),
                               "key": KEY}]
    assert provider.refused_signatures == 0
    assert row.body.startswith("【养老服务中心】张某某")


async def test_a_busy_provider_is_tried_again_and_a_bad_number_fails_at_once(db: Database,
                                                                            provider: Provider) -> None:
    service = http_service(db, provider)
    channel = service.channel
    assert channel is not None
    await channel.start()
    try:
        order_id = await an_order(db)
        busy = await service.send(to=number("0500"), template="sms_test", values={}, purpose=Purpose.REMINDER)
        bad = await service.send(to=number("0400"), template="sms_test", values={}, purpose=Purpose.REMINDER,
                                 work_order_id=order_id)
        start = dt.datetime.now(dt.UTC)
        assert await service.run_once(start) == 2
        busy_row, bad_row = await message(db, busy.id), await message(db, bad.id)
        assert (busy_row.state, busy_row.attempts, busy_row.next_attempt_at) == (
            MessageState.QUEUED, 1, start + RETRY)
        assert busy_row.last_error == "refused by the gateway: HTTP 503 isp.SYSTEM_ERROR busy"
        assert (bad_row.state, bad_row.attempts, bad_row.last_error) == (
            MessageState.FAILED, 1, "refused by the gateway: HTTP 400 isv.MOBILE_NUMBER_ILLEGAL illegal number")
        [event] = await sms_events(db, order_id)
        assert event.details["attempts"] == 1 and event.details["state"] == "failed"
        assert not channel.check().ok
    finally:
        await service.stop()


async def test_a_wrong_secret_is_refused_by_the_provider(db: Database, provider: Provider) -> None:
    service = http_service(db, provider, secret="not-the-secret")
    await service.channel.start()  # type: ignore[union-attr]
    try:
        sent = await service.send(to=number(), template="sms_test", values={}, purpose=Purpose.REMINDER)
        assert await service.run_once() == 1
        row = await message(db, sent.id)
        assert row.state is MessageState.QUEUED and row.last_error is not None
        assert row.last_error.startswith("refused by the gateway: HTTP 401 isv.INVALID_SIGNATURE")
        assert provider.refused_signatures == 1 and provider.taken == []
    finally:
        await service.stop()
