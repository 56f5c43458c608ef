"""Synthetic civil-affairs rosters for the import tests: made-up names, resident IDs with valid check digits
(GB 11643) and 177 numbers. No real people."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io

from openpyxl import Workbook

from callcenter.elders.schemas import resident_id_check_digit

HEADERS = ["姓名", "身份证号", "性别", "出生日期", "联系电话", "住址", "社区", "街道/区", "居住状况"]
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_GIVEN = "桂兰建国秀英德福淑珍志强玉梅文华春生凤英明"
_COMMUNITIES = ("和平社区", "幸福社区", "光明社区", "新华社区")
_LIVING = ("独居", "空巢", "与配偶同住", "与子女同住", "与护工同住")


def resident_id(serial: int, *, born: dt.date | None = None, male: bool | None = None) -> str:
    """A well-formed synthetic ID: area 410102, a birth date, a sequence from ``serial``, the right check digit."""
    born = born or dt.date(1930, 1, 1) + dt.timedelta(days=serial % 10_000)
    sequence = serial % 1000
    if male is not None and (sequence % 2 == 1) != male:
        sequence = (sequence + 1) % 1000
    first17 = f"410102{born:%Y%m%d}{sequence:03d}"
    return first17 + resident_id_check_digit(first17)


def name(serial: int) -> str:
    return _SURNAMES[serial % len(_SURNAMES)] + _GIVEN[serial // 7 % len(_GIVEN)] + _GIVEN[serial // 3 % len(_GIVEN)]


def row(serial: int) -> list[str]:
    """A good row: unique ID for distinct serials below 10 000 000 (birth date and sequence both vary)."""
    born = dt.date(1930, 1, 1) + dt.timedelta(days=serial // 1000 * 7 + serial % 7)
    first17 = f"410102{born:%Y%m%d}{serial % 1000:03d}"
    id_number = first17 + resident_id_check_digit(first17)
    gender = "男" if (serial % 1000) % 2 else "女"
    return [name(serial), id_number, gender, born.isoformat(), f"177{serial:08d}",
            f"示范市中原区{_COMMUNITIES[serial % 4]}{serial % 50 + 1}号楼", _COMMUNITIES[serial % 4], "中原区",
            _LIVING[serial % len(_LIVING)]]


@dataclasses.dataclass
class Roster:
    rows: list[list[str]]
    # row number in the file (header is row 1) -> the fields the import must reject it for
    bad: dict[int, set[str]]

    def csv(self, encoding: str = "utf-8") -> bytes:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(HEADERS)
        writer.writerows(self.rows)
        return buffer.getvalue().encode(encoding)

    def xlsx(self) -> bytes:
        book = Workbook(write_only=True)
        sheet = book.create_sheet("花名册")
        sheet.append(HEADERS)
        for cells in self.rows:
            sheet.append(cells)
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()


def roster(count: int, *, start: int = 0) -> Roster:
    """``count`` rows, every 97th one bad in one of five ways (bad check digit, bad phone, the ID of the row before,
    no name, a birth date in the future)."""
    rows: list[list[str]] = []
    bad: dict[int, set[str]] = {}
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    for index in range(count):
        cells = row(start + index)
        number = index + 2
        if index % 97 == 50:
            kind = index // 97 % 5
            if kind == 0:
                last = cells[1][-1]
                cells[1] = cells[1][:-1] + ("0" if last != "0" else "1")
                bad[number] = {"id_number"}
            elif kind == 1:
                cells[4] = "1234-567"
                bad[number] = {"phone"}
            elif kind == 2:
                cells[1] = rows[-1][1]  # the same person twice: both rows are rejected
                bad[number] = {"id_number"}
                bad[number - 1] = {"id_number"}
                cells[2], cells[3] = rows[-1][2], rows[-1][3]
            elif kind == 3:
                cells[0] = ""
                bad[number] = {"full_name"}
            else:
                cells[3] = future
                bad[number] = {"birth_date"}
        rows.append(cells)
    return Roster(rows, bad)
