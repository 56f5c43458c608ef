"""The notification service: SMS sent so that none is lost, tried again with backoff, followed to its receipt, and
reported on the work order when it cannot be delivered.

- ``await queue(session, …)`` renders the template (a missing or unknown value, a text longer than one SMS or a bad
  number is refused, naming the field, before anything is written) and adds the row to the caller's transaction;
  ``send(…)`` does that in a transaction of its own and commits before it returns. Either way the sender job
  (``run_once``, every CC_SMS_ROUND_SECONDS and at once after ``send`` or ``wake``) then submits it: a process that
  dies before the submission leaves the row queued, and the next process sends it.
- An attempt is counted and its next time set (CC_SMS_RETRY_SECONDS, doubling) before the channel is called: a
  crash mid-attempt costs a backoff, and may send the message twice (an SMS twice rather than never). A refusal
  leaves the row queued for its next attempt; after CC_SMS_MAX_ATTEMPTS, or a refusal for good, it is failed.
- The SMSC's receipts move a submitted message to delivered, failed (UNDELIV, REJECTD, DELETED, UNKNOWN) or expired
  (EXPIRED). A channel that reports receipts and sends none within CC_SMS_RECEIPT_HOURS has the message expired.
- Every failure — the last attempt refused, a receipt saying undelivered or expired, no receipt, or SMS off — of a
  message with a work order is put on the order's trail (``sms_failed``, with the reason and the number masked),
  in the transaction that fails the message.
- With CC_SMS_CHANNEL=off (the default) a message is still rendered and checked, then stored as failed with the
  reason "SMS is off" and reported like any failure: the operator sees on the order that the family was not
  texted, and why, instead of a cascade that stops on an error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Invalid
from callcenter.contract import Check, ServiceKey
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.notifications.channels import Channel, Channels, Outgoing, Receipt, Submitted
from callcenter.notifications.models import FINAL_STATES, MessageState, Purpose, SmsMessage
from callcenter.notifications.templates import DEFAULT_LANGUAGE, Templates
from callcenter.orders import trail
from callcenter.periodic import PeriodicJob

log = get_logger(__name__)

SMS_FAILED = "sms_failed"  # the trail's action for a message to the order's people that could not be delivered
OFF = "off"
OFF_REASON = "SMS is off (CC_SMS_CHANNEL=off)"
BATCH = 50  # messages one round submits at most; the next round follows at once when there were more
MAX_BACKOFF = dt.timedelta(hours=1)
_NUMBER = re.compile(r"\+?[0-9]{5,20}")
# Receipt status words → the message's state; any other word (ENROUTE, ACCEPTD) leaves it submitted.
_RECEIPT_STATES = {"DELIVRD": MessageState.DELIVERED, "EXPIRED": MessageState.EXPIRED,
                   "UNDELIV": MessageState.FAILED, "REJECTD": MessageState.FAILED,
                   "DELETED": MessageState.FAILED, "UNKNOWN": MessageState.FAILED}


def masked_number(number: str) -> str:
    """138****5678: enough for staff to tell two relatives apart on the trail."""
    return number[:3] + "*" * max(0, len(number) - 7) + number[-4:] if len(number) > 7 else "*" * len(number)


def provider_id_forms(provider_id: str) -> set[str]:
    """The ways an SMSC may write one id: some answer submit_sm in hex and put it in the receipt in decimal, or
    the other way round (SMPP 3.4 leaves it open)."""
    forms = {provider_id}
    if provider_id.isdigit() and len(provider_id) <= 20:
        forms.update({format(int(provider_id), "x"), format(int(provider_id), "X")})
    if re.fullmatch(r"[0-9A-Fa-f]{1,16}", provider_id):
        forms.add(str(int(provider_id, 16)))
    return forms


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    """How hard the service tries: attempts, the first retry's delay (doubling, at most an hour), how long a
    receipt is waited for, how often the sender looks for due messages."""

    max_attempts: int = 3
    retry: dt.timedelta = dt.timedelta(seconds=60)
    receipt_wait: dt.timedelta = dt.timedelta(hours=72)
    round_seconds: float = 5.0

    def backoff(self, attempts: int) -> dt.timedelta:
        return min(MAX_BACKOFF, self.retry * 2 ** max(0, attempts - 1))


class NotificationService:
    """SMS on the channel CC_SMS_CHANNEL names (``channels``; None: off). Started and stopped by the platform as a
    job; provided to other domains as ``SMS``."""

    def __init__(self, db: Database, templates: Templates, *, channel: str = OFF, signature: str = "",
                 policy: Policy | None = None, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.templates = templates
        self.channels = Channels()
        self.channel_name = channel
        self._prefix = f"【{signature}】" if signature else ""
        self.policy = policy or Policy()
        self._clock = clock  # injectable: tests move time instead of waiting for it
        self._job = PeriodicJob("sms-sender", self._round, first_run_seconds=1.0,
                                interval_seconds=self.policy.round_seconds)
        self.counters = {"submitted": 0, "refused": 0, "failed": 0, "delivered": 0, "receipts_unmatched": 0}
        self._last_round_error: str | None = None

    @property
    def channel(self) -> Channel | None:
        return None if self.channel_name == OFF else self.channels.get(self.channel_name)

    # -- the platform's job -------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.channel_name != OFF and self.channel is None:
            raise RuntimeError(f"CC_SMS_CHANNEL={self.channel_name}, but no such SMS channel is registered")
        if self.channel is not None:
            await self.channel.start()
            await self._job.start()

    async def stop(self) -> None:
        await self._job.stop()
        if self.channel is not None:
            await self.channel.stop()

    def wake(self) -> None:
        """Submit now what is due (after a transaction that queued messages committed)."""
        self._job.run_soon()

    # -- sending ------------------------------------------------------------------------------------------------
    async def queue(self, session: AsyncSession, *, to: str, template: str, values: Mapping[str, object],
              purpose: Purpose, language: str = DEFAULT_LANGUAGE, elder_id: int | None = None,
              alarm_id: int | None = None, work_order_id: int | None = None) -> SmsMessage:
        """Add one SMS to the caller's transaction (flushed; call ``wake`` after the commit).
        Refused with ``Invalid`` naming the field, before anything is added, for a bad number (``to``), an unknown
        template (``template``), a missing or unknown value (``values.<name>``) or a text over one SMS (``body``).
        """
        number = to.strip().replace(" ", "").replace("-", "")
        if not _NUMBER.fullmatch(number):
            raise Invalid("a phone number is 5 to 20 digits, optionally after +", field="to")
        rendered = self.templates.render(template, values, language, prefix=self._prefix)
        now = self._clock()
        row = SmsMessage(channel=self.channel_name, purpose=purpose, template=template, language=language,
                         recipient=number, body=rendered.body, params=rendered.values, elder_id=elder_id,
                         alarm_id=alarm_id, work_order_id=work_order_id, state=MessageState.QUEUED, attempts=0,
                         next_attempt_at=now, created_at=now, updated_at=now)
        session.add(row)
        await session.flush()
        if self.channel_name == OFF:
            self._fail(session, row, OFF_REASON, now)
        return row

    async def send(self, *, to: str, template: str, values: Mapping[str, object], purpose: Purpose,
                   language: str = DEFAULT_LANGUAGE, elder_id: int | None = None, alarm_id: int | None = None,
                   work_order_id: int | None = None) -> SmsMessage:
        """``queue`` in a transaction of its own: the message is committed when this returns, and sent soon."""
        async with self.db.transaction() as session:
            row = await self.queue(session, to=to, template=template, values=values, purpose=purpose,
                                   language=language, elder_id=elder_id, alarm_id=alarm_id,
                                   work_order_id=work_order_id)
        log.info("sms.queued", sms_id=row.id, purpose=row.purpose.value, template=template, state=row.state.value)
        self.wake()
        return row

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """One round: every due message of the active channel submitted (at most ``BATCH``), then messages
        waiting too long for a receipt expired. Returns the number of attempts made."""
        channel = self.channel
        if channel is None:
            return 0
        now = now or self._clock()
        async with self.db.transaction(read_only=True) as session:
            due = list((await session.scalars(
                select(SmsMessage.id).where(SmsMessage.channel == channel.name,
                                            SmsMessage.state == MessageState.QUEUED,
                                            SmsMessage.next_attempt_at <= now)
                .order_by(SmsMessage.next_attempt_at, SmsMessage.id).limit(BATCH))).all())
        attempts = 0
        for message_id in due:
            attempts += await self._attempt(channel, message_id, now)
        if channel.receipts:
            await self._expire(channel, now)
        if len(due) == BATCH:
            self.wake()
        return attempts

    async def _round(self) -> None:
        try:
            await self.run_once()
            self._last_round_error = None
        except Exception as error:
            self._last_round_error = type(error).__name__
            raise

    async def _attempt(self, channel: Channel, message_id: int, now: dt.datetime) -> int:
        async with self.db.transaction() as session:
            row = await session.get(SmsMessage, message_id)
            if row is None or row.state is not MessageState.QUEUED or (row.next_attempt_at or now) > now:
                return 0
            row.attempts += 1
            row.next_attempt_at = now + self.policy.backoff(row.attempts)
            outgoing = Outgoing(row.id, row.recipient, row.body, row.template, dict(row.params or {}))
        result = await channel.submit(outgoing)
        async with self.db.transaction() as session:
            row = await session.get(SmsMessage, message_id)
            if row is None:
                return 1
            if isinstance(result, Submitted):
                self._submitted(row, result.provider_message_id, self._clock())
                log.info("sms.submitted", sms_id=row.id, channel=channel.name, attempt=row.attempts)
                return 1
            self.counters["refused"] += 1
            log.warning("sms.attempt_refused", sms_id=row.id, channel=channel.name, attempt=row.attempts,
                        reason=result.reason, permanent=result.permanent)
            if row.state is not MessageState.QUEUED:
                return 1
            row.last_error = result.reason[:300]
            if result.permanent or row.attempts >= self.policy.max_attempts:
                self._fail(session, row, result.reason, self._clock())
        return 1

    def _submitted(self, row: SmsMessage, provider_id: str, now: dt.datetime) -> None:
        if row.provider_message_id is None:
            row.provider_message_id = provider_id
        if row.state is MessageState.QUEUED:
            row.state = MessageState.SUBMITTED
            row.submitted_at = now
            row.next_attempt_at = None
            row.last_error = None
            self.counters["submitted"] += 1

    async def _expire(self, channel: Channel, now: dt.datetime) -> None:
        cutoff = now - self.policy.receipt_wait
        async with self.db.transaction(read_only=True) as session:
            stale = list((await session.scalars(
                select(SmsMessage.id).where(SmsMessage.channel == channel.name,
                                            SmsMessage.state == MessageState.SUBMITTED,
                                            SmsMessage.submitted_at < cutoff).limit(BATCH))).all())
        if not stale:
            return
        hours = self.policy.receipt_wait.total_seconds() / 3600
        async with self.db.transaction() as session:
            for message_id in stale:
                row = await session.get(SmsMessage, message_id)
                if row is not None and row.state is MessageState.SUBMITTED:
                    self._fail(session, row, f"no delivery receipt within {hours:g} h", now,
                               state=MessageState.EXPIRED)

    # -- what channels report -------------------------------------------------------------------------------------
    async def accepted(self, message_id: int, provider_id: str) -> None:
        """The channel's peer took message ``message_id`` under ``provider_id`` (``channels.AcceptSink``)."""
        async with self.db.transaction() as session:
            row = await session.get(SmsMessage, message_id)
            if row is not None:
                self._submitted(row, provider_id, self._clock())

    async def receipt(self, channel: str, receipt: Receipt) -> None:
        """A delivery receipt from ``channel`` (``channels.ReceiptSink``): found by the provider's id, also long
        after the submission and across restarts; a receipt for no known message (or for two, read in the other
        notation) is logged and dropped."""
        async with self.db.transaction() as session:
            row = await _by_provider_id(session, channel, receipt.provider_message_id)
            if row is None:
                self.counters["receipts_unmatched"] += 1
                log.warning("sms.receipt_unmatched", channel=channel, provider_message_id=receipt.provider_message_id,
                            status=receipt.status)
                return
            if row.state in FINAL_STATES:
                return  # a receipt sent again (the SMSC did not see our answer): already taken
            row.receipt_status = receipt.status
            row.receipt_error = receipt.error or None
            row.receipt_at = receipt.done_at or self._clock()
            state = _RECEIPT_STATES.get(receipt.status)
            if state is MessageState.DELIVERED:
                row.state = MessageState.DELIVERED
                row.next_attempt_at = None
                self.counters["delivered"] += 1
            elif state is not None:
                reason = f"receipt {receipt.status}" + (f" (error {receipt.error})" if receipt.error else "")
                self._fail(session, row, reason, self._clock(), state=state)
            sms_id, final = row.id, row.state
        log.info("sms.receipt", sms_id=sms_id, channel=channel, status=receipt.status, state=final.value)

    # -- failure ------------------------------------------------------------------------------------------------
    def _fail(self, session: AsyncSession, row: SmsMessage, reason: str, now: dt.datetime, *,
              state: MessageState = MessageState.FAILED) -> None:
        row.state = state
        row.last_error = reason[:300]
        row.next_attempt_at = None
        row.updated_at = now
        self.counters["failed"] += 1
        if row.work_order_id is not None:
            trail.record_event(session, row.work_order_id, SMS_FAILED, actor_label=trail.SYSTEM, at=now,
                               details={"sms_id": row.id, "purpose": row.purpose.value, "template": row.template,
                                        "to": masked_number(row.recipient), "state": state.value,
                                        "attempts": row.attempts, "reason": reason[:300]})
        log.warning("sms.failed", sms_id=row.id, work_order_id=row.work_order_id, state=state.value,
                    attempts=row.attempts, reason=reason[:300])

    # -- reading ------------------------------------------------------------------------------------------------
    async def health_checks(self) -> dict[str, Check]:
        """The ``sms`` line of /healthz: off (passing, saying what happens to messages), or the channel's state and
        the last round's failure. Never critical: SOS handling does not depend on SMS."""
        facts: dict[str, Any] = dict(self.counters)
        channel = self.channel
        if channel is None:
            return {"sms": Check(True, f"off: CC_SMS_CHANNEL=off; messages are stored as failed ({OFF_REASON})",
                                 facts=facts)}
        check = channel.check()
        facts.update(check.facts)
        if self._last_round_error is not None:
            return {"sms": Check(False, f"{channel.name}: the last round failed: {self._last_round_error}",
                                 facts=facts)}
        return {"sms": Check(check.ok, f"{channel.name}: {check.detail}", facts=facts)}


