"""What a called person hears and may press: a script the outbound AGI step (``outbound.agi``) runs.

Prompts are ids of ``ivr_flows/prompts.yaml`` (synthesised Mandarin, or a recording), played in order with the
keys of ``choices`` able to cut in (RFC 2833 DTMF read by FastAGI). A script without choices is a message: played
(twice by default) and hung up.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DIGIT_KEYS = frozenset("0123456789*#")


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompts: tuple[str, ...] = Field(min_length=1)
    choices: dict[str, str] = Field(default_factory=dict)  # key → what it means (accept, decline, …)
    replies: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # key → prompts played after it
    agent_keys: tuple[str, ...] = ()  # keys that connect the person to the centre's agents
    agent_queue: Literal["hotline", "emergency"] = "hotline"
    no_key_prompts: tuple[str, ...] = ()  # played once the repeats are used up with no key
    repeats: int = Field(default=2, ge=1, le=5)
    wait_seconds: float = Field(default=6.0, gt=0, le=30)

    @model_validator(mode="after")
    def _keys(self) -> Script:
        for key in (*self.choices, *self.replies, *self.agent_keys):
            if key not in DIGIT_KEYS:
                raise ValueError(f"{key!r} is not a telephone key (0-9, * or #)")
        unknown = [key for key in (*self.replies, *self.agent_keys) if key not in self.choices]
        if unknown:
            raise ValueError(f"keys {', '.join(unknown)} have replies or connect to an agent but are no choice")
        return self

    def prompt_ids(self) -> set[str]:
        return {*self.prompts, *self.no_key_prompts, *(p for ps in self.replies.values() for p in ps)}
