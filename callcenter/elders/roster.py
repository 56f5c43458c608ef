"""The civil-affairs roster import (seed 5.11): a CSV (UTF-8, UTF-8 with BOM, GB18030) or XLSX file of elders.

Rows are checked one by one with the API's own rules (``ElderCreate``: the resident ID check digit, phone formats,
required fields), plus what only a file can get wrong: the same resident ID on two rows, a birth date or gender
that contradicts the ID. A bad row is rejected with a reason per field; the good rows go ahead. Rows match elders
by resident ID: a new ID creates an elder, a known one updates the roster's fields that differ, and a row that
changes nothing is counted unchanged, so importing the same file twice changes nothing the second time.

The work runs in three steps, so the database's write lock is held only for the short last one:
1. read the file (in a thread: openpyxl and the decoders are CPU-bound);
2. check every row (in a thread, 500 rows at a time, committing ``processed_rows`` after each batch so a watcher
   sees the progress);
3. one transaction: look the IDs up in batches, insert and update in bulk, and mark the import done. A fatal error
   (unreadable file, missing column, database error, shutdown) commits nothing of the file; the import row then
   records ``failed`` and the error in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import re
import zipfile
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import PurePath
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor, record
from callcenter.csvsafe import safe_row
from callcenter.db.base import utcnow
from callcenter.db.sealed import blind_index, session_keyring
from callcenter.db.session import Database, DatabaseBusy
from callcenter.elders.models import ID_NUMBER_INDEX, Elder, LivingSituation, RosterImport, RosterImportStatus
from callcenter.elders.schemas import ElderCreate, validate_resident_id
from callcenter.logs import get_logger

log = get_logger(__name__)
_T = TypeVar("_T")

BATCH = 500  # rows checked between progress commits; IDs per lookup query; rows per bulk statement
MAX_ROWS = 100_000
MAX_BYTES = 20 * 1024 * 1024
HEADER_SEARCH_ROWS = 10  # exports often put a title line ("XX街道老年人花名册") above the header

# The roster's columns: the Elder field, then every header a civil-affairs export or a person may write for it
# (compared without spaces, "*" required-markers and case; full-width brackets count as ASCII ones).
COLUMNS: dict[str, tuple[str, ...]] = {
    "full_name": ("姓名", "老人姓名", "name", "full name", "full_name"),
    "id_number": ("身份证号", "身份证号码", "公民身份号码", "身份证", "resident id", "id number", "id_number"),
    "gender": ("性别", "gender", "sex"),
    "birth_date": ("出生日期", "出生年月日", "出生年月", "birth date", "date of birth", "birth_date"),
    "phone": ("联系电话", "电话", "电话号码", "手机", "手机号", "手机号码", "phone", "telephone", "mobile"),
    "address": ("住址", "家庭住址", "居住地址", "现住址", "地址", "address"),
    "community": ("社区", "所属社区", "社区(村)", "村(社区)", "community"),
    "district": ("街道/区", "街道", "区", "所属街道", "街道(乡镇)", "district", "street"),
    "living_situation": ("居住状况", "居住情况", "居住类型", "living situation", "living_situation"),
    "care_level": ("护理等级", "照护等级", "失能等级", "care level", "care_level"),
}
ROSTER_FIELDS = tuple(COLUMNS)
REQUIRED = ("full_name", "id_number")  # the ID is how a row finds its elder: a roster row without one is no use

LIVING_WORDS: dict[str, LivingSituation] = {
    "独居": LivingSituation.ALONE, "空巢": LivingSituation.EMPTY_NEST,
    "与配偶同住": LivingSituation.WITH_SPOUSE, "夫妻同住": LivingSituation.WITH_SPOUSE,
    "与老伴同住": LivingSituation.WITH_SPOUSE,
    "与子女同住": LivingSituation.WITH_FAMILY, "与家人同住": LivingSituation.WITH_FAMILY,
    "与亲属同住": LivingSituation.WITH_FAMILY,
    "与护工同住": LivingSituation.WITH_CAREGIVER, "有护工": LivingSituation.WITH_CAREGIVER,
    "与保姆同住": LivingSituation.WITH_CAREGIVER,
    **{situation.value: situation for situation in LivingSituation},
}
GENDER_WORDS = {"男": "男", "男性": "男", "女": "女", "女性": "女", "male": "male", "m": "male", "female": "female",
                "f": "female"}
_SAME_GENDER = {"男": "男", "male": "男", "女": "女", "female": "女"}
_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?|(\d{4})(\d{2})(\d{2})")
_CARE_LEVEL = re.compile(r"(\d+)\s*级?")
_EXCEL_TEXT = re.compile(r'="(.*)"')  # ="110105…": how some exports keep Excel from turning an ID into a number


class RosterError(Exception):
    """A fatal problem with the whole file: nothing of it is imported."""


def _header_key(label: str) -> str:
    key = label.replace("（", "(").replace("）", ")").replace("\ufeff", "")
    return re.sub(r"[\s*＊]", "", key).lower()


_HEADER_FIELD = {_header_key(alias): field for field, aliases in COLUMNS.items() for alias in aliases}


@dataclasses.dataclass(frozen=True, slots=True)
class RosterTable:
    """A file as read: its header row, which column gives which field, and the non-blank data rows."""

    headers: list[str]
    columns: dict[str, int]  # field -> column index
    rows: list[tuple[int, list[str | None]]]  # (row number as a spreadsheet shows it, cells)
    ignored: list[str]  # headers that are no roster field: reported, not an error
    # Rows whose ID cell is a spreadsheet number: a double keeps 15-17 digits, so the ID read back is not the one
    # typed (and may even pass the check digit by chance). Such a row is rejected, never matched.
    numeric_ids: frozenset[int] = frozenset()

    def label(self, field: str) -> str:
        """The header the file used for ``field`` (rejection reasons speak the file's language)."""
        return self.headers[self.columns[field]] if field in self.columns else field


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        text = value.date().isoformat()
    elif isinstance(value, dt.date):
        text = value.isoformat()
    elif isinstance(value, bool):
        text = str(value)
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))  # a phone typed as a number; an ID typed as one has lost digits (check digit fails)
    else:
        text = str(value)
    text = text.replace("\u200b", "").replace("\ufeff", "").strip()
    quoted = _EXCEL_TEXT.fullmatch(text)
    if quoted:
        text = quoted.group(1).strip()
    return text or None


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")  # Excel's "Unicode text" export
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")  # what Excel on a Chinese Windows writes as "CSV"
    except UnicodeDecodeError:
        raise RosterError("the CSV file is neither UTF-8 nor GB18030 text: save it again as CSV (UTF-8)") from None


