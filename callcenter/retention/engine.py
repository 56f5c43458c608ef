"""The retention engine (seed 5.10): recordings kept at least 3 months, call logs at least 3 years, then removed.

Rules, each run in this order:

* ``recording.expired`` — a recording past its ``expires_at`` loses its audio: the object is deleted from the store
  of the row's own ``storage_backend`` and the row gets ``deleted_at`` (the row stays: the call log still shows the
  recording existed, and when its audio went).
* ``call_log.archive`` or ``call_log.purge`` (``CC_CALL_LOG_EXPIRY``) — a *call log* is a call with its legs, its
  conference parties and its recordings' rows. Past ``CC_CALL_LOG_RETENTION_DAYS`` it is written to an archive
  file (archive) and removed from the database. Work orders are not call logs and are never removed: a closed
  order that referred to the call keeps its whole trail, loses only the link (``call_id``) and gains a trail
  event naming the call and the archive. A call stays while an open work order refers to it (as its call or on
  its trail), or while one of its recordings still has its audio.

Nothing is touched that a legal hold protects (``holds.py``), nor anything younger than its floor computed here
from the row's own times and the configured days — whatever ``expires_at`` says. Every removal is written to the
retention log (``models.py``) under its rule.

Crash safety: a recording's removal is *intent* (a ``pending`` log row, in the transaction that re-checks the
recording under a row lock) → delete the object (idempotent) → ``deleted_at`` and ``done`` in one transaction. An
archive batch is intent (``pending`` rows naming the archive file) → one transaction that re-checks, writes the
file from exactly the rows it then removes, and marks them ``done``. A purge is one transaction. A run that was
killed midway leaves ``pending`` rows that the next run finishes first (re-checking each: a recording that gained
a hold meanwhile and whose object is still there is left alone), so a rerun completes, and the unique
(target_type, target_id) of the log means nothing is removed twice. Runs exclude each other through a lock file
in the data directory (``flock``: released by the kernel when a run dies).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import fcntl
import secrets
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import Call, CallLeg
from callcenter.conferences.models import ConferenceParticipant
from callcenter.config import MIN_CALL_LOG_RETENTION_DAYS, MIN_RECORDING_RETENTION_DAYS, Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderStatus
from callcenter.orders.trail import record_event
from callcenter.recordings.models import Recording
from callcenter.retention import archive
from callcenter.retention.holds import held_call_ids, protected_recordings, store_lookup, tag_recordings
from callcenter.retention.models import RetentionLogEntry, RetentionRule, RetentionStatus

log = get_logger(__name__)

CLOSED = (WorkOrderStatus.CLOSED, WorkOrderStatus.CANCELLED)
ACTOR = "retention"  # the actor label on the order trail events retention writes


class RetentionBusy(RuntimeError):
    """Another run holds the lock."""


class NoStore(RuntimeError):
    """A recording's backend has no store configured here: its audio cannot be deleted (the run reports it)."""


@dataclasses.dataclass(frozen=True, slots=True)
class RetentionPolicy:
    recording_days: int
    call_log_days: int
    call_log_expiry: str  # "archive" | "purge"
    archive_dir: Path
    lock_file: Path

    def __post_init__(self) -> None:
        # Settings refuse these already; the engine refuses them again rather than delete too early.
        if self.recording_days < MIN_RECORDING_RETENTION_DAYS:
            raise ValueError(f"recordings are kept at least {MIN_RECORDING_RETENTION_DAYS} days")
        if self.call_log_days < MIN_CALL_LOG_RETENTION_DAYS:
            raise ValueError(f"call logs are kept at least {MIN_CALL_LOG_RETENTION_DAYS} days")
        if self.call_log_expiry not in ("archive", "purge"):
            raise ValueError(f"call log expiry is archive or purge, not {self.call_log_expiry!r}")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(recording_days=settings.recording_retention_days,
                   call_log_days=settings.call_log_retention_days, call_log_expiry=settings.call_log_expiry,
                   archive_dir=settings.data_dir / "archive", lock_file=settings.data_dir / "retention.lock")

    @property
    def call_log_rule(self) -> RetentionRule:
        return RetentionRule.CALL_LOG_ARCHIVE if self.call_log_expiry == "archive" else RetentionRule.CALL_LOG_PURGE


