"""The IVR interpreter driven over real TCP by a scripted Asterisk, against a real database.

The fake Asterisk answers the handler's commands like a channel with a caller on it: GET VARIABLE from the
variables identify-caller left, STREAM FILE / WAIT FOR DIGIT from a script of what the caller does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import re
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from structlog.testing import capture_logs

from callcenter.calls.models import Call, CallKind
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceKind
from callcenter.elders.models import Elder
from callcenter.ivr.agi import run_menu
from callcenter.ivr.flows import DEFAULT_FLOWS_DIR, FlowSet, load_flows
from callcenter.orders.deadlines import due_at_for
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.telephony.fastagi import FastAgiServer
from tests.unit.telephony.test_fastagi import FakeAsterisk

pytestmark = pytest.mark.timeout(20)
TEST_TIMEOUT = 8.0
ROOT = Path("/opt/callcenter/unit/sounds")
# Not the default (Asia/Shanghai): a centre in Xinjiang may keep local time, and its complaints' working days too.
CENTRE_TIMEZONE = ZoneInfo("Asia/Urumqi")
LINKEDID = "1700000100.1"
DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
_STREAM = re.compile(r'^STREAM FILE (?P<path>\S+) "(?P<escape>[^"]*)"$')
_SET = re.compile(r'^SET VARIABLE (?P<name>\S+) "(?P<value>.*)"$')


class CountingDatabase(Database):
    """A database that knows how many transactions are open right now."""

    open_transactions = 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator:  # type: ignore[override]
        self.open_transactions += 1
        try:
            async with super().transaction() as session:
                yield session
        finally:
            self.open_transactions -= 1


@dataclasses.dataclass
class Phone:
    """Asterisk's side of one call. Script items, each used by the next chance the caller has to press a key:
    "5" pressed after the prompt ended; "barge:5" pressed during the next prompt that listens for keys;
    "silence" nothing (the wait times out); "hangup" the caller hangs up during the next prompt or wait.
    """

    variables: dict[str, str]
    script: list[str]
    db: CountingDatabase | None = None
    played: list[str] = dataclasses.field(default_factory=list)
    set: dict[str, str] = dataclasses.field(default_factory=dict)
    commands: list[str] = dataclasses.field(default_factory=list)
    waits: list[int] = dataclasses.field(default_factory=list)
    held_transaction: bool = False
    dead: bool = False

    def answer(self, command: str) -> list[str]:
        self.commands.append(command)
        if self.dead:
            return [DEAD]
        if self.db is not None and self.db.open_transactions:
            self.held_transaction = True
        if command.startswith("GET VARIABLE "):
            name = command.removeprefix("GET VARIABLE ")
            return [f"200 result=1 ({self.variables[name]})"] if name in self.variables else ["200 result=0"]
        if match := _SET.match(command):
            self.set[match["name"]] = match["value"]
            return ["200 result=1"]
        if match := _STREAM.match(command):
            path = Path(match["path"])
            assert path.parent.parent == ROOT
            self.played.append(f"{path.parent.name}/{path.name}")
            if self.script and self.script[0] == "hangup":
                return self.hang_up()
            if match["escape"] and self.script and self.script[0].startswith("barge:"):
                key = self.script.pop(0).removeprefix("barge:")
                assert key in match["escape"]
                return [f"200 result={ord(key)} endpos=4000"]
            return ["200 result=0 endpos=16000"]
        if command.startswith("WAIT FOR DIGIT "):
            self.waits.append(int(command.split()[-1]))
            key = self.script.pop(0) if self.script else "silence"
            if key == "hangup":
                return self.hang_up()
            assert not key.startswith("barge:"), f"{key} was meant for a prompt"
            return ["200 result=0" if key == "silence" else f"200 result={ord(key)}"]
        return ["200 result=1"]

    def hang_up(self) -> list[str]:
        self.script.pop(0)
        self.dead = True
        return ["HANGUP", "200 result=-1 endpos=0"]

    def heard(self) -> list[str]:
        """The prompt ids played, without the language."""
        return [item.split("/", 1)[1] for item in self.played]


@pytest.fixture(scope="module")
def flows() -> FlowSet:
    return load_flows(DEFAULT_FLOWS_DIR)


@pytest.fixture
async def counting_db(migrated_db_url: str) -> AsyncIterator[CountingDatabase]:
    database = CountingDatabase(migrated_db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def server(counting_db: CountingDatabase, flows: FlowSet) -> AsyncIterator[FastAgiServer]:
    menu = functools.partial(run_menu, counting_db, flows, ROOT, CENTRE_TIMEZONE)
    agi = FastAgiServer("127.0.0.1", 0, {"ivr": menu})
    await agi.start()
    yield agi
    await asyncio.wait_for(agi.stop(), TEST_TIMEOUT)


@dataclasses.dataclass(frozen=True)
class Seeded:
    call_id: int
    elder_id: int
    device_id: int

    def variables(self, identified: str = "device") -> dict[str, str]:
        return {"CC_CALL_ID": str(self.call_id), "CC_ELDER_ID": str(self.elder_id),
                "CC_DEVICE_ID": str(self.device_id), "CC_IDENTIFIED": identified, "CC_CALL_KIND": "hotline"}


async def seed(db: Database, language: str = "zh-CN") -> Seeded:
    async with db.transaction() as session:
        elder = Elder(full_name="王秀英", phone="13800000001", language=language)
        session.add(elder)
        await session.flush()
        device = Device(elder_id=elder.id, kind=DeviceKind.ONE_TOUCH, sip_username="elder-0001", sip_ha1="0" * 32)
        call = Call(linkedid=LINKEDID, kind=CallKind.HOTLINE, caller_number="13800000001", callee_number="12349",
                    elder_id=elder.id)
        session.add_all([device, call])
        await session.flush()
        return Seeded(call.id, elder.id, device.id)


async def unknown_call(db: Database) -> dict[str, str]:
    async with db.transaction() as session:
        call = Call(linkedid=LINKEDID, kind=CallKind.HOTLINE, caller_number="13900000009", callee_number="12349")
        session.add(call)
        await session.flush()
        return {"CC_CALL_ID": str(call.id), "CC_ELDER_ID": "", "CC_DEVICE_ID": "", "CC_IDENTIFIED": "none"}


async def dial(server: FastAgiServer, phone: Phone, *args: str, callerid: str = "13800000001") -> list[str]:
    async with asyncio.timeout(TEST_TIMEOUT):
        side = await FakeAsterisk.request(server.port, "ivr", *(args or ("hotline", LINKEDID)),
                                          uniqueid="1700000100.2", callerid=callerid)
        try:
            return await side.converse(phone.answer)
        finally:
            await side.close()


async def orders(db: Database) -> list[WorkOrder]:
    async with db.transaction() as session:
        return list((await session.scalars(select(WorkOrder).options(selectinload(WorkOrder.events))
                                           .order_by(WorkOrder.id))).all())


def assert_queued(phone: Phone, queue: str = "hotline") -> None:
    assert phone.set["CC_IVR_ACTION"] == "queue"
    assert phone.set["CC_IVR_QUEUE"] == queue
    assert phone.set["CC_AGI_RESULT"] == "ok"
    assert phone.commands[-3:] == ['SET VARIABLE CC_IVR_ACTION "queue"', f'SET VARIABLE CC_IVR_QUEUE "{queue}"',
                                   'SET VARIABLE CC_AGI_RESULT "ok"']


# -- greetings and language ------------------------------------------------------------------------------------


async def test_unknown_caller_hears_welcome_and_0_reaches_an_agent(server: FastAgiServer,
                                                                   counting_db: CountingDatabase) -> None:
    phone = Phone(await unknown_call(counting_db), ["0"], counting_db)
    await dial(server, phone, callerid="13900000009")
    assert phone.played == ["zh-CN/welcome", "zh-CN/main-menu", "zh-CN/to-agent"]
    assert_queued(phone)
    assert "CC_ORDER_ID" not in phone.set
    assert phone.waits == [6000]
    assert await orders(counting_db) == []


async def test_known_caller_hears_the_name_free_welcome_in_their_language(server: FastAgiServer,
                                                                          counting_db: CountingDatabase) -> None:
    seeded = await seed(counting_db, language="en")
    phone = Phone(seeded.variables(), ["0"], counting_db)
    await dial(server, phone)
    assert phone.played == ["en/welcome-known", "en/main-menu", "en/to-agent"]
    assert_queued(phone)


async def test_known_by_caller_id_also_hears_welcome_known(server: FastAgiServer,
                                                           counting_db: CountingDatabase) -> None:
    seeded = await seed(counting_db)
    phone = Phone(seeded.variables("caller_id"), ["0"], counting_db)
    await dial(server, phone)
    assert phone.played[0] == "zh-CN/welcome-known"


async def test_cc_language_chooses_english_for_an_unknown_caller(server: FastAgiServer,
                                                                 counting_db: CountingDatabase) -> None:
    phone = Phone({**await unknown_call(counting_db), "CC_LANGUAGE": "en-GB"}, ["0"], counting_db)
    await dial(server, phone)
    assert phone.played == ["en/welcome", "en/main-menu", "en/to-agent"]


# -- orders ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("digit", "service"), [("1", "meal_delivery"), ("2", "cleaning"), ("3", "bathing"),
                                                ("4", "repair"), ("5", "escort")])
async def test_service_request_raises_an_order_with_the_service_then_queues(
    server: FastAgiServer, counting_db: CountingDatabase, digit: str, service: str
) -> None:
    seeded = await seed(counting_db)
    phone = Phone(seeded.variables(), ["1", digit], counting_db)
    await dial(server, phone)
    assert phone.heard() == ["welcome-known", "main-menu", "services-menu", "service-recorded"]
    assert_queued(phone)
    [order] = await orders(counting_db)
    assert phone.set["CC_ORDER_ID"] == str(order.id)
    assert order.kind is WorkOrderKind.SERVICE_REQUEST
    assert (order.call_id, order.elder_id, order.device_id) == (seeded.call_id, seeded.elder_id, seeded.device_id)
    assert order.title.startswith("服务请求")
    [event] = order.events
    assert (event.actor_label, event.action, event.call_id) == ("ivr", "created", seeded.call_id)
    assert event.details["service"] == service
    assert event.details["source"] == "ivr"
    assert not phone.held_transaction


@pytest.mark.parametrize(("digit", "kind", "confirmation"), [("2", WorkOrderKind.CONSULTATION, "to-agent"),
                                                             ("3", WorkOrderKind.COMPLAINT, "complaint-recorded")])
async def test_consultation_and_complaint_raise_their_order_then_queue(
    server: FastAgiServer, counting_db: CountingDatabase, digit: str, kind: WorkOrderKind, confirmation: str
) -> None:
    seeded = await seed(counting_db)
    phone = Phone(seeded.variables(), [digit], counting_db)
    await dial(server, phone)
    assert phone.heard() == ["welcome-known", "main-menu", confirmation]
    assert_queued(phone)
    [order] = await orders(counting_db)
    assert (order.kind, order.call_id, order.elder_id) == (kind, seeded.call_id, seeded.elder_id)
    assert phone.set["CC_ORDER_ID"] == str(order.id)
    # The deadline on the centre's calendar (CC_TIMEZONE): 48 hours, or the end of the 5th working day there.
    assert order.due_at == due_at_for(kind, order.created_at, CENTRE_TIMEZONE)
    if kind is WorkOrderKind.COMPLAINT:
        assert order.due_at != due_at_for(kind, order.created_at, ZoneInfo("Asia/Shanghai"))


async def test_callback_records_the_request_and_ends_with_callback(server: FastAgiServer,
                                                                   counting_db: CountingDatabase) -> None:
    variables = await unknown_call(counting_db)
    phone = Phone(variables, ["4"], counting_db)
    await dial(server, phone, callerid="13900000009")
    assert phone.heard() == ["welcome", "main-menu", "callback-confirmed"]
    [order] = await orders(counting_db)
    assert order.kind is WorkOrderKind.CONSULTATION
    assert (order.call_id, order.elder_id) == (int(variables["CC_CALL_ID"]), None)
    [event] = order.events
    assert event.details["callback_requested"] is True
    assert event.details["number"] == "13900000009"
    assert phone.set["CC_ORDER_ID"] == str(order.id)
    assert phone.set["CC_IVR_ACTION"] == "callback"
    assert phone.set["CC_IVR_QUEUE"] == ""
    assert phone.set["CC_AGI_RESULT"] == "ok"
    # The confirmation is recorded before it is promised.
    assert phone.commands.index(f'SET VARIABLE CC_ORDER_ID "{order.id}"') < len(phone.commands) - 4


async def test_without_cc_call_id_the_order_finds_the_call_by_linkedid(server: FastAgiServer,
                                                                       counting_db: CountingDatabase) -> None:
    seeded = await seed(counting_db)
    variables = seeded.variables()
    del variables["CC_CALL_ID"]
    phone = Phone(variables, ["3"], counting_db)
    await dial(server, phone)
    [order] = await orders(counting_db)
    assert order.call_id == seeded.call_id


# -- navigation ------------------------------------------------------------------------------------------------


async def test_barge_in_a_key_during_a_prompt_counts(server: FastAgiServer, counting_db: CountingDatabase) -> None:
    seeded = await seed(counting_db)
    phone = Phone(seeded.variables(), ["barge:1", "barge:2"], counting_db)
    await dial(server, phone)
    # 1 during the welcome skips the main menu; 2 during the services menu chooses cleaning.
    assert phone.heard() == ["welcome-known", "services-menu", "service-recorded"]
    assert phone.waits == []
    assert all(command.endswith('"0123456789*#"') for command in phone.commands
               if "welcome" in command or "menu" in command)
    [order] = await orders(counting_db)
    assert order.events[0].details["service"] == "cleaning"


async def test_silence_retries_then_defaults_to_an_agent(server: FastAgiServer,
                                                         counting_db: CountingDatabase) -> None:
    seeded = await seed(counting_db)
    phone = Phone(seeded.variables(), ["silence", "silence", "silence"], counting_db)
    with capture_logs() as logs:
        await dial(server, phone)
    assert phone.heard() == ["welcome-known", "main-menu", "no-input", "main-menu", "no-input", "main-menu",
                             "to-agent"]
    assert phone.waits == [6000, 6000, 6000]
    assert_queued(phone)
    assert await orders(counting_db) == []
    events = [entry["event"] for entry in logs if entry["event"].startswith("ivr.")]
    assert events.count("ivr.timeout") == 3
    assert "ivr.max_tries" in events
    for entry in logs:
        if entry["event"].startswith("ivr."):
            assert (entry["uniqueid"], entry["linkedid"]) == ("1700000100.2", LINKEDID), entry


async def test_an_invalid_key_is_explained_and_asked_again(server: FastAgiServer,
                                                           counting_db: CountingDatabase) -> None:
    seeded = await seed(counting_db)
    phone = Phone(seeded.variables(), ["7", "barge:0"], counting_db)
    await dial(server, phone)
    # The second try's key comes during the "invalid" prompt itself.
    assert phone.heard() == ["welcome-known", "main-menu", "invalid-choice", "to-agent"]
    assert_queued(phone)


async def test_invalid_and_silent_tries_add_up_to_the_default(server: FastAgiServer,
                                                              counting_db: CountingDatabase) -> None:
    seeded = await seed(counting_db)
    phone = Phone(seeded.variables(), ["1", "8", "silence", "#"], counting_db)
    await dial(server, phone)
    assert phone.heard() == ["welcome-known", "main-menu", "services-menu", "invalid-choice", "services-menu",
                             "no-input", "services-menu", "to-agent"]
    assert_queued(phone)
    assert await orders(counting_db) == []


async def test_0_in_the_sub_menu_goes_back_with_fresh_tries(server: FastAgiServer,
                                                            counting_db: CountingDatabase) -> None:
    seeded = await seed(counting_db)
    phone = Phone(seeded.variables(), ["8", "1", "8", "8", "0", "8", "8", "0"], counting_db)
    await dial(server, phone)
    assert phone.heard() == [
        "welcome-known", "main-menu", "invalid-choice", "main-menu", "services-menu", "invalid-choice",
        "services-menu", "invalid-choice", "services-menu", "main-menu", "invalid-choice", "main-menu",
        "invalid-choice", "main-menu", "to-agent",
    ]
    assert_queued(phone)


async def test_9_repeats_the_menu_without_using_a_try(server: FastAgiServer, counting_db: CountingDatabase) -> None:
    seeded = await seed(counting_db)
    phone = Phone(seeded.variables(), ["9", "9", "9", "9", "3"], counting_db)
    await dial(server, phone)
    assert phone.heard() == ["welcome-known", *["main-menu"] * 5, "complaint-recorded"]
    [order] = await orders(counting_db)
    assert order.kind is WorkOrderKind.COMPLAINT


# -- hang-ups and mistakes -------------------------------------------------------------------------------------


async def test_hanging_up_mid_menu_ends_quietly_and_writes_nothing(server: FastAgiServer,
                                                                   counting_db: CountingDatabase) -> None:
    seeded = await seed(counting_db)
    phone = Phone(seeded.variables(), ["1", "hangup"], counting_db)
    with capture_logs() as logs:
        await dial(server, phone)
    assert phone.heard() == ["welcome-known", "main-menu", "services-menu"]
    assert not any(name.startswith(("CC_IVR", "CC_AGI")) for name in phone.set)
    assert await orders(counting_db) == []
    events = [entry["event"] for entry in logs]
    assert "ivr.caller_hung_up" in events
    assert "fastagi.caller_hung_up" in events
    assert "fastagi.handler_failed" not in events


async def test_hanging_up_during_a_confirmation_keeps_the_whole_order(server: FastAgiServer,
                                                                     counting_db: CountingDatabase) -> None:
    seeded = await seed(counting_db)
    phone = Phone(seeded.variables(), ["1", "1", "hangup"], counting_db)
    await dial(server, phone)
    assert phone.heard()[-1] == "service-recorded"
    [order] = await orders(counting_db)
    assert len(order.events) == 1
    assert "CC_IVR_ACTION" not in phone.set


async def test_hanging_up_during_the_welcome(server: FastAgiServer, counting_db: CountingDatabase) -> None:
    phone = Phone(await unknown_call(counting_db), ["hangup"], counting_db)
    await dial(server, phone)
    assert phone.heard() == ["welcome"]
    assert phone.set == {}


async def test_an_unknown_entry_still_reaches_an_agent(server: FastAgiServer, counting_db: CountingDatabase) -> None:
    phone = Phone(await unknown_call(counting_db), [], counting_db)
    with capture_logs() as logs:
        await dial(server, phone, "no-such-flow", LINKEDID)
    assert phone.played == []
    assert_queued(phone)
    assert any(entry["event"] == "ivr.unknown_entry" and entry["log_level"] == "error" for entry in logs)


async def test_a_missing_sound_file_does_not_stall_the_caller(server: FastAgiServer,
                                                              counting_db: CountingDatabase) -> None:
    seeded = await seed(counting_db)
    phone = Phone(seeded.variables(), [], counting_db)

    def missing_files(command: str, answer=phone.answer) -> Iterable[str]:
        lines = answer(command)
        return ["200 result=-1 endpos=0"] if command.startswith("STREAM FILE") else lines

    with capture_logs() as logs:
        async with asyncio.timeout(TEST_TIMEOUT):
            side = await FakeAsterisk.request(server.port, "ivr", "hotline", LINKEDID)
            await side.converse(missing_files)
            await side.close()
    assert_queued(phone)
    assert any(entry["event"] == "ivr.prompt_failed" for entry in logs)
