"""The work-order trail (seed 4.2.4): the one place its entries are made.

Every step in an order's life is one ``WorkOrderEvent``: who (a user, or a named machine actor), what (the
action), when, from which call, the status before and after when it moves, and the step's own details. Every
domain that puts something on an order's trail calls ``record_event`` (or, for an order not flushed yet,
``new_event``); no other module builds the rows, so their shape cannot drift apart between domains
(tests/unit/orders/test_trail.py checks the source).

The actions are strings, stored as they are and returned by the REST API, so they stay the values below. Each is
named by the domain that writes it (its constant lives there):

- orders: ``created``, ``updated``; every workflow step under its ``orders.schemas.Action`` value (``dispatch``,
  ``accept``, ``decline``, ``close``, …), and the conference steps ``conferences`` puts on the call's order
  through ``orders.services.record_on_call_order`` (``conference_started``, ``conference_party_added``, …).
- calls (SOS): ``answered_by_agent``, ``sos_step:<step>``; the abandoned-SOS callback (calls.callbacks):
  ``sos_abandoned``, ``sos_callback_dialling``, ``sos_callback_uncertain``, ``sos_callback_attempt_failed``,
  ``sos_callback_started``, ``sos_callback_cancelled``.
- follow_up_calls: ``follow_up_call``, ``follow_up_call_failed``, ``follow_up_call_result``.
- alarms: the order raised with an alarm carries its steps: ``alarm_taken``, ``alarm_responding``,
  ``alarm_resolved`` (with the outcome and note).
- notifications: ``sms_failed`` (an SMS about the order that could not be delivered: refused on every attempt,
  an undelivered or expired receipt, no receipt, or SMS off; with the reason and the number masked).
- recordings: ``recording_missing``.
- supervision_cases: ``supervision_case_opened``, ``supervision_case_joined``, ``supervision_urging``,
  ``supervision_case_resolved``.
- retention: ``legal_hold_set``, ``legal_hold_cleared``, and the rule that removed a call's log
  (``call_log_archive``, ``call_log_purge``).

The actor label is a user's name at the time (the trail stays readable if the account goes), or one of the
machine actors: ``SYSTEM``, ``ASTERISK``, ``"ivr"``, ``"retention"``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.orders.models import WorkOrderEvent, WorkOrderStatus

__all__ = ["ACTOR_LABEL_LENGTH", "ASTERISK", "CREATED", "SYSTEM", "UPDATED", "new_event", "record_event"]

# The platform acting on its own (a scan, a callback, a flag), and Asterisk reporting what happened on a call.
SYSTEM = "system"
ASTERISK = "asterisk"
# The order's own steps outside the workflow: raised, and edited by an agent.
CREATED = "created"
UPDATED = "updated"
# WorkOrderEvent.actor_label's column width: a longer label (an audit actor's) is cut, not refused by the database.
ACTOR_LABEL_LENGTH = 100


def new_event(action: str, *, actor_label: str, actor_id: int | None = None, order_id: int | None = None,
              call_id: int | None = None, details: Mapping[str, Any] | None = None, at: dt.datetime | None = None,
              from_status: WorkOrderStatus | None = None,
              to_status: WorkOrderStatus | None = None) -> WorkOrderEvent:
    """A trail entry not yet in any session: for an order being raised, whose id exists only after the flush,
    the entry goes in its ``events``. Everything else calls ``record_event``.

    ``at`` None: the time the row is written. ``details`` is copied, so the caller's dict may change afterwards.
    """
    event = WorkOrderEvent(action=action, actor_id=actor_id, actor_label=actor_label[:ACTOR_LABEL_LENGTH],
                           call_id=call_id, details=dict(details or {}),
                           from_status=from_status.value if from_status is not None else None,
                           to_status=to_status.value if to_status is not None else None)
    if order_id is not None:
        event.work_order_id = order_id
    # Left unset rather than None, so the column's default (the insert time) applies.
    if at is not None:
        event.at = at
    return event


def record_event(session: AsyncSession, order_id: int, action: str, *, actor_label: str,
                 actor_id: int | None = None, call_id: int | None = None, details: Mapping[str, Any] | None = None,
                 at: dt.datetime | None = None, from_status: WorkOrderStatus | None = None,
                 to_status: WorkOrderStatus | None = None) -> WorkOrderEvent:
    """Put one step on order ``order_id``'s trail, in the caller's transaction (written at its next flush).

    ``actor_id`` is the user who took the step (None for a machine actor or a provider's system); ``call_id`` the
    call it happened on; ``from_status``/``to_status`` the order's status before and after, for a step that is a
    transition (or recorded within one). Returns the entry, added to ``session``.
    """
    event = new_event(action, actor_label=actor_label, actor_id=actor_id, order_id=order_id, call_id=call_id,
                      details=details, at=at, from_status=from_status, to_status=to_status)
    session.add(event)
    return event