def _csv_rows(data: bytes) -> Iterator[list[Any]]:
    try:
        text = _decode(data)
    except UnicodeDecodeError as error:
        raise RosterError(f"the CSV file cannot be decoded: {error}") from None
    top = "\n".join(text.split("\n", HEADER_SEARCH_ROWS)[:HEADER_SEARCH_ROWS])
    delimiter = max((",", "\t", ";"), key=top.count)  # ties (none at all): a one-column file, comma
    try:
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    except csv.Error as error:
        raise RosterError(f"the CSV file is malformed: {error}") from None


def _xlsx_rows(data: bytes) -> Iterator[list[Any]]:
    from openpyxl import load_workbook  # imported here: only an XLSX import pays for it

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise RosterError(f"not a readable XLSX workbook: {error}") from None
    try:
        sheet = workbook.worksheets[0]  # the roster is the first sheet
        for row in sheet.iter_rows(values_only=True):
            yield list(row)
    finally:
        workbook.close()


def _kind(filename: str, data: bytes) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix in (".xlsx", ".xlsm") or (not suffix and data.startswith(b"PK\x03\x04")):
        return "xlsx"
    if suffix == ".xls" or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise RosterError("the old Excel 97-2003 format (.xls) is not read: save the sheet as .xlsx or CSV")
    if suffix in ("", ".csv", ".txt", ".tsv"):
        return "csv"
    raise RosterError(f"unknown file type {suffix!r}: send a .csv or .xlsx file")


def _find_header(rows: Iterator[list[Any]]) -> tuple[int, list[str]]:
    """The header row: the first of the top rows naming a roster column."""
    for number, cells in enumerate(rows, start=1):
        labels = [_clean(cell) or "" for cell in cells]
        if any(_header_key(label) in _HEADER_FIELD for label in labels):
            return number, labels
        if number >= HEADER_SEARCH_ROWS:
            break
    expected = ", ".join(f"{COLUMNS[field][0]} ({COLUMNS[field][-1]})" for field in REQUIRED)
    raise RosterError(f"no header row found in the first {HEADER_SEARCH_ROWS} rows: the roster needs at least the "
                      f"columns {expected}")


