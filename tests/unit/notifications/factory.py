"""The notification service on a real SMPP channel to the tests' SMSC, numbers of each test's own, and an order to
report on."""

from __future__ import annotations

import datetime as dt
import itertools
import os

from sqlalchemy import select

from callcenter.db.session import Database
from callcenter.notifications.models import SmsMessage
from callcenter.notifications.services import NotificationService, Policy
from callcenter.notifications.smpp import SmppChannel
from callcenter.notifications.templates import Templates
from callcenter.orders.models import WorkOrderEvent, WorkOrderKind
from tests.smppserver import PASSWORD, SYSTEM_ID, SmscServer
from tests.unit.supervision_cases.factory import SHANGHAI, elder, order

RETRY = dt.timedelta(seconds=30)
_numbers = itertools.count(1)
ALARM_VALUES = {"elder_name": "张桂兰", "time": "14:05", "alarm": "跌倒", "hotline": "12349"}


def number(suffix: str = "") -> str:
    """A mobile number no other test (or test process) uses, ending in ``suffix`` (which tells the SMSC what to
    do with it)."""
    body = f"139{os.getpid() % 1000:03d}{next(_numbers):05d}"
    return body[: len(body) - len(suffix)] + suffix if suffix else body


def smpp_service(db: Database, smsc: SmscServer, *, max_attempts: int = 3,
                 signature: str = "养老服务中心", password: str = PASSWORD) -> NotificationService:
    service = NotificationService(db, Templates.load(), channel="smpp", signature=signature,
                                  policy=Policy(max_attempts=max_attempts, retry=RETRY, round_seconds=3600))
    service.channels.add(SmppChannel(host="127.0.0.1", port=smsc.port, system_id=SYSTEM_ID, password=password,
                                     source_addr="1069012349", timeout=5.0, tz=SHANGHAI,
                                     on_accepted=service.accepted, on_receipt=service.receipt))
    return service


async def bound_channel(service: NotificationService) -> SmppChannel:
    """The service's SMPP channel started and bound (the sender job is not started: the test drives the rounds)."""
    channel = service.channel
    assert isinstance(channel, SmppChannel)
    await channel.start()
    assert await channel.wait_bound(10), channel.check().detail
    return channel


async def an_order(db: Database) -> int:
    async with db.transaction() as session:
        person = await elder(session)
        row = await order(session, WorkOrderKind.EMERGENCY, dt.datetime.now(dt.UTC), elder_id=person.id)
        return row.id


async def message(db: Database, message_id: int) -> SmsMessage:
    async with db.transaction(read_only=True) as session:
        row = await session.get(SmsMessage, message_id)
        assert row is not None
        return row


async def sms_events(db: Database, order_id: int) -> list[WorkOrderEvent]:
    async with db.transaction(read_only=True) as session:
        return list((await session.scalars(select(WorkOrderEvent).where(
            WorkOrderEvent.work_order_id == order_id, WorkOrderEvent.action == "sms_failed"))).all())
