"""The IVR interpreter: an AGI handler that walks a caller through a flow (``callcenter.ivr.flows``).

Dialplan contract (``AGI(agi://…/ivr,<entry>,<linkedid>)``, after ``identify-caller`` on the same channel):

* reads CC_CALL_ID, CC_ELDER_ID, CC_DEVICE_ID, CC_IDENTIFIED (set by identify-caller) and CC_LANGUAGE
  (optional: forces zh-CN or en when the elder's file does not say);
* on the way out sets CC_IVR_ACTION = queue | callback | hangup, CC_IVR_QUEUE = hotline | emergency (empty
  unless queue) and CC_ORDER_ID when a work order was raised; the server then sets CC_AGI_RESULT=ok.

Prompts play with ``STREAM FILE <root>/<lang>/<id> "<digits>"`` so a key pressed during a prompt counts
(barge-in); then ``WAIT FOR DIGIT`` waits the node's timeout. Each database write is its own short
transaction, never open while the caller is thinking; a hang-up (``AgiHangup``) simply ends the handler.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from callcenter.calls.models import Call, IdentifiedBy
from callcenter.db.session import Database
from callcenter.elders.models import Elder
from callcenter.ivr.flows import (
    DEFAULT_LANGUAGE,
    DEFAULT_QUEUE,
    DIGITS,
    LANGUAGES,
    Action,
    CallbackAction,
    Flow,
    FlowSet,
    HangupAction,
    MenuAction,
    Node,
    OrderAction,
    QueueAction,
    RepeatAction,
)
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.telephony.fastagi import AgiChannel, AgiError, AgiHangup, AgiRequest

log = get_logger(__name__)

ACTOR = "ivr"
PROMPT_TIMEOUT = 180.0  # the longest a single prompt may play before the command counts as lost
TIMEOUT_MARGIN = 10.0  # beyond a node's digit timeout, for Asterisk to answer WAIT FOR DIGIT


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """What identify-caller left on the channel."""

    call_id: int | None
    elder_id: int | None
    device_id: int | None
    identified: IdentifiedBy
    number: str

    @property
    def known(self) -> bool:
        return self.elder_id is not None and self.identified is not IdentifiedBy.NONE


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """How the menu ended, for the dialplan."""

    action: str  # queue | callback | hangup
    queue: str = ""


async def run_menu(db: Database, flows: FlowSet, prompt_root: Path, timezone: ZoneInfo, request: AgiRequest,
                   channel: AgiChannel) -> None:
    """``ivr,<entry>,<linkedid>``: run the flow serving ``entry`` and leave the outcome in CC_IVR_* variables.
    Orders raised in the menu get their deadlines on the calendar of ``timezone`` (CC_TIMEZONE)."""
    entry, linkedid = request.arg(0), request.arg(1) or request.uniqueid
    bound = log.bind(uniqueid=request.uniqueid, linkedid=linkedid, entry=entry)
    flow = flows.flow(entry)
    if flow is None:
        # A dialplan/flow mismatch must not strand the caller: a person takes the call.
        bound.error("ivr.unknown_entry", known=sorted(flows.flows))
        await _finish(channel, Outcome("queue", DEFAULT_QUEUE), bound)
        return
    caller = await _read_caller(channel, request)
    language = await _language(db, channel, caller.elder_id)
    bound = bound.bind(call_id=caller.call_id, elder_id=caller.elder_id, language=language)
    bound.info("ivr.started", identified=caller.identified.value)
    session = _MenuSession(db, flow, prompt_root / language, channel, caller, linkedid, bound, timezone)
    try:
        outcome = await session.run()
    except AgiHangup:
        bound.info("ivr.caller_hung_up", node=session.node_id, orders=session.orders)
        raise
    await _finish(channel, outcome, bound)


async def stream_prompt(channel: AgiChannel, prompt_dir: Path, prompt_id: str, escape: str, bound: Any) -> str | None:
    """Stream one prompt of ``prompt_dir`` (a language's); return the key of ``escape`` that interrupted it, if
    any. A missing or unreadable sound file is logged and skipped: the caller keeps moving."""
    path = prompt_dir / prompt_id
    response = await channel.command(f'STREAM FILE {path} "{escape}"', timeout=PROMPT_TIMEOUT)
    if not response.ok:
        raise AgiError(f"STREAM FILE {prompt_id} failed: {response.raw}")
    if response.result == "-1":
        if channel.hung_up:
            raise AgiHangup("hung up during a prompt")
        bound.warning("ivr.prompt_failed", prompt=prompt_id, path=str(path))
        return None
    return _digit(response.result, "STREAM FILE", response.raw)


async def wait_for_digit(channel: AgiChannel, seconds: float) -> str | None:
    """Wait up to ``seconds`` for one key; None when none came."""
    response = await channel.command(f"WAIT FOR DIGIT {int(seconds * 1000)}", timeout=seconds + TIMEOUT_MARGIN)
    return _digit(response.result, "WAIT FOR DIGIT", response.raw)


def _digit(result: str, command: str, raw: str) -> str | None:
    try:
        code = int(result)
    except ValueError:
        raise AgiError(f"{command}: unexpected response {raw!r}") from None
    if code < 0:
        raise AgiHangup(f"{command} failed: {raw}")
    if code == 0:
        return None
    return chr(code)


async def _finish(channel: AgiChannel, outcome: Outcome, bound: Any) -> None:
    await channel.set_variable("CC_IVR_ACTION", outcome.action)
    await channel.set_variable("CC_IVR_QUEUE", outcome.queue)
    bound.info("ivr.finished", action=outcome.action, queue=outcome.queue)


async def _read_caller(channel: AgiChannel, request: AgiRequest) -> Caller:
    try:
        identified = IdentifiedBy(await channel.get_variable("CC_IDENTIFIED") or "none")
    except ValueError:
        identified = IdentifiedBy.NONE
    return Caller(
        call_id=_int(await channel.get_variable("CC_CALL_ID")),
        elder_id=_int(await channel.get_variable("CC_ELDER_ID")),
        device_id=_int(await channel.get_variable("CC_DEVICE_ID")),
        identified=identified,
        number=request.caller_number,
    )


def _int(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


def prompt_language(value: str | None) -> str | None:
    """Map an elder's or channel's language tag onto a prompt language (zh-CN, en), or None."""
    if not value:
        return None
    tag = value.strip().replace("_", "-").lower()
    for language in LANGUAGES:
        if tag == language.lower() or tag.split("-", 1)[0] == language.split("-", 1)[0].lower():
            return language
    return None


async def _language(db: Database, channel: AgiChannel, elder_id: int | None) -> str:
    # Asterisk's own CHANNEL(language) defaults to "en" on every channel, so it says nothing about the caller;
    # the elder's file does, and the dialplan may force one with CC_LANGUAGE.
    if elder_id is not None:
        async with db.transaction() as session:
            language = prompt_language(await session.scalar(select(Elder.language).where(Elder.id == elder_id)))
        if language:
            return language
    return prompt_language(await channel.get_variable("CC_LANGUAGE")) or DEFAULT_LANGUAGE


class _MenuSession:
    def __init__(self, db: Database, flow: Flow, prompt_dir: Path, channel: AgiChannel, caller: Caller,
                 linkedid: str, bound: Any, timezone: ZoneInfo) -> None:
        self.db = db
        self.timezone = timezone
        self.flow = flow
        self.prompt_dir = prompt_dir
        self.channel = channel
        self.caller = caller
        self.linkedid = linkedid
        self.log = bound
        self.node_id = flow.start
        self.orders: list[int] = []

    async def run(self) -> Outcome:
        welcome = self.flow.welcome_known if self.caller.known else self.flow.welcome_unknown
        pending = await self.play(welcome, DIGITS) if welcome else None
        node = self.flow.nodes[self.node_id]
        tries = 0
        while True:
            digit = pending if pending is not None else await self.ask(node)
            pending = None
            if digit is None or digit not in node.options:
                tries += 1
                problem = "timeout" if digit is None else "invalid"
                self.log.info(f"ivr.{problem}", node=node.id, digit=digit, tries=tries, max_tries=node.max_tries)
                if tries < node.max_tries:
                    retry_prompt = node.timeout_prompt if digit is None else node.invalid_prompt
                    pending = await self.play(retry_prompt, DIGITS) if retry_prompt else None
                    continue
                self.log.info("ivr.max_tries", node=node.id)
                action: Action = node.default
            else:
                self.log.info("ivr.choice", node=node.id, digit=digit, action=node.options[digit].type)
                action = node.options[digit]
            step = await self.perform(action)
            if isinstance(step, Outcome):
                return step
            if step is not node:
                tries = 0
            node = step
            self.node_id = node.id

    async def ask(self, node: Node) -> str | None:
        """Play the node's prompt (keys interrupt it), then wait up to its timeout for one key."""
        digit = await self.play(node.prompt, DIGITS)
        if digit is not None:
            return digit
        return await wait_for_digit(self.channel, node.timeout)

    async def play(self, prompt_id: str, escape: str = "") -> str | None:
        """Stream one prompt; return the key that interrupted it, if any."""
        self.log.debug("ivr.prompt", node=self.node_id, prompt=prompt_id)
        return await stream_prompt(self.channel, self.prompt_dir, prompt_id, escape, self.log)

    async def perform(self, action: Action) -> Node | Outcome:
        node = self.flow.nodes[self.node_id]
        outcome: Node | Outcome
        if isinstance(action, QueueAction):
            outcome = Outcome("queue", action.queue)
        elif isinstance(action, HangupAction):
            outcome = Outcome("hangup")
        elif isinstance(action, MenuAction):
            outcome = self.flow.nodes[action.node]
        elif isinstance(action, RepeatAction):
            outcome = node
        elif isinstance(action, CallbackAction):
            await self.raise_order(WorkOrderKind.CONSULTATION, title="回电请求",
                                   details={"callback_requested": True, "number": self.caller.number})
            outcome = Outcome("callback")
        else:
            assert isinstance(action, OrderAction)
            details: dict[str, object] = {"service": action.service} if action.service else {}
            await self.raise_order(action.kind, title=action.title, details=details)
            if action.prompt:
                await self.play(action.prompt)
            return await self.perform(action.then)
        if action.prompt:
            await self.play(action.prompt)
        return outcome

    async def raise_order(self, kind: WorkOrderKind, *, title: str | None, details: dict[str, object]) -> None:
        details = {**details, "source": "ivr", "flow": self.flow.entry, "node": self.node_id}
        # One short transaction per order, committed before the caller hears anything more.
        async with self.db.transaction() as session:
            call_id = self.caller.call_id
            if call_id is None:
                call_id = await session.scalar(select(Call.id).where(Call.linkedid == self.linkedid))
            service = details.get("service")
            order = await raise_order(session, kind=kind, actor_label=ACTOR, elder_id=self.caller.elder_id,
                                      call_id=call_id, device_id=self.caller.device_id, title=title,
                                      service=service if isinstance(service, str) else None, details=details,
                                      tz=self.timezone)
            order_id, number = order.id, order.number
        self.orders.append(order_id)
        self.log.info("ivr.order_raised", node=self.node_id, order_id=order_id, order_number=number,
                      kind=kind.value, service=details.get("service"))
        await self.channel.set_variable("CC_ORDER_ID", order_id)
