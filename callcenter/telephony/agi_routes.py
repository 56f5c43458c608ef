"""The one place AGI handlers are registered: name in the dialplan's agi:// URL → handler function."""

from __future__ import annotations

import functools
from pathlib import Path
from zoneinfo import ZoneInfo

from callcenter.calls import agi as calls_agi
from callcenter.calls.journal import Journal
from callcenter.db.session import Database
from callcenter.ivr import agi as ivr_agi
from callcenter.ivr.flows import FlowSet
from callcenter.telephony.fastagi import Handler


def build_routes(db: Database, flows: FlowSet | None = None, prompt_root: Path | None = None, *,
                 timezone: ZoneInfo, sos_intake_seconds: float = 3.0,
                 journal: Journal | None = None) -> dict[str, Handler]:
    """``flows`` (``ivr.flows.load_flows``) and ``prompt_root`` (the instance's sounds directory as Asterisk sees
    it, ``ivr.prompts.sounds_dir``) enable the ``ivr`` handler; ``timezone`` (CC_TIMEZONE) is the calendar the
    deadlines of orders raised in a menu are counted on (a complaint's 5 working days); ``sos_intake_seconds``
    (CC_SOS_INTAKE_SECONDS) how long SOS intake may take before the call is queued without it, and ``journal``
    where the intake then goes to be replayed (calls.journal)."""
    routes: dict[str, Handler] = {
        "identify-caller": functools.partial(calls_agi.identify_caller, db),
        "sos": functools.partial(calls_agi.sos_intake, db, sos_intake_seconds, journal),
    }
    if flows is not None and prompt_root is not None:
        routes["ivr"] = functools.partial(ivr_agi.run_menu, db, flows, prompt_root, timezone)
    return routes
