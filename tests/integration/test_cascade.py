"""A contact cascade against real Asterisk: an agent starts it from a fall alarm; the first responder never
answers, the second presses 2 to decline, the third presses 1 to accept (RFC 2833 keys from SIPp people behind
the trunk); the cascade stops, the agent's panel hears it, and the elder is called back with "help is coming".
Every call, key and time is on the alarm's order trail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import harness

NEVER, DECLINES, ACCEPTS = "13900000019", "13900000022", "13900000031"
ELDER_PHONE = "17700000041"  # the help-is-coming call: answered (a key pressed during it changes nothing)


def _cascade(stack: harness.Stack, alarm_id: int, token: str) -> dict[str, Any]:
    status, listed = stack.api("GET", f"/api/v1/cascades?alarm_id={alarm_id}", token=token)
    assert status == 200, listed
    return dict(listed["items"][0])


def test_no_answer_decline_then_accept_stops_the_cascade_and_the_elder_hears_help_is_coming(
        stack: harness.Stack, sipp_dir: Path) -> None:
    admin = stack.token()
    status, elder = stack.api("POST", "/api/v1/elders", {
        "full_name": "周秀英", "phone": ELDER_PHONE, "address": "和平路 8 号", "community": "测试社区",
        "contacts": [{"role": "relative", "name": "周大", "phone": NEVER, "priority": 1},
                     {"role": "relative", "name": "周二", "phone": DECLINES, "priority": 2},
                     {"role": "social_worker", "name": "钱社工", "phone": ACCEPTS, "priority": 1}]}, token=admin)
    assert status == 201, elder
    status, alarm = stack.api("POST", "/api/v1/alarms", {"type": "fall", "elder_id": elder["id"],
                                                         "note": "家属来电称老人跌倒"}, token=admin)
    assert status == 201, alarm
    people = harness.TrunkResponders(stack, sipp_dir / "people")
    people.answer_calls(4, listen_ms=2500, timeout=120)
    status, started = stack.api("POST", "/api/v1/cascades", {"alarm_id": alarm["id"]}, token=admin)
    assert status == 201, started
    assert started["state"] == "running" and started["steps"] == 3
    status, again = stack.api("POST", "/api/v1/cascades", {"alarm_id": alarm["id"]}, token=admin)
    assert status == 409, again

    accepted = harness.eventually(lambda: (c := _cascade(stack, alarm["id"], admin))["state"] == "accepted" and c,
                                  timeout=90, what="the third responder accepting")
    assert (accepted["accepted_by"], accepted["eta_minutes"]) == ("钱社工", 30)
    assert [(c["name"], c["state"], c["key"]) for c in accepted["calls"]] == [
        ("周大", "no_answer", None), ("周二", "declined", "2"), ("钱社工", "accepted", "1")]
    # The elder is called back with the message and the expected arrival.
    harness.eventually(lambda: [n for n, _ in people.invites()].count(ELDER_PHONE) == 1, timeout=30,
                       what="the help-is-coming call to the elder")
    status, jobs = stack.api("GET", f"/api/v1/outbound-jobs?purpose=notification&elder_id={elder['id']}",
                             token=admin)
    assert status == 200, jobs
    done = harness.eventually(lambda: stack.api("GET", f"/api/v1/outbound-jobs?purpose=notification&elder_id="
                                                      f"{elder['id']}&state=done", token=admin)[1]["items"],
                              timeout=60, what="the help-is-coming message played to the elder")
    assert done[0]["attempt_log"][0]["state"] == "completed"
    assert people.wait(60).ok, people.errors()
    assert [number for number, _ in people.invites()] == [NEVER, DECLINES, ACCEPTS, ELDER_PHONE]

    status, order = stack.api("GET", f"/api/v1/work-orders/{alarm['work_order_id']}", token=admin)
    assert status == 200, order
    steps = [(e["action"], e["details"].get("name"), e["details"].get("key") or e["details"].get("outcome"))
             for e in order["events"] if e["action"].startswith("cascade") or e["action"] == "help_coming_call"]
    assert steps == [
        ("cascade_started", None, None), ("cascade_call", "周大", None), ("cascade_call_result", "周大", "no_answer"),
        # A key is on the trail the moment it is pressed; the call's end adds nothing after it.
        ("cascade_call", "周二", None), ("cascade_call_result", "周二", "2"), ("cascade_call", "钱社工", None),
        ("cascade_call_result", "钱社工", "1"), ("cascade_accepted", "钱社工", None),
        ("help_coming_call", None, None)], steps
