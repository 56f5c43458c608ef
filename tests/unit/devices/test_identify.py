from __future__ import annotations

import pytest

from callcenter.calls.models import IdentifiedBy
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceKind, DeviceStatus
from callcenter.devices.services import identify_caller, normalise_number
from callcenter.elders.models import Elder
from callcenter.users.passwords import sip_ha1


async def _elder_with_device(db: Database, *, phone: str, device_user: str, device_phone: str | None,
                             status: DeviceStatus = DeviceStatus.ACTIVE) -> tuple[int, int]:
    async with db.transaction() as session:
        elder = Elder(full_name="测试", phone=phone)
        session.add(elder)
        await session.flush()
        device = Device(elder_id=elder.id, kind=DeviceKind.PENDANT, sip_username=device_user,
                        sip_ha1=sip_ha1(device_user, "password-123"), phone_number=device_phone, status=status)
        session.add(device)
        await session.flush()
        return elder.id, device.id


async def test_the_device_endpoint_identifies_its_elder(db: Database) -> None:
    elder_id, device_id = await _elder_with_device(db, phone="17700000001", device_user="d1", device_phone=None)
    async with db.transaction() as session:
        who = await identify_caller(session, "d1", "")
    assert (who.elder_id, who.device_id, who.method) == (elder_id, device_id, IdentifiedBy.DEVICE)


async def test_caller_id_of_a_device_or_elder_phone_identifies(db: Database) -> None:
    elder_id, device_id = await _elder_with_device(db, phone="17700000002", device_user="d2",
                                                   device_phone="17700000003")
    async with db.transaction() as session:
        by_device_number = await identify_caller(session, "trunk", "+86 177 0000 0003")
        by_elder_number = await identify_caller(session, "", "008617700000002")
    assert (by_device_number.elder_id, by_device_number.device_id) == (elder_id, device_id)
    assert by_device_number.method is IdentifiedBy.CALLER_ID
    assert (by_elder_number.elder_id, by_elder_number.device_id) == (elder_id, None)


async def test_unknown_endpoint_and_number_identify_nobody(db: Database) -> None:
    await _elder_with_device(db, phone="17700000004", device_user="d4", device_phone=None)
    async with db.transaction() as session:
        who = await identify_caller(session, "stranger", "13900000000")
    assert not who.known
    assert who.method is IdentifiedBy.NONE


async def test_a_retired_device_no_longer_speaks_for_the_elder(db: Database) -> None:
    await _elder_with_device(db, phone="17700000005", device_user="d5", device_phone=None,
                             status=DeviceStatus.RETIRED)
    async with db.transaction() as session:
        who = await identify_caller(session, "d5", "")
    assert not who.known


async def test_a_shared_landline_does_not_guess_between_two_elders(db: Database) -> None:
    async with db.transaction() as session:
        session.add_all([Elder(full_name="甲", phone="03740000000"), Elder(full_name="乙", phone="03740000000")])
    async with db.transaction() as session:
        who = await identify_caller(session, "", "03740000000")
    assert not who.known


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("+86 177-0000-0001", "17700000001"), ("0086 17700000001", "17700000001"), ("120", "120"), ("", "")],
)
def test_numbers_are_normalised(raw: str, expected: str) -> None:
    assert normalise_number(raw) == expected
