"""The IVR domain: menus written as YAML (CC_IVR_FLOWS_DIR), run over FastAGI as the ``ivr`` handler."""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo

from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.ivr import agi
from callcenter.ivr.flows import load_flows
from callcenter.ivr.prompts import sounds_dir


def load(ctx: PluginContext) -> Contribution:
    # A broken flow stops the platform here, naming the file, node and problem.
    flows = load_flows(ctx.settings.ivr_flows_dir)
    # Orders raised in a menu count their deadlines (a complaint's 5 working days) on the centre's calendar.
    handler = functools.partial(agi.run_menu, ctx.db, flows, sounds_dir(ctx.runtime), ZoneInfo(ctx.settings.timezone))
    return Contribution(agi={"ivr": handler})


plugin = Plugin("ivr", load)
