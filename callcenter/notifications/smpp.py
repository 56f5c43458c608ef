"""The SMPP 3.4 channel: aiosmpplib's asyncio ESME bound as a transceiver, used for what it does well (the bind, the
reconnect, enquire_link, PDUs) and kept away from what it does not (read from its source, version 0.7.4):

- **No long messages.** Its splitting path (``auto_message_payload=False``) references an unassigned ``encoding``
  when the UDH flag is not set, raising outside its error handling, which drops the link; its SAR segments are
  254 bytes, larger than a handset's 140. Every message here is one SMS (``templates.check_one_sms``), and
  ``auto_message_payload`` stays on only as the library's default: it never applies to a text that short.
- **No library retries.** Its broker queues a message until the link is bound and sends it whenever that is — also
  after the service gave up on that attempt and queued another. Each attempt here waits for its submit_sm_resp (or
  a generic_nack) up to CC_SMPP_TIMEOUT_SECONDS, and an attempt given up on is dropped before it is written (the
  hook refuses it) rather than sent late. Retries and backoff are the service's (``services``).
- **Receipts parsed here.** Its receipt parser reads dates only as ``YYMMDDhhmm``: a receipt with seconds (many
  SMSCs send ``YYMMDDhhmmss``) raises in its receive loop before the receipt is acknowledged, so the link drops and
  the SMSC sends the same receipt again, for ever. Deliver_sm PDUs are taken before that parser
  (``_Esme._handle_request``) and parsed by ``parse_receipt`` (both date forms, the ``receipted_message_id``
  parameter before the text's ``id:``).
- **Correlation in the database.** Its correlator keeps message id → submit_sm in memory for three days (lost on a
  restart, and holding every number and text meanwhile). Here the SMSC's message id is written on the message's
  row from the hook, while the receive loop waits — before the next PDU, a receipt that may follow at once, is
  read — so a receipt finds its row whenever it comes, after a restart too. The correlator below keeps nothing
  past the response.
- **Its log lines** go through a handler that keeps the headline and a few protocol fields, never the message it
  prints (a number and a text) or its JSON dump of the PDU.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo

from aiosmpplib import (
    ESME,
    NPI,
    TON,
    AbstractHook,
    BindTransceiverResp,
    DeliverSm,
    GenericNack,
    PduHeader,
    PhoneNumber,
    SmppCommand,
    SmppCommandStatus,
    SmppMessage,
    SmppSessionState,
    SubmitSm,
    SubmitSmResp,
)
from aiosmpplib.correlator import SimpleCorrelator
from aiosmpplib.protocol import PDU_HEADER_LENGTH
from aiosmpplib.retrytimer import SimpleExponentialBackoff
from aiosmpplib.state import MESSAGE_STATE, RECEIPTED_MESSAGE_ID

from callcenter.contract import Check
from callcenter.logs import get_logger
from callcenter.notifications.channels import (
    AcceptSink,
    Attempt,
    Outgoing,
    Receipt,
    ReceiptSink,
    Refused,
    Submitted,
)

log = get_logger(__name__)

BIND_WAIT_SECONDS = 2.0
# Refusals another attempt cannot change: the message fails at once.
PERMANENT = frozenset({SmppCommandStatus.ESME_RINVDSTADR, SmppCommandStatus.ESME_RINVSRCADR,
                       SmppCommandStatus.ESME_RINVMSGLEN})
# message_state (SMPP 3.4 §5.2.28) in words, for a receipt that carries only the parameter.
_MESSAGE_STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD",
                   7: "UNKNOWN", 8: "REJECTD"}
_RECEIPT_FIELD = re.compile(r"(?i)\b(id|stat|err|done date):(\S*)")
# The library's own log fields that say nothing about a person.
_LIBRARY_FIELDS = ("smpp_command", "command_status", "sequence_num", "task", "reason", "hook_method", "exception")


def parse_receipt(message: DeliverSm, tz: ZoneInfo) -> Receipt | None:
    """A delivery receipt's id, status, error and done date (SMPP 3.4 Appendix B's text, dates ``YYMMDDhhmm`` or
    ``YYMMDDhhmmss`` in ``tz``, the SMSC's local time), its ``receipted_message_id`` and ``message_state``
    parameters first where present; None when it names no message."""
    text = message.short_message or message.message_payload
    fields = {name.lower(): value for name, value in _RECEIPT_FIELD.findall(text)}
    params = {param.tag: param.value for param in message.optional_params or []}
    provider_id = str(params.get(RECEIPTED_MESSAGE_ID) or fields.get("id") or "").strip()
    if not provider_id:
        return None
    status = fields.get("stat", "").upper()
    state = params.get(MESSAGE_STATE)
    if isinstance(state, int) and state in _MESSAGE_STATES:
        status = _MESSAGE_STATES[state]
    return Receipt(provider_message_id=provider_id, status=status[:16] or "UNKNOWN",
                   error=fields.get("err", "")[:16], done_at=_receipt_time(fields.get("done date", ""), tz))


def _receipt_time(value: str, tz: ZoneInfo) -> dt.datetime | None:
    for pattern in ("%y%m%d%H%M%S", "%y%m%d%H%M"):
        if len(value) == len(dt.datetime(2000, 1, 1).strftime(pattern)):
            with contextlib.suppress(ValueError):
                return dt.datetime.strptime(value, pattern).replace(tzinfo=tz).astimezone(dt.UTC)
    return None


def _number(recipient: str) -> PhoneNumber:
    if recipient.startswith("+"):
        return PhoneNumber(recipient[1:], TON.INTERNATIONAL, NPI.ISDN)
    return PhoneNumber(recipient, TON.UNKNOWN, NPI.ISDN)


class _LibraryLog(logging.Handler):
    """aiosmpplib's lines (``headline >>> {json}``, from a logger of its own that would print to stderr) into the
    platform's log, with only the fields in ``_LIBRARY_FIELDS``; an error's headline (a refused connection, a bind
    refused) is also the channel's last error on /healthz."""

    def __init__(self, on_error: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self._on_error = on_error

    def emit(self, record: logging.LogRecord) -> None:
        headline, _, tail = record.getMessage().partition(" >>> ")
        fields: dict[str, object] = {}
        with contextlib.suppress(ValueError):
            parsed = json.loads(tail) if tail else {}
            if isinstance(parsed, dict):
                fields = {key: parsed[key] for key in _LIBRARY_FIELDS if key in parsed}
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = type(record.exc_info[1]).__name__
        if record.levelno >= logging.ERROR:
            cause = fields.get("exception") or fields.get("error")
            self._on_error(f"{headline} ({str(cause)[:120]})" if cause else headline[:150])
        log.log(record.levelno, "smpp.library", detail=headline[:200], **fields)


class _ResponsesOnly(SimpleCorrelator):
    """Request/response correlation only: the receipts' correlation is the database's (``SmsMessage``)."""

    async def put_delivery(self, smsc_message_id: str, submit_sm: SubmitSm) -> None:
        return None


class _Esme(ESME):
    async def _handle_request(self, pdu: bytes, header: PduHeader) -> SmppMessage | None:
        """Deliver_sm decoded without the library's receipt parser (see the module's docstring); the hook reads
        it. Anything else as the library does."""
        if header.smpp_command != SmppCommand.DELIVER_SM:
            return await super()._handle_request(pdu, header)
        try:
            return DeliverSm.from_pdu(pdu, header, self.default_encoding, self.custom_codecs)
        except (ValueError, LookupError, UnicodeError):
            log.warning("smpp.deliver_sm_unreadable", sequence_num=header.sequence_num)
            await self._send_data(GenericNack(header.sequence_num))
            return None


class _Hook(AbstractHook):
    def __init__(self, channel: SmppChannel) -> None:
        self._channel = channel

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        if isinstance(smpp_message, SubmitSm) and not isinstance(smpp_message, DeliverSm):
            self._channel.sending(smpp_message)

    async def received(self, smpp_message: SmppMessage | None, pdu: bytes, client_id: str) -> None:
        await self._channel.received(smpp_message, pdu)

    async def send_error(self, smpp_message: SmppMessage, error: Exception, client_id: str) -> None:
        self._channel.send_failed(smpp_message, error)


class SmppChannel:
    """SMS over SMPP 3.4 to one SMSC (CC_SMPP_*), bound as a transceiver: submit_sm out, delivery receipts in."""

    name = "smpp"
    receipts = True

    def __init__(self, *, host: str, port: int, system_id: str, password: str, source_addr: str, timeout: float,
                 tz: ZoneInfo, on_accepted: AcceptSink, on_receipt: ReceiptSink) -> None:
        self._address = (host, port)
        self._credentials = (system_id, password)
        self._source = source_addr
        self._timeout = timeout
        self._tz = tz
        self._on_accepted = on_accepted
        self._on_receipt = on_receipt
        self._esme: _Esme | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Attempt]] = {}  # our message id → the attempt's answer
        self._in_flight: dict[int, str] = {}  # sequence number → our message id, between submit_sm and its answer
        self._bind_answered = asyncio.Event()
        self._last_error: str | None = None
        self._bind_refusal: str | None = None  # the SMSC's answer to the last bind, if it refused it
        self.receipts_taken = 0

    @property
    def bound(self) -> bool:
        return self._esme is not None and self._esme.session_state == SmppSessionState.BOUND_TRX

    async def start(self) -> None:
        system_id, password = self._credentials
        handler = _LibraryLog(self._library_error)
        self._esme = _Esme(self._address[0], self._address[1], system_id, password, client_id="callcenter",
                           log_level=logging.INFO, log_metadata={}, log_handler=handler,
                           log_include_timestamp=False, hook=_Hook(self),
                           correlator=_ResponsesOnly(system_id, max_ttl_response=max(1.0, self._timeout)),
                           retry_timer=SimpleExponentialBackoff(min_delay=500, max_increases=5),
                           socket_timeout=float(self._timeout))
        self._task = asyncio.create_task(self._esme.start(), name="smpp-esme")

    async def stop(self) -> None:
        esme, task, self._esme, self._task = self._esme, self._task, None, None
        if esme is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(esme.stop(), 5)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for future in self._pending.values():
            if not future.done():
                future.set_result(Refused("the SMPP channel stopped"))

    def _library_error(self, headline: str) -> None:
        self._last_error = headline

    async def wait_bound(self, timeout: float) -> bool:
        """Whether the link is bound, waiting up to ``timeout`` for a bind answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.bound:
            remaining = deadline - loop.time()
            if remaining <= 0 or self._esme is None:
                return False
            self._bind_answered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._bind_answered.wait(), remaining)
        return True

    async def submit(self, message: Outgoing) -> Attempt:
        esme = self._esme
        # A short wait covers the bind after a start or a reconnect; an SMSC that is down refuses the attempt soon.
        if esme is None or not await self.wait_bound(min(BIND_WAIT_SECONDS, self._timeout)):
            return Refused(f"not bound to the SMSC: {self._why_unbound()}")
        key = str(message.message_id)
        future: asyncio.Future[Attempt] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            await esme.broker.enqueue(SubmitSm(short_message=message.body, source=_number(self._source),
                                               destination=_number(message.recipient), log_id=key,
                                               registered_delivery=0b00000001))
            return await asyncio.wait_for(asyncio.shield(future), self._timeout)
        except TimeoutError:
            return Refused(f"no answer from the SMSC within {self._timeout:g} s")
        finally:
            # Given up on or answered: either way a late send or a late answer is no longer this attempt's.
            self._pending.pop(key, None)
            for sequence in [seq for seq, owner in self._in_flight.items() if owner == key]:
                del self._in_flight[sequence]

    # -- the hook (called from aiosmpplib's send and receive loops) ------------------------------------------------
    def sending(self, submit: SubmitSm) -> None:
        future = self._pending.get(submit.log_id)
        if future is None or future.done():
            # The attempt was given up on while the message waited in the library's queue: raising ValueError
            # here makes the library drop it unsent and carry on.
            raise ValueError("attempt abandoned before it was sent")
        self._in_flight[submit.sequence_num] = submit.log_id

    async def received(self, message: SmppMessage | None, pdu: bytes = b"") -> None:
        if message is None and len(pdu) >= PDU_HEADER_LENGTH:
            # A PDU the library could not read. A refused bind is one: SMSCs answer it without a body, which its
            # parser requires — say why the bind failed rather than "error while reading".
            header = SmppMessage.parse_header(pdu)
            if header.smpp_command == SmppCommand.BIND_TRANSCEIVER_RESP:
                self._bind_refusal = f"bind refused: {header.command_status.name}"
                self._bind_answered.set()
        elif isinstance(message, BindTransceiverResp):
            if message.command_status != SmppCommandStatus.ESME_ROK:
                self._bind_refusal = f"bind refused: {message.command_status.name}"
            else:
                self._bind_refusal = self._last_error = None
            self._bind_answered.set()
        elif isinstance(message, SubmitSmResp):
            await self._answered(message.sequence_num, message.command_status, message.message_id)
        elif isinstance(message, GenericNack):
            await self._answered(message.sequence_num, message.command_status, "")
        elif isinstance(message, DeliverSm):
            await self._deliver_sm(message)

    def send_error(self, message: SmppMessage, error: Exception) -> None:
        future = self._pending.get(getattr(message, "log_id", ""))
        if future is not None and not future.done():
            future.set_result(Refused(f"not sent: {type(error).__name__}"))

    async def _answered(self, sequence: int, status: SmppCommandStatus, provider_id: str) -> None:
        key = self._in_flight.pop(sequence, None)
        future = self._pending.get(key) if key is not None else None
        if key is None or future is None or future.done():
            log.warning("smpp.answer_unmatched", sequence_num=sequence, status=status.name)
            return
        if status != SmppCommandStatus.ESME_ROK or not provider_id:
            future.set_result(Refused(f"refused by the SMSC: {status.name}", permanent=status in PERMANENT))
            return
        try:
            # Before this returns the receive loop reads nothing more: a receipt right behind finds the id stored.
            await self._on_accepted(int(key), provider_id)
        except Exception:
            log.exception("smpp.accept_not_stored", message_id=int(key))  # the service stores it after the answer
        future.set_result(Submitted(provider_id))

    async def _deliver_sm(self, message: DeliverSm) -> None:
        if (message.esm_class & 0b00111100) >> 2 != 1:
            log.info("smpp.mobile_originated_ignored")  # replies from phones are not read (no personal data kept)
            return
        receipt = parse_receipt(message, self._tz)
        if receipt is None:
            log.warning("smpp.receipt_without_id")
            return
        try:
            await self._on_receipt(self.name, receipt)
        except Exception as error:
            # Not acknowledged: the library drops the link on a ConnectionError, binds again, and the SMSC sends
            # the receipt again.
            log.exception("smpp.receipt_not_stored")
            raise ConnectionError("a delivery receipt could not be stored") from error
        self.receipts_taken += 1

    def check(self) -> Check:
        facts = {"bound": self.bound, "pending": len(self._pending), "receipts": self.receipts_taken}
        host, port = self._address
        if self.bound:
            return Check(True, f"bound to {host}:{port} as {self._credentials[0]}", facts=facts)
        return Check(False, f"not bound to {host}:{port}: {self._why_unbound()}", facts=facts)

    def _why_unbound(self) -> str:
        return self._bind_refusal or self._last_error or "connecting"

