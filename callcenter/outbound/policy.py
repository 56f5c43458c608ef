"""When and how much the dialer may dial: time windows, quiet hours, retry backoff and the channel budget.

Pure functions of their arguments (the clock is passed in), so every rule is tested without a database or a
socket.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from zoneinfo import ZoneInfo

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def clock_time(raw: str, *, field: str) -> dt.time:
    """``HH:MM`` (24-hour) as a time; ``ValueError`` naming ``field`` otherwise."""
    match = _CLOCK.fullmatch(raw.strip())
    if match is None:
        raise ValueError(f"{field}: {raw!r} is not a time of day as HH:MM (00:00-23:59)")
    return dt.time(int(match.group(1)), int(match.group(2)))


@dataclasses.dataclass(frozen=True, slots=True)
class DailyWindow:
    """A stretch of each local day, [start, end); one that ends before it starts runs past midnight."""

    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, start: str, end: str, *, field: str) -> DailyWindow:
        window = cls(clock_time(start, field=f"{field}.start"), clock_time(end, field=f"{field}.end"))
        if window.start == window.end:
            raise ValueError(f"{field}: the window starts and ends at {start}: it would be empty")
        return window

    def contains(self, local: dt.time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_start(self, local: dt.datetime) -> dt.datetime:
        """The window's next opening at or after ``local`` (a zone-aware local time)."""
        opening = local.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        return opening if opening >= local else opening + dt.timedelta(days=1)


def parse_quiet_hours(raw: str) -> DailyWindow | None:
    """CC_OUTBOUND_QUIET_HOURS: ``HH:MM-HH:MM`` (``21:00-08:00``), or empty / ``none`` for no quiet hours."""
    text = raw.strip().lower()
    if text in ("", "none"):
        return None
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError("expected HH:MM-HH:MM, e.g. 21:00-08:00, or none")
    return DailyWindow.parse(start, end, field="quiet hours")


def next_allowed(now: dt.datetime, zone: ZoneInfo, *, window: DailyWindow | None,
                 quiet: DailyWindow | None) -> dt.datetime:
    """The earliest moment at or after ``now`` (UTC) that is inside ``window`` (when given) and outside ``quiet``
    (when given), in the centre's time zone. ``now`` itself when dialling is allowed now."""
    local = now.astimezone(zone)
    for _ in range(4):  # each step moves to a boundary; two windows settle within a few steps
        if window is not None and not window.contains(local.timetz().replace(tzinfo=None)):
            local = window.next_start(local)
            continue
        if quiet is not None and quiet.contains(local.timetz().replace(tzinfo=None)):
            local = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
            if local.astimezone(dt.UTC) < now:
                local += dt.timedelta(days=1)
            continue
        return local.astimezone(dt.UTC)
    # A window that lies wholly inside the quiet hours never opens: say so rather than loop.
    raise ValueError("the time window lies wholly inside the quiet hours (CC_OUTBOUND_QUIET_HOURS): it never opens")


def retry_delay(attempts_made: int, *, base_seconds: int, factor: float, cap_seconds: int = 6 * 3600) -> float:
    """Seconds before the next attempt after ``attempts_made`` attempts: ``base × factor^(attempts_made-1)``."""
    return float(min(cap_seconds, base_seconds * factor ** max(0, attempts_made - 1)))


def outbound_budget(*, channels: int, reserved: int, inbound_in_progress: int, outbound_in_flight: int) -> int:
    """How many more outbound calls may start now: the centre's channels less the inbound calls in progress, the
    headroom always kept free for the next inbound SOS or hotline calls (``reserved``), and the outbound calls in
    flight."""
    return max(0, channels - inbound_in_progress - reserved - outbound_in_flight)
