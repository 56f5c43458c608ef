"""Where an elder was and what the device said are sealed in the database: no coordinate, no detail, in plain; not
in the alarm's row, its work order, the order's trail nor the audit log."""

from __future__ import annotations

from sqlalchemy import text

from callcenter.alarms.models import Alarm, AlarmSource
from callcenter.db.session import Database
from tests.unit.alarms.factory import household, intake, message, raw

LATITUDE, LONGITUDE = 31.230416, 121.473701
READING = "systolic-187"


async def test_the_database_holds_no_plain_location_nor_device_details(db: Database) -> None:
    home = await household(db)
    receipt = await intake(db).receive_message(home.device_id, raw(message(
        alarm_type="vital_sign", position={"lat": LATITUDE, "lon": LONGITUDE, "source": "wifi"},
        extra={"reading": READING})), AlarmSource.MQTT)
    async with db.engine.connect() as connection:
        location, payload = (await connection.execute(text("SELECT location, payload FROM alarms WHERE id = :id"),
                                                      {"id": receipt.alarm_id})).one()
        assert str(location).startswith("cc1:") and str(payload).startswith("cc1:")
        everything = []
        for table in ("alarms", "alarm_messages", "work_orders", "work_order_events", "audit_log"):
            everything += [str(row) for row in (await connection.execute(text(f"SELECT * FROM {table}"))).all()]
    dump = "\n".join(everything)
    for secret in (str(LATITUDE), str(LONGITUDE), "31.23", "121.47", READING, "wifi"):
        assert secret not in dump, secret
    # Opened by the platform's own keys, they read back as they came.
    async with db.transaction(read_only=True) as session:
        alarm = await session.get(Alarm, receipt.alarm_id)
        assert alarm is not None and alarm.location == {"latitude": LATITUDE, "longitude": LONGITUDE,
                                                        "accuracy_m": None, "source": "wifi"}
        assert alarm.payload == {"reading": READING}
