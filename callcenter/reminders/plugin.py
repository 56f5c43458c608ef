"""The reminders domain (issue 16): medication reminders per elder, the planner that makes the reminders due
(medication times, a chronic-disease plan's missing measurement, a follow-up visit tomorrow) on the outbound
engine and the SMS service, the reminder log of their outcomes, and the API."""

from __future__ import annotations

from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.ivr.flows import load_flows
from callcenter.notifications.services import SMS
from callcenter.outbound.http import OUTBOUND_DIALER
from callcenter.reminders import http
from callcenter.reminders.models import MedicationReminder, ReminderLog
from callcenter.reminders.services import PROMPTS, THANKS, Reminders


def load(ctx: PluginContext) -> Contribution:
    prompts = frozenset(load_flows(ctx.settings.ivr_flows_dir).prompts)
    missing = sorted({*PROMPTS.values(), THANKS} - prompts)
    if missing:  # a reminder that could never be said stops the platform here, not at the elder's dose
        raise RuntimeError(f"reminder prompts missing from the IVR prompts: {', '.join(missing)}")
    service = ctx.provide(http.REMINDERS, Reminders(ctx.db, ctx.settings, ctx.require(OUTBOUND_DIALER),
                                                    ctx.require(SMS), known_prompts=prompts))
    return Contribution(routes=http.routes, jobs=[service.planner])


plugin = Plugin("reminders", load, models=(MedicationReminder, ReminderLog))