DUE, HELD, KEPT, GONE, FAILED = "due", "held", "kept", "gone", "failed"


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    # DUE: to be removed; HELD: a legal hold protects it; KEPT: not yet (reason); GONE: already removed;
    # FAILED: could not be removed now (logged), left for the next run
    kind: str
    reason: str | None = None


@dataclasses.dataclass
class RuleReport:
    rule: RetentionRule
    examined: int = 0  # old enough by date to be looked at
    deleted: int = 0  # recordings' audio deleted, call logs purged
    archived: int = 0  # call logs archived and removed
    held: int = 0
    kept: int = 0
    failed: int = 0  # left for the next run (logged)
    kept_because: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def count(self, verdict: Verdict) -> None:
        if verdict.kind == HELD:
            self.held += 1
        elif verdict.kind == KEPT:
            self.kept += 1
            self.kept_because[verdict.reason or "kept"] += 1
        elif verdict.kind == FAILED:
            self.failed += 1

    def removed(self, count: int) -> None:
        if self.rule is RetentionRule.CALL_LOG_ARCHIVE:
            self.archived += count
        else:
            self.deleted += count

    @property
    def accounted(self) -> int:
        return self.deleted + self.archived + self.held + self.kept + self.failed


@dataclasses.dataclass
class RetentionReport:
    run_id: str
    now: dt.datetime
    dry_run: bool
    rules: dict[RetentionRule, RuleReport] = dataclasses.field(default_factory=dict)
    archives: list[archive.ArchiveFile] = dataclasses.field(default_factory=list)
    resumed: int = 0  # removals an interrupted run had begun, finished by this one
    pending: int = 0  # dry run: removals an interrupted run left begun (the next real run finishes them)
    untagged: int = 0  # held recordings whose store could not be told so (retried next run)
    # Dry run: the recordings it would delete, so the call-log rule counts as a run would (after the audio went).
    audio_deleted: set[int] = dataclasses.field(default_factory=set, repr=False)

    def rule(self, rule: RetentionRule) -> RuleReport:
        return self.rules.setdefault(rule, RuleReport(rule))

    @property
    def failed(self) -> int:
        return sum(rule.failed for rule in self.rules.values())

    def summary(self) -> dict[str, Any]:
        return {rule.value: {"examined": r.examined, "deleted": r.deleted, "archived": r.archived, "held": r.held,
                             "kept": r.kept, "failed": r.failed, "kept_because": dict(r.kept_because)}
                for rule, r in self.rules.items()}


Progress = Callable[[RetentionRule, int, int], None]  # rule, items done, items to do


@contextlib.contextmanager
def run_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RetentionBusy(f"another retention run is in progress (lock {path})") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


