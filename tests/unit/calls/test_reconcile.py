"""Catching up after the platform was away (killed or stopped): the CDR trail's offset never runs ahead of the call
log, a call seen only in part is completed and its abandoned SOS called back, and an SOS still on the line is
learnt from CoreShowChannels with its order, once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from panoramisk.message import Message
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from callcenter.agents.state import AgentRegistry
from callcenter.calls import reconcile as reconcile_module
from callcenter.calls.callbacks import SosCallbacks
from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.calls.reconcile import CdrReconciler
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceKind
from callcenter.elders.models import Elder
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.telephony.ami import AmiClient
from tests import harness
from tests.harness import free_tcp_port

DEVICE = "dev-rec-1"


def _cdr_line(linkedid: str, uniqueid: str, *, channel: str, dstchannel: str = "", dst: str = "sos",
              context: str = "cc-sos", disposition: str = "NO ANSWER", start: float, answer: float = 0,
              end: float) -> str:
    return ",".join(f'"{v}"' for v in (linkedid, uniqueid, channel, dstchannel, "17700000001", dst, context,
                                       disposition, start, answer, end, "Queue")) + "\n"


@pytest.fixture
def cdr(tmp_path: Path) -> Path:
    path = tmp_path / "cdr" / "callcenter.csv"
    path.parent.mkdir()
    path.touch()
    return path


@pytest.fixture
async def seeded_device(db: Database) -> int:
    return await _seed_device(db)


async def _seed_device(db: Database) -> int:
    async with db.transaction() as session:
        elder = Elder(full_name="测试老人", phone="17700000001", address="测试社区 1 号")
        session.add(elder)
        await session.flush()
        session.add(Device(elder_id=elder.id, kind=DeviceKind.ONE_TOUCH, sip_username=DEVICE, sip_ha1="0" * 32))
        return elder.id


async def _count(db: Database, model: type, *where: object) -> int:
    async with db.transaction(read_only=True) as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _write(path: Path, text: str) -> None:
    path.write_text(text)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    with harness.database_url("sqlite", tmp_path) as url:
        harness.migrated_database(url)
        yield url


async def test_a_failed_catch_up_keeps_the_offset_and_the_next_one_stores_every_call(
        settings: Settings, cdr: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite locked by another process for longer than the catch-up waits: nothing is skipped for good."""
    db = Database(sqlite_url)
    try:
        await _seed_device(db)
        now = utcnow().timestamp()
        _write(cdr, _cdr_line("400.1", "400.1", channel=f"PJSIP/{DEVICE}-00000001", start=now - 20, end=now - 10)
               + _cdr_line("400.2", "400.2", channel=f"PJSIP/{DEVICE}-00000002", start=now - 9, end=now - 5))
        reconciler = CdrReconciler(db, settings, cdr)
        monkeypatch.setattr(reconcile_module, "RETRY_SECONDS", 0.5)
        with harness.sqlite_locked_by_another_process(sqlite_url), pytest.raises(OperationalError, match="locked"):
            await reconciler.reconcile()
        report = await reconciler.reconcile()  # the lock is gone: the same lines again, all of them
        assert (report.rows, report.calls_added, report.orders_raised) == (2, 2, 2)
        assert await _count(db, Call, Call.kind == CallKind.SOS) == 2
        again = await reconciler.reconcile()  # and once stored, never again
        assert (again.rows, again.calls_added) == (0, 0)
    finally:
        await db.dispose()


async def test_an_sos_seen_ringing_before_a_kill_and_ended_meanwhile_is_completed_and_called_back(
        db: Database, settings: Settings, cdr: Path, seeded_device: int) -> None:
    started = utcnow() - dt.timedelta(seconds=30)
    async with db.transaction() as session:  # all the platform stored before it was killed: the first channel
        session.add(Call(linkedid="401.1", kind=CallKind.OTHER, started_at=started, callee_number="sos"))
    now = utcnow().timestamp()
    _write(cdr, _cdr_line("401.1", "401.1", channel=f"PJSIP/{DEVICE}-00000003", start=started.timestamp(),
                          end=now - 2))
    reconciler = CdrReconciler(db, settings, cdr)
    callbacks = SosCallbacks(db, AmiClient("127.0.0.1", free_tcp_port(), "u", "s"), AgentRegistry())
    reconciler.on_call_added(callbacks.call_ended)
    report = await reconciler.reconcile()
    assert (report.calls_completed, report.orders_raised) == (1, 1)
    async with db.transaction(read_only=True) as session:
        call = await session.scalar(select(Call).where(Call.linkedid == "401.1"))
    assert call is not None and call.kind is CallKind.SOS and call.disposition is Disposition.ABANDONED
    assert call.elder_id == seeded_device
    assert [p.target for p in callbacks.pending] == [f"PJSIP/{DEVICE}"]
    # A second start-up finds nothing more to owe.
    assert await SosCallbacks(db, AmiClient("127.0.0.1", free_tcp_port(), "u", "s"),
                              AgentRegistry()).load_pending() == 1


