"""A care-call campaign running flat out while an SOS arrives (issue 16): the campaign fills its purpose's cap; the
SOS still goes straight to the emergency queue and an agent; while it waits for that agent, places the campaign
frees are not refilled; once the agent has it, the campaign goes on. Real Asterisk, SIPp elders behind the trunk
(their phones ring), a SIPp device pressing the red button and a SIPp agent."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callcenter.calls.models import Call, CallKind
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.dial_policy.services import DialBasis
from callcenter.outbound.models import OutboundAttempt, OutboundPurpose
from callcenter.outbound.services import enqueue
from tests import harness

# Elders whose phones ring (number ending in 9: never answered) as long as the test needs: the campaign's places
# are freed only when the test hangs a call up, so what the dialer does with a free place is seen exactly.
CAMPAIGN = [f"1360000{n:03d}9" for n in range(8)]
CHECK_IN = {"prompts": ["outbound-checkin"], "choices": {"1": "well", "2": "call_back", "0": "agent"},
            "agent_keys": ["0"]}


def _queue_campaign(stack: harness.Stack) -> list[int]:
    async def run(db: Database) -> list[int]:
        async with db.transaction() as session:
            return [(await enqueue(session, purpose=OutboundPurpose.CARE_CALL, owner="test", owner_ref=None,
                                   target=number, script=CHECK_IN, created_by="test", ring_seconds=90,
                                   dial_basis=DialBasis.ELDER)).id for number in CAMPAIGN]

    return stack.query(run)  # type: ignore[no-any-return]


def _campaign(stack: harness.Stack, job_ids: list[int]) -> dict[str, Any]:
    async def run(db: Database) -> dict[str, Any]:
        async with db.transaction(read_only=True) as session:
            attempts = (await session.scalars(select(OutboundAttempt).where(
                OutboundAttempt.job_id.in_(job_ids)))).all()
            sos = await session.scalar(select(Call).where(Call.kind == CallKind.SOS).order_by(Call.id.desc())
                                       .limit(1))
            return {"starts": sorted(a.started_at for a in attempts),
                    "in_flight": sum(a.state.value == "dialling" for a in attempts),
                    "sos": (sos.id, sos.started_at, sos.agent_id, sos.queue_wait_seconds) if sos else None}

    return stack.query(run)  # type: ignore[no-any-return]


def _ringing_trunk_channels(stack: harness.Stack) -> list[str]:
    listing = stack.runtime.cli("core show channels concise") or ""
    return [line.split("!")[0] for line in listing.splitlines() if line.startswith("PJSIP/trunk-")]


def _cancel(stack: harness.Stack, job_ids: list[int]) -> None:
    for job_id in job_ids:
        status, body = stack.api("POST", f"/api/v1/outbound-jobs/{job_id}/cancel", {"reason": "测试结束"},
                                 token=stack.token())
        assert status == 200, body


def test_a_campaign_flat_out_and_an_sos_at_once(stack: harness.Stack, sipp_dir: Path) -> None:
    elders = harness.TrunkResponders(stack, sipp_dir / "elders")
    elders.answer_calls(len(CAMPAIGN), timeout=120)
    before = _campaign(stack, [])["sos"]
    job_ids = _queue_campaign(stack)
    try:
        # Flat out: the care-call cap (CC_OUTBOUND_CONCURRENCY care_call=4) is full, the rest queued.
        harness.eventually(lambda: _campaign(stack, job_ids)["in_flight"] == 4, timeout=20,
                           what="four care calls ringing at once")
        # The red button: the agent's phone rings 4 s before it answers (the answer target is 5 s).
        sos = threading.Thread(target=harness.sos_answered_by_agent, args=(stack, sipp_dir / "sos"),
                               kwargs={"hold_ms": 8000, "ring_ms": 4000})
        sos.start()
        harness.eventually(lambda: (s := _campaign(stack, job_ids)["sos"]) is not None and s != before, timeout=10,
                           what="the SOS in the call log")
        # Two care calls end while the SOS waits: their places are free, and stay free.
        freed_at = utcnow()
        for channel in _ringing_trunk_channels(stack)[:2]:
            stack.runtime.cli(f"channel request hangup {channel}")
        sos.join(40)
        assert not sos.is_alive()
        after = harness.eventually(lambda: (c := _campaign(stack, job_ids))["in_flight"] == 4 and c, timeout=20,
                                   what="the campaign back at its cap once the SOS has its agent")
        _, sos_started, agent_id, waited = after["sos"]
        assert agent_id is not None and waited is not None, after["sos"]
        agent_connected = sos_started + dt.timedelta(seconds=waited)
        assert freed_at < agent_connected, (freed_at, agent_connected)
        assert [s for s in after["starts"] if freed_at <= s <= agent_connected] == [], (after["starts"], freed_at,
                                                                                         agent_connected)
        assert len([s for s in after["starts"] if s > agent_connected]) == 2, after["starts"]
    finally:
        _cancel(stack, job_ids)
        for channel in _ringing_trunk_channels(stack):
            stack.runtime.cli(f"channel request hangup {channel}", check=False)
        elders.stop()
