"""The audit log's hash chain (issue 14): tamper-evident, and checked by ``callcenter audit verify``.

Every entry is sealed with a position in the chain (``seq``, 1, 2, 3, …) and ``entry_hash`` = SHA-256 of the
previous entry's hash and the entry's own canonical content. Editing an entry, its hash, or deleting one breaks
the chain at that place: ``verify`` walks it in order and names the first entry that does not match.

Entries are written by many transactions at once (a log-in, an order step, an SOS intake), and sealing them there
would make every audited write wait for the chain's head — the SOS path among them. So writers only insert, and
the ``AuditSealer`` job seals what was committed, in id order, a batch a round, every ``CC_AUDIT_SEAL_SECONDS``:
an entry is unsealed for a few seconds at most, and ``verify`` reports how many are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.audit.models import AuditEntry
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.periodic import PeriodicJob

log = get_logger(__name__)

GENESIS = "0" * 64  # the "previous hash" of the first entry
SEAL_BATCH = 500
VERIFY_BATCH = 2000


def canonical(entry: AuditEntry) -> bytes:
    """The entry's content as the hash covers it: every column but the chain's own, in a fixed form."""
    content: dict[str, Any] = {
        "id": entry.id, "at": entry.at.isoformat(timespec="microseconds"), "actor_id": entry.actor_id,
        "actor_label": entry.actor_label, "action": entry.action, "target_type": entry.target_type,
        "target_id": entry.target_id, "source_ip": entry.source_ip, "details": entry.details,
    }
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def link(previous_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256(previous_hash.encode("ascii") + b"\n" + canonical(entry)).hexdigest()


async def _head(session: AsyncSession) -> tuple[int, str]:
    """The last sealed position and its hash (0 and the genesis hash for an empty chain)."""
    row = (await session.execute(select(AuditEntry.seq, AuditEntry.entry_hash)
                                 .where(AuditEntry.seq.is_not(None)).order_by(AuditEntry.seq.desc()).limit(1))).first()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


@dataclasses.dataclass(frozen=True, slots=True)
class Sealed:
    entries: int  # sealed by this batch
    head_seq: int  # the chain's last position and hash afterwards
    head_hash: str


async def seal_batch(db: Database, batch: int = SEAL_BATCH) -> Sealed:
    """Seal up to ``batch`` committed, unsealed entries, oldest id first. Nothing to seal costs one read, never a
    write turn (SQLite has one writer: the SOS path must not queue behind an idle sealer)."""
    async with db.transaction(read_only=True) as session:
        if await session.scalar(select(AuditEntry.id).where(AuditEntry.seq.is_(None)).limit(1)) is None:
            return Sealed(0, 0, "")
    async with db.transaction() as session:
        seq, previous = await _head(session)
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.seq.is_(None))
                                         .order_by(AuditEntry.id).limit(batch))).all()
        for entry in entries:
            seq += 1
            previous = link(previous, entry)
            await session.execute(update(AuditEntry).where(AuditEntry.id == entry.id)
                                  .values(seq=seq, entry_hash=previous))
        return Sealed(len(entries), seq, previous)


class AuditSealer:
    """The job that seals the audit log: one per platform (the chain has one head)."""

    def __init__(self, db: Database, interval_seconds: float) -> None:
        self._db = db
        self._job = PeriodicJob("audit-seal", self._round, first_run_seconds=0, interval_seconds=interval_seconds)

    async def start(self) -> None:
        await self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def _round(self) -> None:
        sealed = await seal_batch(self._db)
        if sealed.entries == SEAL_BATCH:  # a backlog (the first start on an old database): the next batch at once
            self._job.run_soon()
        if sealed.entries:
            # The head, in the log too: a copy outside the database, against truncating the chain's end.
            log.info("audit.sealed", entries=sealed.entries, head_seq=sealed.head_seq, head_hash=sealed.head_hash)


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    sealed: int  # entries checked in the chain
    unsealed: int  # committed, not sealed yet (the sealer's next rounds)
    broken_id: int | None = None  # the first entry that does not match, by its id
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.reason is None

    def describe(self) -> str:
        if self.intact:
            return (f"audit log intact: {self.sealed} entries in the chain"
                    + (f", {self.unsealed} newer ones not sealed yet" if self.unsealed else ""))
        return f"audit log BROKEN at entry id={self.broken_id} (chain position {self.broken_seq}): {self.reason}"


async def _sealed(db: Database) -> AsyncIterator[AuditEntry]:
    after = 0
    while True:
        async with db.transaction(read_only=True) as session:
            entries = (await session.scalars(select(AuditEntry).where(AuditEntry.seq > after)
                                             .order_by(AuditEntry.seq).limit(VERIFY_BATCH))).all()
        if not entries:
            return
        for entry in entries:
            yield entry
        after = int(entries[-1].seq or after)


async def verify(db: Database) -> Verdict:
    """Walk the chain from its start; the first entry whose position, predecessor or content does not match."""
    previous, expected_seq = GENESIS, 1
    async for entry in _sealed(db):
        if entry.seq != expected_seq:
            return Verdict(expected_seq - 1, 0, entry.id, entry.seq,
                           f"chain position {expected_seq} is missing (an entry was deleted before this one)")
        if link(previous, entry) != entry.entry_hash:
            return Verdict(expected_seq - 1, 0, entry.id, entry.seq,
                           "its content or hash does not match the chain (edited, or an entry before it deleted)")
        previous, expected_seq = entry.entry_hash or "", expected_seq + 1
    async with db.transaction(read_only=True) as session:
        unsealed = int(await session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.seq.is_(None))) or 0)
    return Verdict(expected_seq - 1, unsealed)
