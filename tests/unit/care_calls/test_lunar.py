"""The Chinese calendar's greeting days, checked against published dates: the State Council's holiday notice for
2026 (春节 17 February, 端午 19 June, 中秋 25 September) and the almanac dates of 2027 (春节 6 February, 中秋
15 September), which lunar-python's astronomical computation gives too."""

from __future__ import annotations

import datetime as dt

import pytest

from callcenter.care_calls.lunar import Festival, festival_date, festivals_on, is_birthday, lunar_birthday

KNOWN = {
    (Festival.SPRING, 2026): dt.date(2026, 2, 17), (Festival.LANTERN, 2026): dt.date(2026, 3, 3),
    (Festival.DRAGON_BOAT, 2026): dt.date(2026, 6, 19), (Festival.MID_AUTUMN, 2026): dt.date(2026, 9, 25),
    (Festival.DOUBLE_NINTH, 2026): dt.date(2026, 10, 18),
    (Festival.SPRING, 2027): dt.date(2027, 2, 6), (Festival.LANTERN, 2027): dt.date(2027, 2, 20),
    (Festival.DRAGON_BOAT, 2027): dt.date(2027, 6, 9), (Festival.MID_AUTUMN, 2027): dt.date(2027, 9, 15),
    (Festival.DOUBLE_NINTH, 2027): dt.date(2027, 10, 8),
}


@pytest.mark.parametrize(("festival", "year"), sorted(KNOWN))
def test_festivals_fall_on_their_published_dates(festival: Festival, year: int) -> None:
    assert festival_date(festival, year) == KNOWN[festival, year]
    assert festivals_on(KNOWN[festival, year]) == [festival]
    assert festivals_on(KNOWN[festival, year] - dt.timedelta(days=1)) == []


def test_a_year_has_exactly_its_five_festival_days() -> None:
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(365)]
    assert sorted(f for day in days for f in festivals_on(day)) == sorted(
        f for f in Festival if festival_date(f, 2026).year == 2026)


def test_outside_the_calendars_range_nothing_is_guessed() -> None:
    assert festivals_on(dt.date(1899, 1, 1)) == []  # lunardate would answer nonsense here
    with pytest.raises(ValueError, match="range"):
        lunar_birthday(dt.date(1899, 12, 31))
    with pytest.raises(ValueError, match="range"):
        festival_date(Festival.SPRING, 2100)


def test_solar_birthdays_and_29_february() -> None:
    born = dt.date(1946, 5, 20)
    assert is_birthday(dt.date(2026, 5, 20), born, lunar=False)
    assert not is_birthday(dt.date(2026, 5, 21), born, lunar=False)
    assert not is_birthday(born, born, lunar=False)
    leap = dt.date(1948, 2, 29)
    assert is_birthday(dt.date(2027, 2, 28), leap, lunar=False)
    assert is_birthday(dt.date(2028, 2, 29), leap, lunar=False)
    assert not is_birthday(dt.date(2028, 2, 28), leap, lunar=False)


def test_lunar_birthdays_follow_the_lunar_date_each_year() -> None:
    # Born 1945-09-20, 八月十五 (乙酉年): the lunar birthday is 中秋 every year.
    born = dt.date(1945, 9, 20)
    assert lunar_birthday(born) == (8, 15)
    assert is_birthday(dt.date(2026, 9, 25), born, lunar=True)
    assert is_birthday(dt.date(2027, 9, 15), born, lunar=True)
    assert not is_birthday(dt.date(2026, 9, 20), born, lunar=True)


def test_a_lunar_birthday_on_a_30th_is_kept_on_the_29th_of_a_short_month() -> None:
    born = dt.date(1941, 2, 25)  # 辛巳年 正月三十
    assert lunar_birthday(born) == (1, 30)
    year = next(y for y in range(2026, 2040) if not _has_thirtieth(y))
    days = [d for d in (dt.date(year, 1, 15) + dt.timedelta(days=n) for n in range(80))
            if is_birthday(d, born, lunar=True)]
    assert len(days) == 1


def _has_thirtieth(year: int) -> bool:
    from lunardate import LunarDate

    first = LunarDate(year, 1, 1).to_solar_date()
    second = LunarDate(year, 2, 1).to_solar_date()
    return (second - first).days == 30
