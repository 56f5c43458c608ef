"""The agent desk against real Asterisk: an SOS answered by the agent pops their panel over the WebSocket, and
each pop of the elder's file is audited as a read of it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests import harness

AGENT, AGENT_PANEL_PASSWORD = "agent-test", "agent-panel-pw"


class PanelListener:
    """A browser's WebSocket, in its own thread and event loop, collecting every message."""

    def __init__(self, stack: harness.Stack, token: str) -> None:
        self.url = f"ws://{stack.settings.http.host}:{stack.settings.http.port}/ws"
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)

    def __enter__(self) -> PanelListener:
        self._thread.start()
        harness.eventually(lambda: any(m["type"] == "hello" for m in self.messages), what="hello")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _listen(self) -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(self.url) as socket:
            await socket.send_json({"type": "auth", "token": self.token})  # as the page does
            while not self._stop.is_set():
                try:
                    message = await socket.receive_json(timeout=0.2)
                except TimeoutError:
                    continue
                self.messages.append(message)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]


@pytest.mark.every_database
def test_sos_pops_the_answering_agents_panel_also_after_a_late_connect(stack: harness.Stack,
                                                                        sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir)
    agent.register()
    assert stack.api("POST", f"/api/v1/agents/{AGENT}/login", token=token)[0] == 200
    caller: threading.Thread | None = None
    try:
        with PanelListener(stack, token) as panel:
            agent.answer("answer_until_bye", ring_ms=300)
            results: dict[str, harness.SippResult] = {}
            caller = threading.Thread(target=lambda: results.setdefault("sos", harness.sipp(
                stack, "call", service="sos", auth_user=seeded.device_user, password=seeded.device_password,
                variables={"user": seeded.device_user, "hold_ms": "6000"}, workdir=sipp_dir)))
            caller.start()
            pop = harness.eventually(lambda: panel.of_type("screen_pop"), timeout=20, what="the screen-pop")[0]
            assert pop["sos"] is True and pop["kind"] == "sos"
            assert pop["elder"]["id"] == seeded.elder_id and pop["elder"]["full_name"] == "测试老人"
            assert pop["elder"]["contacts"][0]["phone"] == "17700009902"
            assert pop["device"]["id"] == seeded.device_id
            assert pop["work_order"]["kind"] == "emergency"
            assert any(m["type"] == "agent_state" and m["username"] == AGENT for m in panel.messages)

            # The agent reloads the page mid-call: the new connection gets the same pop.
            with PanelListener(stack, token) as reloaded:
                again = harness.eventually(lambda: reloaded.of_type("screen_pop"), what="the replayed pop")[0]
                assert again["call_id"] == pop["call_id"]
            caller.join(30)
            assert results["sos"].ok, results["sos"].output
            harness.eventually(lambda: panel.of_type("call_ended"), what="call_ended")
            assert panel.of_type("call_ended")[0]["call_id"] == pop["call_id"]

        # Each pop that showed the file was a read of it, audited after it was sent: the answer, then the reload.
        def pop_reads() -> list[dict[str, Any]]:
            status, page = stack.api("GET", f"/api/v1/audit?action=elder.screen_pop&target_id={seeded.elder_id}",
                                     token=stack.token())
            assert status == 200, page
            return page["items"] if len(page["items"]) >= 2 else []

        reads = harness.eventually(pop_reads, what="the screen-pops' audit entries")
        assert [(r["actor_label"], r["details"]["call_id"], r["details"].get("replay", False)) for r in reads] == [
            (AGENT, pop["call_id"], False), (AGENT, pop["call_id"], True)]
        assert all(r["source_ip"] == "127.0.0.1" and r["details"]["justified_by"] == "call" for r in reads)
    finally:
        if caller is not None:
            caller.join(30)
        agent.stop()
        stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=token)
