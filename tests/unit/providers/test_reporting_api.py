"""POST /api/v1/provider-reports: signed by the provider's key over the raw body, every rejection logged and
audited, idempotent by report_id, confined to the provider's own orders."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs

from callcenter.audit.models import AuditEntry
from callcenter.config import ConfigError, Settings
from callcenter.db.base import utcnow
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind, WorkOrderStatus
from callcenter.orders.schemas import Action, ActionPayload
from callcenter.orders.services import CENTRE_TIMEZONE, raise_order
from callcenter.orders.workflow import WorkflowActor, perform
from callcenter.providers import reporting
from callcenter.providers.models import ProviderApiNonce, ProviderReport
from callcenter.users.models import Role
from tests.apiclient import Api

URL = "/api/v1/provider-reports"
RECEIPT = {"summary": "更换水龙头", "result": "completed", "duration_minutes": 40, "satisfaction": 5}


async def _provider_with_key(api: Api, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    status, provider = await api.request("POST", "/api/v1/providers", json={"name": name, "services": ["repair"]})
    assert status == 201, provider
    status, key = await api.request("POST", f"/api/v1/providers/{provider['id']}/api-keys")
    assert status == 201, key
    return provider, key


async def _dispatched_order(api: Api, provider_id: int) -> WorkOrder:
    centre = WorkflowActor(user_id=None, label="审核员", role=Role.SUPERVISOR)
    async with api.db.transaction() as session:
        order = await raise_order(session, kind=WorkOrderKind.SERVICE_REQUEST, actor_label="test", service="repair",
                                  description="厨房水龙头漏水")
        await perform(session, order.id, Action.SUBMIT, actor=centre, version=None, payload=ActionPayload(),
                      tz=CENTRE_TIMEZONE)
        return await perform(session, order.id, Action.DISPATCH, actor=centre, version=None,
                             payload=ActionPayload(provider_id=provider_id), tz=CENTRE_TIMEZONE)


async def _post(api: Api, key: dict[str, Any], body: dict[str, Any] | bytes, *, now: float | None = None,
                nonce: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    signed = reporting.sign_request(key["key_id"], key["secret"], raw, time.time() if now is None else now, nonce)
    response = await api.client.post(URL, data=raw, headers={**signed, "Content-Type": "application/json",
                                                             **(headers or {})})
    return response.status, await response.json()


async def _events(api: Api, order_id: int) -> list[tuple[str, str]]:
    async with api.db.transaction() as session:
        rows = await session.execute(select(WorkOrderEvent.action, WorkOrderEvent.actor_label)
                                     .where(WorkOrderEvent.work_order_id == order_id).order_by(WorkOrderEvent.id))
        return [(action, label) for action, label in rows.all()]


async def _count(api: Api, model: type, *where: Any) -> int:
    async with api.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_the_signature_is_the_documented_hmac() -> None:
    body = b'{"report_id":"r1"}'
    headers = reporting.sign_request("ccpk_0123", "s3cret", body, dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
                                     "n" * 16)
    text = f"POST\n/api/v1/provider-reports\n1735787045\n{'n' * 16}\n{hashlib.sha256(body).hexdigest()}"
    assert headers == {"X-CC-Key-Id": "ccpk_0123", "X-CC-Timestamp": "1735787045", "X-CC-Nonce": "n" * 16,
                       "X-CC-Signature": hmac.new(b"s3cret", text.encode(), hashlib.sha256).hexdigest()}
    assert len(reporting.sign_request("k", "s", body, 0)["X-CC-Nonce"]) == 24  # a fresh random one by default


async def test_signed_reports_take_the_providers_steps_once(api: Api) -> None:
    provider, key = await _provider_with_key(api, "和平维修队")
    status, person = await api.request("POST", f"/api/v1/providers/{provider['id']}/staff",
                                       json={"name": "张师傅", "skills": ["repair"]})
    assert status == 201
    order = await _dispatched_order(api, provider["id"])
    label = "provider-api:和平维修队"

    accept = {"report_id": "r-accept", "work_order_number": order.number, "action": "accept"}
    status, first = await _post(api, key, accept)
    assert status == 200, first
    assert (first["work_order_id"], first["action"], first["status"]) == (order.id, "accept", "accepted")
    # The provider's retry (new nonce, new timestamp, valid signature) gets the same answer and changes nothing.
    status, again = await _post(api, key, accept, now=time.time() + 5)
    assert (status, again) == (200, first)
    assert (await _events(api, order.id))[-1] == ("accept", label)
    assert [a for a, _ in await _events(api, order.id)].count("accept") == 1
    # The same report_id with another body is a mistake, not a retry.
    status, answer = await _post(api, key, {**accept, "action": "decline", "reason": "没人"})
    assert status == 409 and answer["error"]["code"] == "report_id_reused"

    steps = [
        ({"action": "assign", "staff_id": person["id"]}, "accepted"),
        ({"action": "start", "at": utcnow().isoformat(), "latitude": 34.75, "longitude": 113.62}, "in_service"),
        ({"action": "finish", "receipt": RECEIPT}, "service_done"),
    ]
    for number, (step, expected) in enumerate(steps):
        status, body = await _post(api, key, {"report_id": f"r-{number}", "work_order_id": order.id, **step})
        assert status == 200 and body["status"] == expected, body
    assert [a for a, _ in await _events(api, order.id)][-4:] == ["accept", "assign", "start", "finish"]
    async with api.db.transaction() as session:
        stored = await session.get(WorkOrder, order.id)
        assert stored is not None and stored.staff_id == person["id"] and stored.satisfaction == 5
        assert stored.receipt is not None and stored.receipt["summary"] == "更换水龙头"

    # A refused step is an outcome too: stored, and answered again to a retry, still changing nothing.
    late = {"report_id": "r-late", "work_order_id": order.id, "action": "accept"}
    status, refused = await _post(api, key, late)
    assert status == 409 and refused["error"]["code"] == "illegal_transition", refused
    status, again = await _post(api, key, late)
    assert (status, again) == (409, refused)
    assert await _count(api, ProviderReport) == 5
    async with api.db.transaction() as session:
        report = await session.scalar(select(ProviderReport).where(ProviderReport.report_id == "r-late"))
        assert report is not None and (report.status_code, report.work_order_id) == (409, order.id)


async def test_a_report_on_another_providers_order_is_not_found(api: Api) -> None:
    ours, key = await _provider_with_key(api, "和平维修队")
    theirs, _ = await _provider_with_key(api, "幸福维修队")
    order = await _dispatched_order(api, theirs["id"])
    for number, reference in enumerate([{"work_order_id": order.id}, {"work_order_number": order.number},
                                        {"work_order_id": 99999}]):
        status, answer = await _post(api, key, {"report_id": f"x-{number}", "action": "accept", **reference})
        assert status == 404 and answer["error"]["code"] == "not_found", answer
        assert "幸福" not in answer["error"]["message"]
    async with api.db.transaction() as session:
        stored = await session.get(WorkOrder, order.id)
        assert stored is not None and stored.status is WorkOrderStatus.DISPATCHED
        reports = (await session.scalars(select(ProviderReport))).all()
        assert [(r.provider_id, r.status_code, r.work_order_id) for r in reports] == [(ours["id"], 404, None)] * 3


async def test_rejections_are_refused_logged_and_audited(api: Api) -> None:
    provider, key = await _provider_with_key(api, "和平维修队")
    order = await _dispatched_order(api, provider["id"])
    body = {"report_id": "r1", "work_order_id": order.id, "action": "accept"}
    raw = json.dumps(body).encode()
    now = time.time()
    signed = reporting.sign_request(key["key_id"], key["secret"], raw, now, "nonce-0000000001")

    async def send(data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        response = await api.client.post(URL, data=data, headers={**headers, "Content-Type": "application/json"})
        return response.status, await response.json()

    tampered = raw.replace(b"accept", b"decline")
    without_nonce = {k: v for k, v in signed.items() if k != "X-CC-Nonce"}
    cases: list[tuple[bytes, dict[str, str], str]] = [
        (tampered, signed, "invalid_signature"),  # the body is not what was signed
        (raw, {**signed, "X-CC-Signature": "0" * 64}, "invalid_signature"),
        (raw, without_nonce, "invalid_signature"),
        (raw, {**signed, "X-CC-Nonce": "short"}, "invalid_signature"),
        (raw, {**signed, "X-CC-Key-Id": "ccpk_unknown"}, "unknown_key"),
        # A minute past the 300 s window: the requests before these take time, and a timestamp only 1 s ahead
        # had come back within the window by the time it was sent on a busy machine.
        (raw, reporting.sign_request(key["key_id"], key["secret"], raw, now - 360, "nonce-0000000002"),
         "stale_timestamp"),
        (raw, reporting.sign_request(key["key_id"], key["secret"], raw, now + 360, "nonce-0000000003"),
         "stale_timestamp"),
    ]
    with capture_logs() as logs:
        for data, headers, code in cases:
            status, answer = await send(data, headers)
            assert status == 401 and answer["error"]["code"] == code, (headers, answer)
        # Accepted once; the very same request again is a replay.
        status, accepted = await send(raw, signed)
        assert status == 200, accepted
        status, answer = await send(raw, signed)
        assert status == 401 and answer["error"]["code"] == "replayed_nonce"
        status, _ = await api.request("DELETE", f"/api/v1/providers/{provider['id']}/api-keys/{key['key_id']}")
        assert status == 200
        status, answer = await _post(api, key, {**body, "report_id": "r2"})
        assert status == 401 and answer["error"]["code"] == "revoked_key"
    expected = [code for _, _, code in cases] + ["replayed_nonce", "revoked_key"]
    warnings = [entry for entry in logs if entry["event"] == "provider_api.rejected"]
    assert [w["reason"] for w in warnings] == expected
    assert all(w["log_level"] == "warning" for w in warnings)
    async with api.db.transaction() as session:
        audits = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "provider_api.rejected")
                                        .order_by(AuditEntry.id))).all()
    assert [a.details["reason"] for a in audits] == expected
    assert [a.target_id for a in audits] == [key["key_id"]] * 4 + ["ccpk_unknown"] + [key["key_id"]] * 4
    # Only the one good request did anything.
    assert [a for a, _ in await _events(api, order.id)].count("accept") == 1
    assert await _count(api, ProviderReport) == 1


async def test_a_signed_but_malformed_body_is_refused_and_keeps_nothing_but_its_nonce(api: Api) -> None:
    _, key = await _provider_with_key(api, "和平维修队")
    status, answer = await _post(api, key, b"{not json")
    assert status == 400 and answer["error"]["code"] == "malformed_json"
    status, answer = await _post(api, key, {"report_id": "r1", "action": "accept"})
    assert status == 422 and "work_order_id" in answer["error"]["message"]
    status, answer = await _post(api, key, {"report_id": "r1", "work_order_id": 1, "action": "close"})
    assert status == 422 and answer["error"]["field"] == "action"
    assert await _count(api, ProviderReport) == 0
    assert await _count(api, ProviderApiNonce) == 3  # spent: the same signed request again is a replay


async def test_nonces_are_kept_for_twice_the_window_then_purged(api: Api) -> None:
    _, key = await _provider_with_key(api, "和平维修队")
    body = b"{}"
    start = utcnow()
    async with api.db.transaction() as session:
        headers = reporting.sign_request(key["key_id"], key["secret"], body, start, "old-nonce-0000001")
        await reporting.verify(session, headers, body, now=start, max_skew=60)
    async with api.db.transaction() as session:
        later = start + dt.timedelta(seconds=119)
        headers = reporting.sign_request(key["key_id"], key["secret"], body, later, "new-nonce-0000001")
        await reporting.verify(session, headers, body, now=later, max_skew=60)
    assert await _count(api, ProviderApiNonce) == 2
    async with api.db.transaction() as session:
        latest = start + dt.timedelta(seconds=121)
        headers = reporting.sign_request(key["key_id"], key["secret"], body, latest, "third-nonce-00001")
        await reporting.verify(session, headers, body, now=latest, max_skew=60)
        # A smaller window (CC_PROVIDER_API_MAX_SKEW) refuses a timestamp the default one would take.
        headers = reporting.sign_request(key["key_id"], key["secret"], body, latest - dt.timedelta(seconds=61),
                                         "fourth-nonce-0001")
        with pytest.raises(reporting.SignatureRejected) as rejected:
            await reporting.verify(session, headers, body, now=latest, max_skew=60)
        assert rejected.value.reason is reporting.Rejection.STALE_TIMESTAMP
    async with api.db.transaction() as session:
        nonces = (await session.scalars(select(ProviderApiNonce.nonce).order_by(ProviderApiNonce.id))).all()
    assert nonces == ["new-nonce-0000001", "third-nonce-00001"]


def test_the_window_is_configurable_within_bounds() -> None:
    assert Settings.from_env({}).provider_api_max_skew == 300
    assert Settings.from_env({"CC_PROVIDER_API_MAX_SKEW": "120"}).provider_api_max_skew == 120
    with pytest.raises(ConfigError, match="CC_PROVIDER_API_MAX_SKEW"):
        Settings.from_env({"CC_PROVIDER_API_MAX_SKEW": "5"})


async def test_the_report_route_is_in_the_openapi_document_with_its_headers(api: Api) -> None:
    status, document = await api.request("GET", "/api/v1/openapi.json", role=None)
    assert status == 200
    operation = document["paths"][URL]["post"]
    assert operation["security"] == []
    assert [p["name"] for p in operation["parameters"] if p["in"] == "header"] == [
        "X-CC-Key-Id", "X-CC-Timestamp", "X-CC-Nonce", "X-CC-Signature"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("ProviderReportIn")
    assert {"401", "404", "409", "422"} <= set(operation["responses"])


async def test_a_nonce_is_spent_even_when_the_signed_request_then_fails(api: Api) -> None:
    provider, key = await _provider_with_key(api, "示范维修队（一次性随机数）")
    order = await _dispatched_order(api, provider["id"])
    bad = {"report_id": "bad-1", "work_order_id": order.id, "action": "teleport"}
    now, nonce = time.time(), "n0nce-spent-once-0001"
    status, body = await _post(api, key, bad, now=now, nonce=nonce)
    assert status == 422, body  # authenticated, but the body is not a report
    status, body = await _post(api, key, bad, now=now, nonce=nonce)  # the very same signed request again
    assert status == 401 and body["error"]["code"] == "replayed_nonce"
    assert await _count(api, ProviderApiNonce, ProviderApiNonce.nonce == nonce) == 1
