"""A scripted AMI for the outbound engine's unit tests: the transport boundary, answered as each test says."""

from __future__ import annotations

import asyncio
from typing import Any

from callcenter.telephony.ami import AmiEvent


class ScriptedAmi:
    """Answers each Originate as the test says for its channel id: answered, not answered with a reason, the link
    dropping, or held until released."""

    def __init__(self) -> None:
        self.connected = True
        self.sent: list[dict[str, Any]] = []
        self.outcomes: dict[str, Any] = {}  # dialled target → AmiEvent | Exception
        self.held: dict[str, asyncio.Event] = {}

    async def send_action(self, action: dict[str, Any], timeout: float | None = None, **_: Any) -> Any:
        self.sent.append(action)
        target = action["Channel"].removeprefix("PJSIP/").removesuffix("@trunk")
        if target in self.held:
            await self.held[target].wait()
        outcome = self.outcomes.get(target, AmiEvent({"Event": "OriginateResponse", "Response": "Failure",
                                                      "Reason": "3"}))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def dialled(self) -> list[str]:
        return [a["Channel"].removeprefix("PJSIP/").removesuffix("@trunk") for a in self.sent]