def read_roster(filename: str, data: bytes) -> RosterTable:
    """The file's header and rows; raises ``RosterError`` when the file as a whole cannot be imported."""
    if not data.strip():
        raise RosterError("the file is empty")
    if len(data) > MAX_BYTES:
        raise RosterError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB: split it")
    rows = _xlsx_rows(data) if _kind(filename, data) == "xlsx" else _csv_rows(data)
    header_row, headers = _find_header(rows)
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for index, label in enumerate(headers):
        field = _HEADER_FIELD.get(_header_key(label))
        if field is None:
            if label:
                ignored.append(label)
        elif field in columns:
            raise RosterError(f"columns {headers[columns[field]]!r} and {label!r} both give the {field} field: "
                              "keep one")
        else:
            columns[field] = index
    missing = [field for field in REQUIRED if field not in columns]
    if missing:
        names = "; ".join(f"{COLUMNS[field][0]} (or {', '.join(COLUMNS[field][1:])})" for field in missing)
        raise RosterError(f"required column missing: {names}")
    data_rows: list[tuple[int, list[str | None]]] = []
    numeric_ids: set[int] = set()
    id_column = columns["id_number"]
    for number, cells in enumerate(rows, start=header_row + 1):
        cleaned = [_clean(cell) for cell in cells]
        if not any(cleaned):
            continue  # blank lines between blocks of a hand-kept sheet
        if len(data_rows) >= MAX_ROWS:
            raise RosterError(f"more than {MAX_ROWS} rows: split the file")
        data_rows.append((number, cleaned))
        if id_column < len(cells) and isinstance(cells[id_column], int | float) and not isinstance(
                cells[id_column], bool):
            numeric_ids.add(number)
    return RosterTable(headers=headers, columns=columns, rows=data_rows, ignored=ignored,
                       numeric_ids=frozenset(numeric_ids))


@dataclasses.dataclass(frozen=True, slots=True)
class RosterRow:
    """A good row: the Elder fields it sets, normalised as the API stores them."""

    row: int
    id_number: str
    fields: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Rejection:
    row: int
    id_number: str | None
    full_name: str | None
    errors: dict[str, str]  # field -> reason
    values: dict[str, str | None]  # the row as the file had it, by header (the report repeats it for fixing)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _parse_date(text: str) -> dt.date:
    found = _DATE.fullmatch(text)
    if found is None:
        raise ValueError("not a date: write it as YYYY-MM-DD (e.g. 1941-03-08)")
    year, month, day = (int(part) for part in (found.group(1, 2, 3) if found.group(1) else found.group(4, 5, 6)))
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"not a date: {text}") from None


def _convert(field: str, text: str) -> Any:
    """A cell as the schema expects it; ValueError with the reason when it cannot be."""
    if field == "birth_date":
        return _parse_date(text)
    if field == "gender":
        gender = GENDER_WORDS.get(text.lower())
        if gender is None:
            raise ValueError("must be 男 or 女 (male or female)")
        return gender
    if field == "living_situation":
        situation = LIVING_WORDS.get(text) or LIVING_WORDS.get(text.lower())
        if situation is None:
            raise ValueError("must be one of 独居, 空巢, 与配偶同住, 与子女同住, 与护工同住 "
                             f"(or {', '.join(s.value for s in LivingSituation)})")
        return situation
    if field == "care_level":
        level = _CARE_LEVEL.fullmatch(text)
        if level is None:
            raise ValueError("must be a care level 0 … 5")
        return int(level.group(1))
    if field == "id_number":
        return text.lstrip("'")
    return text


def _message(item: Any) -> str:
    if item["type"] == "missing":
        return "required"
    return str(item["msg"]).removeprefix("Value error, ")


def _resident_id_key(text: str | None) -> str | None:
    """The ID in its stored form when it is a valid one: what duplicates within the file are found by."""
    if text is None:
        return None
    try:
        return validate_resident_id(text.lstrip("'"))
    except ValueError:
        return None


