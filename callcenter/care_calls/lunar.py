"""The Chinese calendar's dates for greetings: the festivals elders keep, and birthdays solar or lunar.

Conversions are lunardate's (pyproject.toml says why that library); its tables cover lunar years 1900-2099.
Pure functions of a date: tested against the published dates of 2026-2027.
"""

from __future__ import annotations

import datetime as dt
import enum

from lunardate import LunarDate


class Festival(enum.StrEnum):
    SPRING = "spring_festival"  # 春节, 正月初一
    LANTERN = "lantern"  # 元宵节, 正月十五
    DRAGON_BOAT = "dragon_boat"  # 端午节, 五月初五
    MID_AUTUMN = "mid_autumn"  # 中秋节, 八月十五
    DOUBLE_NINTH = "double_ninth"  # 重阳节, 九月初九: the elders' festival (老年节, 老年人权益保障法 art. 12)


# Lunar month and day of each festival. 七夕 is left out on purpose: a lovers' day, not one to call elders for.
FESTIVAL_DATES: dict[Festival, tuple[int, int]] = {
    Festival.SPRING: (1, 1), Festival.LANTERN: (1, 15), Festival.DRAGON_BOAT: (5, 5), Festival.MID_AUTUMN: (8, 15),
    Festival.DOUBLE_NINTH: (9, 9),
}
FIRST_YEAR, LAST_YEAR = 1900, 2099  # lunardate's lunar years
# The solar days those lunar years cover: 1900-01-31 (正月初一 1900) to 2100-02-08 (腊月三十 2099). lunardate answers
# nonsense outside them rather than raising (1899-01-01 → "1900-01--394"), so the range is checked here.
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 31), dt.date(2100, 2, 8)


def festivals_on(day: dt.date) -> list[Festival]:
    """The festivals that fall on ``day`` (a solar date); none outside the library's range."""
    lunar = _lunar(day)
    if lunar is None or lunar.is_leap_month:  # a festival is never kept in a leap month
        return []
    return [festival for festival, (month, mday) in FESTIVAL_DATES.items() if (lunar.month, lunar.day) == (month, mday)]


def festival_date(festival: Festival, year: int) -> dt.date:
    """The solar date of ``festival`` in the lunar year that starts in ``year``."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"{year} is outside the lunar calendar's range ({FIRST_YEAR}-{LAST_YEAR})")
    month, day = FESTIVAL_DATES[festival]
    return LunarDate(year, month, day).to_solar_date()  # type: ignore[no-any-return]


def lunar_birthday(birth_date: dt.date) -> tuple[int, int]:
    """The lunar month and day of ``birth_date``; ``ValueError`` outside 1900-2099. Born in a leap month, the
    birthday is kept in the ordinary month of the same number, as is the custom."""
    lunar = _lunar(birth_date)
    if lunar is None:
        raise ValueError(f"{birth_date} is outside the lunar calendar's range ({FIRST_YEAR}-{LAST_YEAR})")
    return lunar.month, lunar.day


def is_birthday(day: dt.date, birth_date: dt.date, *, lunar: bool) -> bool:
    """Whether ``day`` is the birthday of someone born on ``birth_date``. Solar: 29 February is kept on 28 February
    in other years. Lunar: the month and day of birth in the lunar year, and the month's last day (the 29th) for a
    birthday on a 30th in a year whose month has 29 days."""
    if day <= birth_date:
        return False
    if not lunar:
        if (birth_date.month, birth_date.day) == (2, 29) and not _leap_year(day.year):
            return (day.month, day.day) == (2, 28)
        return (day.month, day.day) == (birth_date.month, birth_date.day)
    month, mday = lunar_birthday(birth_date)
    today = _lunar(day)
    if today is None or today.is_leap_month or today.month != month:
        return False
    if today.day == mday:
        return True
    # A 30th in a short month: kept on its last day, the 29th, when the next day is already the next month.
    return mday == 30 and today.day == 29 and _lunar(day + dt.timedelta(days=1)).day == 1  # type: ignore[union-attr]


def _lunar(day: dt.date) -> LunarDate | None:
    if not FIRST_DAY <= day <= LAST_DAY:
        return None
    return LunarDate.from_solar_date(day.year, day.month, day.day)


def _leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
