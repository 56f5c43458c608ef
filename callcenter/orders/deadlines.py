"""Deadlines of work orders, counted the way the seed standard counts them.

- A consultation not answered on the call: 48 hours (seed 6.1).
- A device fault: someone on site within 48 hours (seed 7.3).
- A complaint: 5 working days (seed 8.4.1.3) on the Chinese working calendar — public holidays are rest days and
  make-up working days (调休上班, often a Saturday) count — or the forwarding body's own deadline if earlier.
- A service request: 72 hours unless the agent sets another.

The calendar comes from the maintained ``chinese_calendar`` package (the State Council's yearly notice). For a
year the installed package does not cover yet, Monday–Friday are counted as working days and a warning is logged:
a deadline is never refused, and upgrading the package corrects later ones.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import chinese_calendar
import structlog

from callcenter.orders.models import WorkOrderKind

log = structlog.get_logger(__name__)

CONSULTATION_HOURS = 48
DEVICE_FAULT_HOURS = 48
SERVICE_REQUEST_HOURS = 72
COMPLAINT_WORKING_DAYS = 5
# A supervision case is raised when less than this share of an order's time is left (escalate *before* it passes).
DUE_SOON_SHARE = 0.25


def is_working_day(day: dt.date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        log.warning("working_calendar_year_not_covered", year=day.year,
                    hint="upgrade the chinesecalendar package; counting Monday-Friday meanwhile")
        return day.weekday() < 5


def add_working_days(start: dt.date, days: int) -> dt.date:
    """The ``days``-th working day after ``start`` (``start`` itself never counts)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    day = start
    counted = 0
    while counted < days:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return day


def working_days_deadline(received_at: dt.datetime, days: int, tz: ZoneInfo) -> dt.datetime:
    """The end (local midnight) of the ``days``-th working day after the local day of ``received_at``, in UTC.

    Received on Wednesday 30 September 2026, five working days are 8, 9, 10 (a make-up Saturday), 12 and 13
    October — the National Day holiday of 1-7 October does not count — so the answer is due by 14 October 00:00.
    """
    local_day = received_at.astimezone(tz).date()
    last_day = add_working_days(local_day, days)
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), tzinfo=tz).astimezone(dt.UTC)


def due_at_for(kind: WorkOrderKind, received_at: dt.datetime, tz: ZoneInfo, *,
               external_deadline: dt.datetime | None = None) -> dt.datetime | None:
    """The deadline an order of ``kind`` received at ``received_at`` gets; None for an emergency (handled live)."""
    if kind is WorkOrderKind.CONSULTATION:
        return received_at + dt.timedelta(hours=CONSULTATION_HOURS)
    if kind is WorkOrderKind.DEVICE_FAULT:
        return received_at + dt.timedelta(hours=DEVICE_FAULT_HOURS)
    if kind is WorkOrderKind.SERVICE_REQUEST:
        return received_at + dt.timedelta(hours=SERVICE_REQUEST_HOURS)
    if kind is WorkOrderKind.COMPLAINT:
        due = working_days_deadline(received_at, COMPLAINT_WORKING_DAYS, tz)
        return min(due, external_deadline) if external_deadline is not None else due
    return None


def due_soon_at(created_at: dt.datetime, due_at: dt.datetime) -> dt.datetime:
    """When an open order's deadline counts as near: a quarter of its time left."""
    return due_at - (due_at - created_at) * DUE_SOON_SHARE