async def _by_provider_id(session: AsyncSession, channel: str, provider_id: str) -> SmsMessage | None:
    """The message the SMSC knows as ``provider_id``: as written, else in its other notation (hex or decimal) when
    exactly one message matches that way."""
    exact = (await session.scalars(select(SmsMessage).where(
        SmsMessage.channel == channel, SmsMessage.provider_message_id == provider_id))).first()
    if exact is not None:
        return exact
    others = sorted(provider_id_forms(provider_id) - {provider_id})
    if not others:
        return None
    found = list((await session.scalars(select(SmsMessage).where(
        SmsMessage.channel == channel, SmsMessage.provider_message_id.in_(others)).limit(2))).all())
    return found[0] if len(found) == 1 else None


async def list_messages(session: AsyncSession, *, work_order_id: int | None, alarm_id: int | None,
                        elder_id: int | None, limit: int, offset: int) -> tuple[list[SmsMessage], int]:
    """Messages about an order, an alarm or an elder (all given filters apply), newest first."""
    conditions = [column == value for column, value in ((SmsMessage.work_order_id, work_order_id),
                                                         (SmsMessage.alarm_id, alarm_id),
                                                         (SmsMessage.elder_id, elder_id)) if value is not None]
    where = and_(*conditions) if conditions else None
    query = select(SmsMessage).order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc())
    counting = select(func.count()).select_from(SmsMessage)
    if where is not None:
        query, counting = query.where(where), counting.where(where)
    total = int(await session.scalar(counting) or 0)
    rows = list((await session.scalars(query.limit(limit).offset(offset))).all())
    return rows, total


SMS = ServiceKey("sms", NotificationService)