class RetentionEngine:
    def __init__(self, db: Database, stores: object, policy: RetentionPolicy, *, batch_size: int = 200) -> None:
        """``stores``: the store of each backend (``RecordingStores``, a ``{backend: store}`` mapping, or one store)."""
        self._db = db
        self._stores = store_lookup(stores)
        self.policy = policy
        self._batch = batch_size

    async def run(self, now: dt.datetime | None = None, *, dry_run: bool = False,
                  progress: Progress | None = None) -> RetentionReport:
        """One pass of every rule at ``now``. A dry run changes nothing and reports what a run would do."""
        now = now or utcnow()
        report = RetentionReport(run_id=secrets.token_hex(6), now=now, dry_run=dry_run)
        report.rule(RetentionRule.RECORDING_EXPIRED)
        report.rule(self.policy.call_log_rule)
        with contextlib.nullcontext() if dry_run else run_lock(self.policy.lock_file):
            log.info("retention.started", run_id=report.run_id, now=now.isoformat(), dry_run=dry_run)
            if dry_run:
                async with self._db.transaction() as session:
                    pending = select(func.count()).select_from(RetentionLogEntry).where(
                        RetentionLogEntry.status == RetentionStatus.PENDING)
                    report.pending = int(await session.scalar(pending) or 0)
            else:
                await self._resume(now, report)
            await self._expire_recordings(now, report, progress)
            await self._expire_call_logs(now, report, progress)
            if not dry_run:
                async with self._db.transaction() as session:
                    held = await protected_recordings(session)
                report.untagged = await tag_recordings(self._stores, held, {recording.id for recording in held})
        log.info("retention.finished", run_id=report.run_id, dry_run=dry_run, resumed=report.resumed,
                 archives=[str(file.path) for file in report.archives], **report.summary())
        return report

    # -- recordings -------------------------------------------------------------------------------------------

    async def _classify_recordings(self, session: AsyncSession, ids: Sequence[int], now: dt.datetime, *,
                                   lock: bool = False) -> dict[int, Verdict]:
        statement = select(Recording).where(Recording.id.in_(ids))
        rows = (await session.scalars(statement.with_for_update() if lock else statement)).all()
        held = await held_call_ids(session, {row.call_id for row in rows if row.call_id is not None})
        days = self.policy.recording_days
        floor = now - dt.timedelta(days=days)
        verdicts = dict.fromkeys(ids, Verdict(GONE))
        for row in rows:
            if row.deleted_at is not None:
                continue
            if row.expires_at > now:
                verdicts[row.id] = Verdict(KEPT, "not expired")
            elif row.created_at > floor:
                verdicts[row.id] = Verdict(KEPT, f"younger than the {days}-day floor")
            elif row.legal_hold or row.call_id in held:
                verdicts[row.id] = Verdict(HELD)
            else:
                verdicts[row.id] = Verdict(DUE)
        return verdicts

    async def _expire_recordings(self, now: dt.datetime, report: RetentionReport, progress: Progress | None) -> None:
        counts = report.rule(RetentionRule.RECORDING_EXPIRED)
        async with self._db.transaction() as session:
            ids = list((await session.scalars(select(Recording.id).where(
                Recording.deleted_at.is_(None), Recording.expires_at <= now,
                Recording.id.not_in(_pending("recording"))).order_by(Recording.id))).all())
        counts.examined += len(ids)
        done = 0
        for batch in _chunks(ids, self._batch):
            async with self._db.transaction() as session:
                verdicts = await self._classify_recordings(session, batch, now)
            for recording_id in batch:
                verdict = verdicts[recording_id]
                if verdict.kind == DUE and not report.dry_run:
                    verdict = await self._delete_recording(recording_id, now, report)
                if verdict.kind == DUE:
                    counts.deleted += 1
                    report.audio_deleted.add(recording_id)
                elif verdict.kind != GONE:
                    counts.count(verdict)
                done += 1
                if progress is not None:
                    progress(RetentionRule.RECORDING_EXPIRED, done, len(ids))

    async def _delete_recording(self, recording_id: int, now: dt.datetime, report: RetentionReport) -> Verdict:
        try:
            async with self._db.transaction() as session:
                verdict = (await self._classify_recordings(session, [recording_id], now, lock=True))[recording_id]
                if verdict.kind != DUE:
                    return verdict
                recording = await session.get(Recording, recording_id)
                assert recording is not None
                store = self._store(recording.storage_backend)
                entry = RetentionLogEntry(run_id=report.run_id, rule=RetentionRule.RECORDING_EXPIRED,
                                          target_type="recording", target_id=recording.id,
                                          status=RetentionStatus.PENDING, started_at=now,
                                          details=_recording_details(recording))
                session.add(entry)
                await session.flush()
                entry_id, key = entry.id, recording.storage_key
            await store.delete(key)
            await self._finish_recording(entry_id, now)
        except Exception as error:
            _failed("recording", recording_id, error)
            return Verdict(FAILED)
        return verdict

    async def _finish_recording(self, entry_id: int, now: dt.datetime, note: str | None = None) -> None:
        async with self._db.transaction() as session:
            entry = await session.get(RetentionLogEntry, entry_id, with_for_update=True)
            if entry is None or entry.status is RetentionStatus.DONE:
                return
            await session.execute(update(Recording).where(Recording.id == entry.target_id,
                                                          Recording.deleted_at.is_(None)).values(deleted_at=now))
            entry.status = RetentionStatus.DONE
            entry.finished_at = now
            if note:
                entry.details = {**entry.details, "note": note}

    def _store(self, backend: str) -> Any:
        store = self._stores.get(backend)
        if store is None:
            raise NoStore(f"no recording store for backend {backend!r} is configured")
        return store

    # -- call logs --------------------------------------------------------------------------------------------

    async def _classify_calls(self, session: AsyncSession, ids: Sequence[int], now: dt.datetime, *,
                              lock: bool = False, audio_deleted: Collection[int] = ()) -> dict[int, Verdict]:
        if lock:  # the rows a hold or an order change would touch: a decision is never based on a stale read
            await session.execute(select(WorkOrder.id).where(or_(
                WorkOrder.call_id.in_(ids),
                WorkOrder.id.in_(select(WorkOrderEvent.work_order_id).where(WorkOrderEvent.call_id.in_(ids)))))
                .with_for_update())
        statement = select(Call).where(Call.id.in_(ids))
        calls = {call.id: call for call in (await session.scalars(
            statement.with_for_update() if lock else statement)).all()}
        # The floor counts from the call's last sign of life: its end, any leg's or conference party's times.
        last = {call.id: max(t for t in (call.started_at, call.answered_at, call.ended_at) if t is not None)
                for call in calls.values()}
        for model, columns in ((CallLeg, (CallLeg.started_at, CallLeg.answered_at, CallLeg.ended_at)),
                               (ConferenceParticipant, (ConferenceParticipant.created_at,
                                                        ConferenceParticipant.joined_at,
                                                        ConferenceParticipant.left_at))):
            rows = await session.execute(select(model.call_id, *(func.max(column) for column in columns))
                                         .where(model.call_id.in_(ids)).group_by(model.call_id))
            for call_id, *times in rows.all():
                last[call_id] = max([last[call_id], *(t for t in times if t is not None)])
        held = await held_call_ids(session, ids)
        open_orders = set((await session.scalars(select(WorkOrder.call_id).where(
            WorkOrder.call_id.in_(ids), WorkOrder.status.not_in(CLOSED)))).all())
        open_orders.update((await session.scalars(select(WorkOrderEvent.call_id).join(
            WorkOrder, WorkOrder.id == WorkOrderEvent.work_order_id).where(
            WorkOrderEvent.call_id.in_(ids), WorkOrder.status.not_in(CLOSED)))).all())
        stored = set((await session.scalars(select(Recording.call_id).where(
            Recording.call_id.in_(ids), Recording.deleted_at.is_(None),
            Recording.id.not_in(audio_deleted)))).all())
        days = self.policy.call_log_days
        floor = now - dt.timedelta(days=days)
        verdicts = {}
        for call_id in ids:
            if call_id not in calls:
                verdicts[call_id] = Verdict(GONE)
            elif last[call_id] > floor:
                verdicts[call_id] = Verdict(KEPT, f"younger than the {days}-day floor")
            elif call_id in held:
                verdicts[call_id] = Verdict(HELD)
            elif call_id in open_orders:
                verdicts[call_id] = Verdict(KEPT, "referred to by an open work order")
            elif call_id in stored:
                verdicts[call_id] = Verdict(KEPT, "a recording's audio is still stored")
            else:
                verdicts[call_id] = Verdict(DUE)
        return verdicts

    async def _expire_call_logs(self, now: dt.datetime, report: RetentionReport, progress: Progress | None) -> None:
        rule = self.policy.call_log_rule
        counts = report.rule(rule)
        floor = now - dt.timedelta(days=self.policy.call_log_days)
        async with self._db.transaction() as session:
            # A call that started after the floor cannot have ended before it: only older ones are looked at.
            ids = list((await session.scalars(select(Call.id).where(Call.started_at < floor,
                                                                    Call.id.not_in(_pending("call")))
                                              .order_by(Call.id))).all())
        counts.examined += len(ids)
        done = 0
        for number, batch in enumerate(_chunks(ids, self._batch)):
            accounted = counts.accounted
            try:
                if report.dry_run:
                    async with self._db.transaction() as session:
                        verdicts = await self._classify_calls(session, batch, now,
                                                              audio_deleted=report.audio_deleted)
                    counts.removed(len(self._count_others(counts, verdicts)))
                elif rule is RetentionRule.CALL_LOG_PURGE:
                    await self._purge(batch, now, report)
                else:
                    names = await self._mark_archive(batch, now, report, number)
                    if names:
                        await self._complete_archive(names, now, report)
            except Exception as error:
                _failed("call log batch", batch[0], error, calls=len(batch))
                counts.failed += len(batch) - (counts.accounted - accounted)
            done += len(batch)
            if progress is not None:
                progress(rule, done, len(ids))

    async def _purge(self, ids: list[int], now: dt.datetime, report: RetentionReport) -> None:
        async with self._db.transaction() as session:
            due = await self._log_due_calls(session, ids, now, report, RetentionRule.CALL_LOG_PURGE)
            await _remove_call_logs(session, due, RetentionRule.CALL_LOG_PURGE, now, archive_name=None)
        report.rule(RetentionRule.CALL_LOG_PURGE).removed(len(due))

    async def _mark_archive(self, ids: list[int], now: dt.datetime, report: RetentionReport,
                            number: int) -> dict[str, list[int]]:
        """Intent: the calls of this batch that are due, with the archive file they are going to."""
        name = archive.archive_name(now, report.run_id, number)
        async with self._db.transaction() as session:
            due = await self._log_due_calls(session, ids, now, report, RetentionRule.CALL_LOG_ARCHIVE, archive=name)
        return {name: due} if due else {}

    async def _log_due_calls(self, session: AsyncSession, ids: list[int], now: dt.datetime, report: RetentionReport,
                             rule: RetentionRule, *, archive: str | None = None) -> list[int]:
        """Decide under lock, count what stays, and log the calls that go: done for a purge (it commits with the
        removal), pending for an archive (the file is still to be written)."""
        verdicts = await self._classify_calls(session, ids, now, lock=True)
        due = self._count_others(report.rule(rule), verdicts)
        summaries = await _call_summaries(session, due)
        pending = archive is not None
        session.add_all(RetentionLogEntry(
            run_id=report.run_id, rule=rule, target_type="call", target_id=call_id,
            status=RetentionStatus.PENDING if pending else RetentionStatus.DONE, started_at=now,
            finished_at=None if pending else now,
            details={**summaries[call_id], **({"archive": archive} if pending else {})}) for call_id in due)
        return due

    async def _complete_archive(self, batches: dict[str, list[int]], now: dt.datetime, report: RetentionReport,
                                *, withdrawn_counted_later: bool = False) -> None:
        """Write each file from exactly the rows it then removes, in one transaction that marks them done.

        A rerun after a crash rewrites the same file name, so a call is never in two archive files."""
        counts = report.rule(RetentionRule.CALL_LOG_ARCHIVE)
        for name, ids in batches.items():
            try:
                await self._complete_archive_file(name, ids, now, report, withdrawn_counted_later)
            except Exception as error:
                _failed("archive", ids[0], error, file=name, calls=len(ids))
                counts.failed += len(ids)

    async def _complete_archive_file(self, name: str, ids: list[int], now: dt.datetime, report: RetentionReport,
                                     withdrawn_counted_later: bool) -> None:
        counts = report.rule(RetentionRule.CALL_LOG_ARCHIVE)
        async with self._db.transaction() as session:
            entries = {entry.target_id: entry for entry in (await session.scalars(
                select(RetentionLogEntry).where(RetentionLogEntry.target_type == "call",
                                                RetentionLogEntry.target_id.in_(ids),
                                                RetentionLogEntry.status == RetentionStatus.PENDING)
                .with_for_update())).all()}
            verdicts = await self._classify_calls(session, list(entries), now, lock=True)
            due = [call_id for call_id, verdict in verdicts.items() if verdict.kind == DUE]
            for call_id, verdict in verdicts.items():
                if verdict.kind in (HELD, KEPT):  # a hold or an order since the intent: the call stays
                    if not withdrawn_counted_later:
                        counts.count(verdict)
                    await session.delete(entries[call_id])
            file = None
            if due:
                lines = await archive.call_log_lines(session, due, rule=RetentionRule.CALL_LOG_ARCHIVE.value,
                                                     archived_at=now)
                file = await asyncio.to_thread(archive.write_archive, self.policy.archive_dir / name, lines)
                await _remove_call_logs(session, due, RetentionRule.CALL_LOG_ARCHIVE, now, archive_name=name)
            for call_id, verdict in verdicts.items():
                if verdict.kind in (DUE, GONE):
                    entry = entries[call_id]
                    entry.status = RetentionStatus.DONE
                    entry.finished_at = now
                    if file is not None:
                        entry.details = {**entry.details, "archive_sha256": file.sha256}
        counts.archived += len(due)
        if file is not None:
            report.archives.append(file)

    @staticmethod
    def _count_others(counts: RuleReport, verdicts: dict[int, Verdict]) -> list[int]:
        for verdict in verdicts.values():
            counts.count(verdict)
        return [call_id for call_id, verdict in verdicts.items() if verdict.kind == DUE]

    # -- an interrupted run's removals ------------------------------------------------------------------------

    async def _resume(self, now: dt.datetime, report: RetentionReport) -> None:
        async with self._db.transaction() as session:
            pending = list((await session.scalars(select(RetentionLogEntry).where(
                RetentionLogEntry.status == RetentionStatus.PENDING).order_by(RetentionLogEntry.id))).all())
        archives: dict[str, list[int]] = {}
        for entry in pending:
            if entry.target_type == "call":
                archives.setdefault(str(entry.details.get("archive")), []).append(entry.target_id)
                continue
            counts = report.rule(RetentionRule.RECORDING_EXPIRED)
            try:
                verdict = await self._resume_recording(entry, now)
            except Exception as error:
                _failed("recording", entry.target_id, error, resumed=True)
                verdict = Verdict(FAILED)
            if verdict.kind in (DUE, GONE):
                counts.deleted += 1
                report.resumed += 1
            elif verdict.kind == FAILED:
                counts.failed += 1
            # held or kept meanwhile: its intent is withdrawn and this run's pass counts it
        if archives:
            counts = report.rule(RetentionRule.CALL_LOG_ARCHIVE)
            before = counts.archived
            await self._complete_archive(archives, now, report, withdrawn_counted_later=True)
            report.resumed += counts.archived - before
        if pending:
            log.info("retention.resumed", run_id=report.run_id, pending=len(pending), finished=report.resumed)

    async def _resume_recording(self, entry: RetentionLogEntry, now: dt.datetime) -> Verdict:
        async with self._db.transaction() as session:
            verdict = (await self._classify_recordings(session, [entry.target_id], now, lock=True))[entry.target_id]
        key = entry.details["storage_key"]
        if verdict.kind == DUE:
            await self._store(entry.details["backend"]).delete(key)
            await self._finish_recording(entry.id, now)
        elif verdict.kind == GONE:
            await self._finish_recording(entry.id, now)
        elif await self._store(entry.details["backend"]).size(key) is None:
            # Held (or kept) since the interrupted run began, but that run had already deleted the object.
            await self._finish_recording(entry.id, now, note=f"the object was already deleted; now {verdict.kind}")
            return Verdict(DUE)
        else:
            async with self._db.transaction() as session:
                await session.execute(delete(RetentionLogEntry).where(
                    RetentionLogEntry.id == entry.id, RetentionLogEntry.status == RetentionStatus.PENDING))
            log.info("retention.intent_cancelled", recording_id=entry.target_id, verdict=verdict.kind,
                     reason=verdict.reason)
        return verdict