def check_row(table: RosterTable, number: int, cells: Sequence[str | None],
              duplicates: dict[str, list[int]]) -> RosterRow | Rejection:
    """One row with the API's rules (``ElderCreate``) and the file's own: required ID, no duplicates, the birth
    date and gender agreeing with the ID (and taken from it when the row leaves them empty)."""
    raw = {field: cells[index] if index < len(cells) else None for field, index in table.columns.items()}
    errors: dict[str, str] = {}
    given: dict[str, Any] = {}
    for field, text in raw.items():
        if text is None:
            continue
        try:
            given[field] = _convert(field, text)
        except ValueError as error:
            errors[field] = str(error)
    for field in REQUIRED:
        if raw.get(field) is None:
            errors[field] = "required"
    try:
        checked = ElderCreate.model_validate({k: v for k, v in given.items() if k not in errors})
    except ValidationError as error:
        for item in error.errors(include_url=False):
            errors.setdefault(str(item["loc"][0]), _message(item))
        checked = None
    key = _resident_id_key(raw.get("id_number"))
    if number in table.numeric_ids:
        errors["id_number"] = ("stored as a number in the spreadsheet, which keeps only 15 digits: format the "
                               "column as text and type the ID again")
        key = None
    if key is not None and len(duplicates.get(key, ())) > 1:
        others = ", ".join(str(n) for n in duplicates[key] if n != number)
        errors["id_number"] = f"the same resident ID is also on row {others}: keep one row per elder"
    fields: dict[str, Any] = {}
    if checked is not None and key is not None:
        fields = {field: getattr(checked, field) for field in given}
        born = dt.date(int(key[6:10]), int(key[10:12]), int(key[12:14]))
        gender = "男" if int(key[16]) % 2 else "女"
        if fields.get("birth_date") is None:
            fields["birth_date"] = born
        elif fields["birth_date"] != born and "birth_date" not in errors:
            errors["birth_date"] = f"does not match the birth date in the resident ID ({born.isoformat()})"
        if fields.get("gender") is None:
            fields["gender"] = gender
        elif _SAME_GENDER[fields["gender"]] != gender and "gender" not in errors:
            errors["gender"] = f"does not match the resident ID, which says {gender}"
    if errors:
        return Rejection(row=number, id_number=raw.get("id_number"), full_name=raw.get("full_name"),
                         errors={field: errors[field] for field in sorted(errors, key=_field_order)},
                         values={table.headers[i]: (cells[i] if i < len(cells) else None)
                                 for i in range(len(table.headers)) if table.headers[i]})
    assert key is not None
    return RosterRow(row=number, id_number=key, fields=fields)


def _field_order(field: str) -> int:
    return ROSTER_FIELDS.index(field) if field in ROSTER_FIELDS else len(ROSTER_FIELDS)


def find_duplicates(table: RosterTable) -> dict[str, list[int]]:
    """Valid resident IDs by the rows carrying them (only those on more than one row matter)."""
    index = table.columns["id_number"]
    rows: dict[str, list[int]] = {}
    for number, cells in table.rows:
        key = None if number in table.numeric_ids else _resident_id_key(cells[index] if index < len(cells) else None)
        if key is not None:
            rows.setdefault(key, []).append(number)
    return {key: numbers for key, numbers in rows.items() if len(numbers) > 1}


@dataclasses.dataclass(slots=True)
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def _same(field: str, stored: Any, new: Any) -> bool:
    if field == "gender" and stored is not None:
        return _SAME_GENDER.get(stored, stored) == _SAME_GENDER.get(new, new)
    return bool(stored == new)


def _chunks(items: Sequence[_T], size: int = BATCH) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


_LOOKUP = (Elder.id, Elder.id_number_digest, *(getattr(Elder, field) for field in ROSTER_FIELDS))


