"""The one place AGI handlers are registered: name in the dialplan's agi:// URL → handler function."""

from __future__ import annotations

import functools

from callcenter.calls import agi as calls_agi
from callcenter.db.session import Database
from callcenter.telephony.fastagi import Handler


def build_routes(db: Database) -> dict[str, Handler]:
    return {
        "identify-caller": functools.partial(calls_agi.identify_caller, db),
    }
