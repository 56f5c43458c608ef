"""When the outbound engine may dial: windows, quiet hours (the centre's time zone), backoff, the channel budget."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callcenter.outbound.policy import (
    DailyWindow,
    clock_time,
    next_allowed,
    outbound_budget,
    parse_quiet_hours,
    retry_delay,
)
from callcenter.outbound.script import Script

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _utc(local: str) -> dt.datetime:
    return dt.datetime.fromisoformat(local).replace(tzinfo=SHANGHAI).astimezone(dt.UTC)


def test_a_window_past_midnight_and_its_next_opening() -> None:
    night = DailyWindow.parse("22:00", "06:00", field="window")
    assert night.contains(dt.time(23, 30)) and night.contains(dt.time(5, 59)) and not night.contains(dt.time(6, 0))
    morning = DailyWindow.parse("09:00", "11:00", field="window")
    local = dt.datetime(2026, 12, 8, 12, 0, tzinfo=SHANGHAI)
    assert morning.next_start(local) == dt.datetime(2026, 12, 9, 9, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize(("start", "end", "message"), [
    ("25:00", "08:00", "window.start: '25:00' is not a time of day"),
    ("9:00", "10:00", "window.start: '9:00' is not a time of day"),
    ("08:00", "08:00", "would be empty"),
])
def test_an_invalid_window_names_the_part_that_is_wrong(start: str, end: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DailyWindow.parse(start, end, field="window")


def test_quiet_hours_hold_a_call_until_they_end_in_the_centres_time_zone() -> None:
    quiet = parse_quiet_hours("21:00-08:00")
    assert parse_quiet_hours("none") is None and clock_time("07:05", field="x") == dt.time(7, 5)
    # 22:30 in Shanghai is 14:30 UTC: the care call waits for 08:00 Shanghai the next morning.
    assert next_allowed(_utc("2026-12-08 22:30"), SHANGHAI, window=None, quiet=quiet) == _utc("2026-12-09 08:00")
    # 06:00 is still quiet: 08:00 the same day.
    assert next_allowed(_utc("2026-12-08 06:00"), SHANGHAI, window=None, quiet=quiet) == _utc("2026-12-08 08:00")
    # Daytime: now.
    assert next_allowed(_utc("2026-12-08 10:00"), SHANGHAI, window=None, quiet=quiet) == _utc("2026-12-08 10:00")


def test_a_window_and_the_quiet_hours_together() -> None:
    quiet = parse_quiet_hours("21:00-08:00")
    early = DailyWindow.parse("07:00", "10:00", field="window")
    # At 06:30 the window opens at 07:00, but that is quiet: 08:00.
    assert next_allowed(_utc("2026-12-08 06:30"), SHANGHAI, window=early, quiet=quiet) == _utc("2026-12-08 08:00")
    # Past the window: tomorrow at 08:00 (07:00 is still quiet).
    assert next_allowed(_utc("2026-12-08 10:30"), SHANGHAI, window=early, quiet=quiet) == _utc("2026-12-09 08:00")
    with pytest.raises(ValueError, match="wholly inside the quiet hours"):
        next_allowed(_utc("2026-12-08 12:00"), SHANGHAI, window=DailyWindow.parse("22:00", "23:00", field="w"),
                     quiet=quiet)


def test_backoff_and_the_channel_budget() -> None:
    assert [retry_delay(n, base_seconds=900, factor=1.0) for n in (1, 2)] == [900, 900]
    assert [retry_delay(n, base_seconds=60, factor=2.0) for n in (1, 2, 3)] == [60, 120, 240]
    assert retry_delay(30, base_seconds=60, factor=2.0) == 6 * 3600
    # 30 channels, 10 kept free for the next SOS, 5 inbound calls talking, 12 outbound already: 3 more.
    assert outbound_budget(channels=30, reserved=10, inbound_in_progress=5, outbound_in_flight=12) == 3
    assert outbound_budget(channels=30, reserved=10, inbound_in_progress=25, outbound_in_flight=0) == 0


def test_a_script_refuses_keys_that_are_no_choice() -> None:
    with pytest.raises(ValueError, match="no choice"):
        Script(prompts=("p",), choices={"1": "ok"}, agent_keys=("0",))
    with pytest.raises(ValueError, match="not a telephone key"):
        Script(prompts=("p",), choices={"x": "ok"})
