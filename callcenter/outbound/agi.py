"""The ``outbound`` AGI step: what a person the engine called hears, and the key they press.

Dialplan contract (``cc-outbound``, run on the called channel once it answers): ``AGI(agi://…/outbound,
<attempt id>,<linkedid>)``; on the way out CC_OUTBOUND_ACTION = hangup | queue and CC_OUTBOUND_QUEUE = hotline |
emergency (queue only). Keys are RFC 2833 DTMF (``STREAM FILE`` lets a key cut into a prompt, then ``WAIT FOR
DIGIT``). The key is stored the moment it is pressed (``OutboundDialer.record_key``), so a hang-up during the
reply still leaves the answer; no database transaction is open while the person listens.
"""

from __future__ import annotations

from pathlib import Path

from callcenter.ivr.agi import stream_prompt, wait_for_digit
from callcenter.logs import get_logger
from callcenter.outbound.models import JobState
from callcenter.outbound.services import OutboundDialer
from callcenter.telephony.fastagi import AgiChannel, AgiHangup, AgiRequest

log = get_logger(__name__)

INVALID_PROMPT = "invalid-choice"
NO_LONGER_NEEDED = "outbound-no-longer-needed"


async def run_script(dialer: OutboundDialer, prompt_root: Path, request: AgiRequest, channel: AgiChannel) -> None:
    try:
        attempt_id = int(request.arg(0))
    except ValueError:
        attempt_id = 0
    linkedid = request.arg(1) or request.uniqueid
    bound = log.bind(linkedid=linkedid, attempt_id=attempt_id)
    found = await dialer.script_for(attempt_id)
    if found is None:
        bound.error("outbound.script_unknown_attempt")
        await _finish(channel, "hangup", "")
        return
    job, script = found
    prompt_dir = prompt_root / job.language
    if job.state is JobState.CANCELLED:
        # Answered after the job was stopped (someone else accepted, the cascade was stopped): no question to ask,
        # and no "thank you, go" for help nobody needs any more.
        bound.info("outbound.answered_after_cancel")
        await stream_prompt(channel, prompt_dir, NO_LONGER_NEEDED, "", bound)
        await _finish(channel, "hangup", "")
        return
    keys = "".join(script.choices)
    digit: str | None = None
    try:
        for round_ in range(script.repeats):
            for prompt in script.prompts:
                digit = await stream_prompt(channel, prompt_dir, prompt, keys, bound)
                if digit is not None:
                    break
            if digit is None and script.choices:
                digit = await wait_for_digit(channel, script.wait_seconds)
            if digit is not None and digit not in script.choices:
                bound.info("outbound.other_key", round=round_)
                digit = None
                await stream_prompt(channel, prompt_root / job.language, INVALID_PROMPT, "", bound)
                continue
            if digit is not None or not script.choices:
                if not script.choices and round_ + 1 < script.repeats:
                    continue  # a message is said again: the elder may have missed the start
                break
        if digit is None:
            for prompt in script.no_key_prompts:
                await stream_prompt(channel, prompt_dir, prompt, "", bound)
            await _finish(channel, "hangup", "")
            return
        await dialer.record_key(attempt_id, digit)
        for prompt in script.replies.get(digit, ()):
            await stream_prompt(channel, prompt_dir, prompt, "", bound)
        if digit in script.agent_keys:
            await _finish(channel, "queue", script.agent_queue)
            bound.info("outbound.to_agent", queue=script.agent_queue)
            return
        await _finish(channel, "hangup", "")
    except AgiHangup:
        bound.info("outbound.hung_up", key_pressed=digit is not None)
        raise


async def _finish(channel: AgiChannel, action: str, queue: str) -> None:
    await channel.set_variable("CC_OUTBOUND_ACTION", action)
    await channel.set_variable("CC_OUTBOUND_QUEUE", queue)