async def _write_chunk(session: AsyncSession, creates: list[dict[str, Any]], updates: list[dict[str, Any]],
                       audit: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One batch of inserts and updates; the audit entries of the creations, which need the new ids."""
    created_audit: list[dict[str, Any]] = []
    if creates:
        # Bulk INSERT … RETURNING: one statement per batch, the new ids matched back by resident ID (its digest).
        result = await session.execute(insert(Elder).returning(Elder.id, Elder.id_number_digest), creates)
        created_audit = [{"target_id": str(elder_id), "digest": digest} for elder_id, digest in result]
    if updates:
        await session.execute(update(Elder), updates)  # bulk UPDATE by primary key
    if audit:
        await session.execute(insert(AuditEntry), audit)
    return created_audit


async def apply_rows(session: AsyncSession, rows: Sequence[RosterRow], *, write: bool, actor: Actor,
                     import_id: int) -> Counts:
    """Match the rows to elders by resident ID and create or update them (``write``), or only count (dry run)."""
    counts = Counts()
    now = utcnow()
    blank = {field: None for field in ROSTER_FIELDS}
    keyring = session_keyring(session)
    for chunk in _chunks(rows):
        # Resident IDs are sealed at rest: rows find their elders by the IDs' blind index.
        digests = {row.row: blind_index(keyring, row.id_number, ID_NUMBER_INDEX) for row in chunk}
        found = await session.execute(select(*_LOOKUP).where(Elder.id_number_digest.in_(digests.values())))
        existing = {row.id_number_digest: row for row in found}
        creates: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        audit: list[dict[str, Any]] = []
        for row in chunk:
            elder = existing.get(digests[row.row])
            if elder is None:
                counts.created += 1
                creates.append({**blank, **row.fields, "id_number_digest": digests[row.row],
                                "conditions": [], "medications": [], "allergies": [],
                                "language": "zh-CN", "extra": {}, "created_at": now, "updated_at": now})
                continue
            # Only what the row gives: an empty cell never clears what the centre knows.
            changed = {field: value for field, value in row.fields.items()
                       if not _same(field, getattr(elder, field), value)}
            if not changed:
                counts.unchanged += 1
                continue
            counts.updated += 1
            updates.append({"id": elder.id, **changed, "updated_at": now})
            audit.append(_audit_row(actor, "elder.update", str(elder.id), now,
                                    {"fields": sorted(changed), "roster_import_id": import_id, "row": row.row}))
        if write:
            new = await _write_chunk(session, creates, updates, audit)
            rows_by_digest = {digest: number for number, digest in digests.items()}
            if new:
                await session.execute(insert(AuditEntry), [
                    _audit_row(actor, "elder.create", item["target_id"], now,
                               {"roster_import_id": import_id, "row": rows_by_digest[item["digest"]]})
                    for item in new])
    return counts


def _audit_row(actor: Actor, action: str, target_id: str, now: dt.datetime, details: dict[str, Any]) -> dict[str, Any]:
    return {"at": now, "actor_id": actor.id, "actor_label": actor.label[:100], "source_ip": actor.source_ip,
            "action": action, "target_type": "elder", "target_id": target_id, "details": details}


# --- the import as a whole ----------------------------------------------------------------------------------

Progress = Callable[[int, int], Awaitable[None] | None]


@dataclasses.dataclass(frozen=True, slots=True)
class ImportResult:
    import_id: int
    status: RosterImportStatus
    dry_run: bool
    total: int
    created: int
    updated: int
    unchanged: int
    rejected: list[Rejection]
    ignored_columns: list[str]
    error: str | None = None


async def begin_import(db: Database, filename: str, data: bytes, *, dry_run: bool, actor: Actor) -> int:
    """The import's row (status running), committed at once: the id a watcher polls."""
    async with db.transaction() as session:
        row = RosterImport(filename=PurePath(filename).name[:255] or "roster", dry_run=dry_run,
                           sha256=hashlib.sha256(data).hexdigest(), started_by_id=actor.id,
                           status=RosterImportStatus.RUNNING)
        session.add(row)
        await session.flush()
        return row.id


async def _set(db: Database, import_id: int, **values: Any) -> None:
    async with db.transaction() as session:
        await session.execute(update(RosterImport).where(RosterImport.id == import_id).values(**values))


async def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        outcome = progress(done, total)
        if outcome is not None:
            await outcome


def _check_batch(table: RosterTable, batch: Iterable[tuple[int, list[str | None]]],
                 duplicates: dict[str, list[int]]) -> list[RosterRow | Rejection]:
    return [check_row(table, number, cells, duplicates) for number, cells in batch]


async def run_import(db: Database, import_id: int, filename: str, data: bytes, *, dry_run: bool, actor: Actor,
                     progress: Progress | None = None) -> ImportResult:
    """Read, check and apply the file of import ``import_id`` (made by ``begin_import``). Every outcome is recorded
    on the import row; a fatal error returns a failed result with nothing of the file committed. Cancelled (the
    server stops), it rolls back, records the failure and re-raises."""
    total = 0
    try:
        table = await asyncio.to_thread(read_roster, filename, data)
        total = len(table.rows)
        await _set(db, import_id, total_rows=total)
        await _report(progress, 0, total)
        duplicates = find_duplicates(table)
        good: list[RosterRow] = []
        rejected: list[Rejection] = []
        for batch in _chunks(table.rows):
            for outcome in await asyncio.to_thread(_check_batch, table, batch, duplicates):
                (good if isinstance(outcome, RosterRow) else rejected).append(outcome)
            done = len(good) + len(rejected)
            await _set(db, import_id, processed_rows=done)  # its own short transaction: a watcher sees it
            await _report(progress, done, total)
        async with db.transaction() as session:
            counts = await apply_rows(session, good, write=not dry_run, actor=actor, import_id=import_id)
            await _finish(session, import_id, counts, rejected, total)
            if not dry_run and (counts.created or counts.updated):
                record(session, actor, action="roster.import", target_type="roster_import", target_id=import_id,
                       details={"filename": filename, "created": counts.created, "updated": counts.updated,
                                "unchanged": counts.unchanged, "rejected": len(rejected)})
        log.info("roster.imported", import_id=import_id, dry_run=dry_run, total=total, created=counts.created,
                 updated=counts.updated, unchanged=counts.unchanged, rejected=len(rejected))
        return ImportResult(import_id, RosterImportStatus.DONE, dry_run, total, counts.created, counts.updated,
                            counts.unchanged, rejected, table.ignored)
    except asyncio.CancelledError:
        # The data transaction (if open) rolled back on the way out; record why, even as the task is cancelled.
        await asyncio.shield(_fail(db, import_id, "interrupted: the server stopped before the import finished; "
                                                  "nothing of the file was imported"))
        raise
    except RosterError as error:
        message = str(error)
    except (SQLAlchemyError, DatabaseBusy, OSError) as error:
        log.exception("roster.import_failed", import_id=import_id)
        message = f"database error, nothing of the file was imported: {type(error).__name__}: {error}"[:2000]
    except Exception as error:  # e.g. a damaged workbook openpyxl trips over mid-way: never left "running"
        log.exception("roster.import_failed", import_id=import_id)
        message = f"the file could not be read to the end, nothing was imported: {type(error).__name__}: {error}"[
            :2000]
    await _fail(db, import_id, message)
    return ImportResult(import_id, RosterImportStatus.FAILED, dry_run, total, 0, 0, 0, [], [], error=message)


async def _finish(session: AsyncSession, import_id: int, counts: Counts, rejected: list[Rejection],
                  total: int) -> None:
    await session.execute(update(RosterImport).where(RosterImport.id == import_id).values(
        status=RosterImportStatus.DONE, total_rows=total, processed_rows=total, created_count=counts.created,
        updated_count=counts.updated, unchanged_count=counts.unchanged, rejected_count=len(rejected),
        rejected_rows=[r.as_json() for r in rejected], finished_at=utcnow()))


async def _fail(db: Database, import_id: int, message: str) -> None:
    try:
        await _set(db, import_id, status=RosterImportStatus.FAILED, error=message, created_count=0,
                   updated_count=0, unchanged_count=0, finished_at=utcnow())
    except (SQLAlchemyError, DatabaseBusy, OSError):
        log.exception("roster.import_fail_unrecorded", import_id=import_id, error=message)


async def import_roster(db: Database, filename: str, data: bytes, *, dry_run: bool, actor: Actor,
                        progress: Progress | None = None) -> ImportResult:
    """``begin_import`` then ``run_import``: the whole import, as the command line runs it."""
    import_id = await begin_import(db, filename, data, dry_run=dry_run, actor=actor)
    return await run_import(db, import_id, filename, data, dry_run=dry_run, actor=actor, progress=progress)


# --- the rejected-rows report --------------------------------------------------------------------------------

ROW_HEADER = "行号 row"
ERRORS_HEADER = "错误原因 errors"


def rejected_report(rejected: Iterable[dict[str, Any]]) -> bytes:
    """The rejected rows as CSV (UTF-8 with BOM, so Excel opens the Chinese right): the row number, the row as the
    file had it (fix it there and import the report itself) and the reasons. A cell that would be a formula is
    written as text (callcenter.csvsafe)."""
    items = list(rejected)
    headers: list[str] = []
    for item in items:
        headers += [label for label in item.get("values", {}) if label not in headers]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(safe_row([ROW_HEADER, *headers, ERRORS_HEADER]))
    for item in items:
        values = item.get("values", {})
        reasons = "; ".join(f"{_label_for(field, values)}: {reason}" for field, reason in item["errors"].items())
        # The cells came from the uploaded file: none may run as a formula where the report is opened.
        writer.writerow(safe_row([item["row"], *(values.get(label) or "" for label in headers), reasons]))
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


def _label_for(field: str, values: dict[str, Any]) -> str:
    """The file's header for ``field`` when the row carries it, else the field's Chinese name."""
    for label in values:
        if _HEADER_FIELD.get(_header_key(label)) == field:
            return label
    return COLUMNS[field][0] if field in COLUMNS else field