def _pending(target_type: str) -> Any:
    """The targets an interrupted run began removing: the resume finishes them (or it failed and the next will)."""
    return select(RetentionLogEntry.target_id).where(RetentionLogEntry.target_type == target_type,
                                                     RetentionLogEntry.status == RetentionStatus.PENDING)


def _failed(what: str, target_id: int, error: Exception, **extra: object) -> None:
    log.error("retention.failed", what=what, target_id=target_id, error=str(error)[-500:],
              error_type=type(error).__name__, **extra)


def _recording_details(recording: Recording) -> dict[str, Any]:
    return {"serial_number": recording.serial_number, "call_id": recording.call_id,
            "backend": recording.storage_backend, "storage_key": recording.storage_key,
            "size_bytes": recording.size_bytes, "sha256": recording.sha256,
            "created_at": recording.created_at.isoformat(), "expires_at": recording.expires_at.isoformat()}


async def _call_summaries(session: AsyncSession, ids: list[int]) -> dict[int, dict[str, Any]]:
    """What the retention log keeps of a removed call log: enough to find it in an archive and on order trails,
    no phone numbers or names (the log outlives the call log it describes)."""
    if not ids:
        return {}
    calls = (await session.scalars(select(Call).where(Call.id.in_(ids)))).all()
    serials: dict[int, list[str]] = {}
    for call_id, serial in (await session.execute(select(Recording.call_id, Recording.serial_number)
                                                  .where(Recording.call_id.in_(ids)))).all():
        serials.setdefault(call_id, []).append(serial)
    return {call.id: {"linkedid": call.linkedid, "kind": call.kind.value, "disposition": call.disposition.value,
                      "started_at": call.started_at.isoformat(),
                      "ended_at": call.ended_at.isoformat() if call.ended_at else None,
                      "recordings": sorted(serials.get(call.id, []))} for call in calls}