def _live(linkedid: str, uniqueid: str, channel: str, *, context: str, state: str, duration: str) -> Message:
    return Message({"Event": "CoreShowChannel", "Channel": channel, "Uniqueid": uniqueid, "Linkedid": linkedid,
                    "Context": context, "Exten": "sos" if context == "cc-sos" else "s", "ChannelState": state,
                    "CallerIDNum": "17700000001", "CallerIDName": "", "Duration": duration,
                    "Application": "Queue"})


async def test_an_sos_on_the_line_while_the_platform_was_away_gets_its_order_once(
        db: Database, settings: Settings, cdr: Path, seeded_device: int) -> None:
    reconciler = CdrReconciler(db, settings, cdr)
    ringing = [_live("402.1", "402.1", f"PJSIP/{DEVICE}-00000004", context="cc-sos", state="6",
                     duration="00:00:12")]
    assert (await reconciler.reconcile(live_channels=ringing)).orders_raised == 1
    assert (await reconciler.reconcile(live_channels=ringing)).orders_raised == 0
    async with db.transaction(read_only=True) as session:
        call = await session.scalar(select(Call).where(Call.linkedid == "402.1"))
        assert call is not None
        orders = (await session.scalars(select(WorkOrder).where(WorkOrder.call_id == call.id))).all()
    assert call.kind is CallKind.SOS and call.elder_id == seeded_device and call.answered_at is None
    assert [o.kind for o in orders] == [WorkOrderKind.EMERGENCY]
    assert dt.timedelta(seconds=11) <= utcnow() - call.started_at < dt.timedelta(seconds=15)
    # An agent talking to the elder when the platform came back: the call is answered, so never called back.
    talking = [*ringing, _live("402.1", "402.2", "PJSIP/8101-00000005", context="cc-agent", state="6",
                               duration="00:00:05")]
    await reconciler.reconcile(live_channels=talking)
    async with db.transaction(read_only=True) as session:
        call = await session.scalar(select(Call).where(Call.linkedid == "402.1"))
    assert call is not None and call.answered_at is not None


async def test_a_call_asterisk_died_with_is_ended_and_an_unanswered_sos_called_back(
        db: Database, settings: Settings, cdr: Path, seeded_device: int) -> None:
    """Asterisk crashed (no CDR line) with an SOS ringing and a hotline call answered: both are open in the log and
    neither is among the channels of the restarted Asterisk."""
    started = utcnow() - dt.timedelta(seconds=20)
    async with db.transaction() as session:
        device_id = await session.scalar(select(Device.id).where(Device.sip_username == DEVICE))
        sos_call = Call(linkedid="403.1", kind=CallKind.SOS, started_at=started, device_id=device_id)
        session.add_all([sos_call, Call(linkedid="403.2", kind=CallKind.HOTLINE, started_at=started,
                                        answered_at=started),
                         Call(linkedid="403.3", kind=CallKind.HOTLINE, started_at=started)])  # still live
        await session.flush()
        await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="ivr", call_id=sos_call.id,
                          device_id=device_id)
    reconciler = CdrReconciler(db, settings, cdr)
    callbacks = SosCallbacks(db, AmiClient("127.0.0.1", free_tcp_port(), "u", "s"), AgentRegistry())
    reconciler.on_call_added(callbacks.call_ended)
    live = [_live("403.3", "403.3", "PJSIP/dev-other-00000001", context="cc-hotline", state="6",
                  duration="00:00:20")]
    report = await reconciler.reconcile(live_channels=live, listed_at=utcnow())
    assert report.calls_vanished == 2
    async with db.transaction(read_only=True) as session:
        calls = {c.linkedid: c for c in (await session.scalars(select(Call))).all()}
    assert calls["403.1"].ended_at is not None and calls["403.1"].disposition is Disposition.ABANDONED
    assert calls["403.2"].ended_at is not None and calls["403.2"].disposition is Disposition.ANSWERED
    assert calls["403.3"].ended_at is None
    assert [p.target for p in callbacks.pending] == [f"PJSIP/{DEVICE}"]
