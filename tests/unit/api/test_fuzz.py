"""The REST API fuzzed from its own OpenAPI document with schemathesis: every operation, with requests the document
says are valid and with requests it says are not, as an admin and as the other roles the operation names (a
provider's portal account among them), against the world's rows (tests/unit/api/world.py).

What must hold for every answer: never a 500, nor any 5xx the operation does not document (503 "Asterisk not
reachable" is documented where it can happen); the status is one the document lists; the body matches the
document's schema for that status, with the documented content type and headers; a request the document calls
invalid is refused with a 4xx; an operation that needs a token refuses one without. Deterministic (Hypothesis
derandomised, no example database) and bounded: a few examples per operation and mode, about 25 s a database
backend on two cores. Each bug it found has its own regression test next to the code it fixed; to hunt for more,
raise ``EXAMPLES`` and set ``derandomize=False`` for a run.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from callcenter.users.models import Role, User
from tests.apiclient import Api
from tests.unit.api import world as world_module

EXAMPLES = {Role.ADMIN: 8, Role.AGENT: 2, Role.SUPERVISOR: 2, Role.AUDITOR: 2, Role.PROVIDER: 6}
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


def no_server_error(_ctx: schemathesis.CheckContext, response: schemathesis.Response,
                    case: schemathesis.Case) -> bool | None:
    """Never a 500 (a bug), nor a 5xx the operation does not document (503 where Asterisk is needed)."""
    status = response.status_code
    if status == 500 or (status > 500 and str(status) not in case.operation.definition.raw["responses"]):
        raise AssertionError(f"server error {status}: {response.text[:300]}")
    return None


def invalid_query_refused(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                          case: schemathesis.Case) -> bool | None:
    """``negative_data_rejection``, once the invalid part reached the server: requests drops a query parameter
    whose value is None or an empty list, and what is left is a valid request, rightly accepted."""
    sent = parse_qs(urlsplit(response.request.url).query, keep_blank_values=True)
    if any(name not in sent for name in case.query or {}):
        return None
    return negative_data_rejection(ctx, response, case)


CHECKS = [no_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, invalid_query_refused, ignored_auth]


def _settings(examples: int) -> hypothesis.settings:
    # No shrinking: a failure is reported with the request that caused it (a curl line), in bounded time.
    return hypothesis.settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                               phases=(hypothesis.Phase.explicit, hypothesis.Phase.generate),
                               suppress_health_check=list(hypothesis.HealthCheck), report_multiple_bugs=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Fuzzer:
    base_url: str
    token: Callable[[User], str]  # a fresh token for the account (an operation may have logged the last one out)
    answered: collections.Counter[tuple[str, int]] = dataclasses.field(default_factory=collections.Counter)

    def run(self, user: User, operations: list[Any], examples: int) -> list[str]:
        failures: list[str] = []
        with requests.Session() as session:
            for operation in operations:
                for mode in MODES:
                    def send(case: schemathesis.Case) -> None:
                        response = case.call_and_validate(
                            base_url=self.base_url, session=session, checks=CHECKS,
                            headers={"Authorization": f"Bearer {self.token(user)}"})
                        self.answered[(case.operation.label, response.status_code)] += 1

                    test = hypothesis.given(case=operation.as_strategy(generation_mode=mode))(send)
                    try:
                        _settings(examples)(test)()
                    except hypothesis.errors.Unsatisfiable:
                        continue  # nothing in the operation can be made invalid (no parameters, no body)
                    except (Exception, BaseExceptionGroup) as error:  # checks' failures, the transport's
                        failures.append(f"{user.role.value} {operation.label} ({mode.value}):\n{error}")
        return failures


# Every operation by every role: the run grows with the API (about 25 s a backend on a quiet machine, several times
# that on a loaded one), so it gets more than the suite's 120 s default; it is bounded by EXAMPLES, not by time.
@pytest.mark.timeout(600)
async def test_the_api_survives_its_own_document(api: Api, tmp_path: Path) -> None:
    world = await world_module.build(api, tmp_path)
    status, document = await api.request("GET", "/api/v1/openapi.json", role=None)
    assert status == 200
    schema = schemathesis.openapi.from_dict(document)
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=lambda op: op.label)
    assert len(operations) == sum(len(methods) for methods in document["paths"].values())
    loop = asyncio.get_running_loop()

    def token(user: User) -> str:
        # Generous: on a loaded machine a log-in (an Argon2 hash behind the login guard) has taken over 10 s, and a
        # token that is late makes Hypothesis see a request that "failed once and then passed".
        return asyncio.run_coroutine_threadsafe(api.token_for(user), loop).result(timeout=60)

    fuzzer = Fuzzer(str(api.client.make_url("")).rstrip("/"), token)
    actors = await world.actors(api, "fuzz")
    failures: list[str] = []
    for role, examples in EXAMPLES.items():
        # Each role on the operations it is let into (x-roles); the admin on every one.
        mine = [op for op in operations if role is Role.ADMIN or role.value in op.definition.raw.get("x-roles", ())]
        failures += await asyncio.to_thread(fuzzer.run, actors[role], mine, examples)
    assert not failures, "\n\n".join(failures)
    # It was the API that answered, not only its parsers: most operations answered some request with a success.
    succeeded = {label for (label, status), _ in fuzzer.answered.items() if status < 300}
    assert len(succeeded) >= len(operations) // 2, sorted(succeeded)