async def _remove_call_logs(session: AsyncSession, ids: list[int], rule: RetentionRule, now: dt.datetime, *,
                            archive_name: str | None) -> None:
    """Remove these calls' logs without breaking a foreign key or an order's trail."""
    if not ids:
        return
    calls = {call.id: call for call in (await session.scalars(select(Call).where(Call.id.in_(ids)))).all()}
    # Every (order, call) an order refers to: as the call it was raised from, or on its trail.
    mentions = set((await session.execute(select(WorkOrderEvent.work_order_id, WorkOrderEvent.call_id)
                                          .where(WorkOrderEvent.call_id.in_(ids)))).all())
    for order in (await session.scalars(select(WorkOrder).where(WorkOrder.call_id.in_(ids)))).all():
        mentions.add((order.id, order.call_id))
        order.call_id = None  # closed (an open order keeps its call): the order and its trail stay
    for order_id, call_id in sorted(mentions):
        call = calls[call_id]
        record_event(session, order_id, rule.value.replace(".", "_"), at=now, actor_label=ACTOR,
                     details={"call_id": call_id, "linkedid": call.linkedid,
                              "started_at": call.started_at.isoformat(), "archive": archive_name})
    await session.flush()
    await session.execute(update(WorkOrderEvent).where(WorkOrderEvent.call_id.in_(ids)).values(call_id=None)
                          .execution_options(synchronize_session=False))
    for model in (Recording, ConferenceParticipant, CallLeg):
        await session.execute(delete(model).where(model.call_id.in_(ids)).execution_options(synchronize_session=False))
    await session.execute(delete(Call).where(Call.id.in_(ids)).execution_options(synchronize_session=False))
    for call in calls.values():
        session.expunge(call)
