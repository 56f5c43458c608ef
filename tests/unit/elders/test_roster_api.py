"""DELETE /api/v1/elders/{id} and the roster import endpoints over HTTP against a real database."""

from __future__ import annotations

import csv
import io

from aiohttp import FormData
from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.calls.models import Call
from callcenter.devices.models import Device, DeviceKind
from callcenter.elders.http import IMPORTS
from callcenter.elders.models import Contact, Elder
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.elders.roster_data import roster, row

ELDER = {"full_name": "赵淑珍", "id_number": row(3)[1], "phone": "17700000301",
         "contacts": [{"role": "relative", "name": "赵明", "phone": "17700000302"}]}


async def _elder(api: Api) -> dict:
    status, body = await api.request("POST", "/api/v1/elders", role=Role.AGENT, json=ELDER)
    assert status == 201, body
    return body


async def test_delete_an_elder_without_history_with_contacts_audited(api: Api) -> None:
    elder = await _elder(api)
    status, body = await api.request("DELETE", f"/api/v1/elders/{elder['id']}", role=Role.AGENT)
    assert status == 403, body  # agents register and edit; deleting a file is for supervisors
    status, body = await api.request("DELETE", f"/api/v1/elders/{elder['id']}", role=Role.SUPERVISOR)
    assert status == 200 and body["id"] == elder["id"] and body["full_name"] == "赵淑珍"
    assert await api.count(Elder) == 0 and await api.count(Contact) == 0
    async with api.db.transaction() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "elder.delete"))
        assert entry.target_id == str(elder["id"])
        assert entry.details == {"full_name": "赵淑珍", "contacts": 1}  # no resident ID in the audit log
    status, body = await api.request("DELETE", f"/api/v1/elders/{elder['id']}", role=Role.SUPERVISOR)
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_an_elder_with_calls_or_devices_cannot_be_deleted(api: Api) -> None:
    elder = await _elder(api)
    async with api.db.transaction() as session:
        session.add_all([Call(linkedid="1700000000.1", elder_id=elder["id"]),
                         Call(linkedid="1700000000.2", elder_id=elder["id"]),
                         Device(kind=DeviceKind.PENDANT, sip_username="sos-77", sip_ha1="0" * 32,
                                elder_id=elder["id"])])
    status, body = await api.request("DELETE", f"/api/v1/elders/{elder['id']}", role=Role.ADMIN)
    assert status == 409 and body["error"]["code"] == "elder_has_history"
    assert "2 call(s), 1 device(s)" in body["error"]["message"]
    assert await api.count(Elder) == 1 and await api.count(Contact) == 1
    async with api.db.transaction() as session:
        assert await session.scalar(select(AuditEntry).where(AuditEntry.action == "elder.delete")) is None


async def _upload(api: Api, data: bytes, *, role: Role = Role.SUPERVISOR, **params: str) -> tuple[int, dict]:
    token = await api.token(role)
    response = await api.client.post("/api/v1/elders/imports", data=data, params=params,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/octet-stream"})
    return response.status, await response.json()


async def _finished(api: Api, import_id: int) -> dict:
    await api.client.app[IMPORTS].wait(import_id)
    status, body = await api.request("GET", f"/api/v1/elders/imports/{import_id}", role=Role.SUPERVISOR)
    assert status == 200, body
    return body


async def test_import_a_raw_csv_body_then_read_progress_counts_and_the_report(api: Api) -> None:
    data = roster(300)
    status, started = await _upload(api, data.csv("gb18030"), filename="花名册.csv")
    assert status == 202, started
    assert started["status"] in ("running", "done") and started["filename"] == "花名册.csv"
    body = await _finished(api, started["id"])
    assert (body["status"], body["total_rows"], body["processed_rows"]) == ("done", 300, 300)
    assert (body["created_count"], body["rejected_count"], body["dry_run"]) == (300 - len(data.bad), len(data.bad),
                                                                                False)
    assert [r["row"] for r in body["rejected_preview"]] == sorted(data.bad)
    assert body["rejected_preview"][0]["errors"] == {"id_number": "the check digit does not match (GB 11643)"}
    assert await api.count(Elder) == 300 - len(data.bad)

    token = await api.token(Role.SUPERVISOR)
    response = await api.client.get(f"/api/v1/elders/imports/{started['id']}/rejected",
                                    headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200 and response.content_type == "text/csv"
    assert "filename*=UTF-8''%E8%8A%B1%E5%90%8D%E5%86%8C-rejected.csv" in response.headers["Content-Disposition"]
    report = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig"))))
    assert report[0][0] == "行号 row" and report[0][-1] == "错误原因 errors"
    assert [int(line[0]) for line in report[1:]] == sorted(data.bad)
    assert report[1][-1].startswith("身份证号: the check digit")


async def test_multipart_dry_run_changes_nothing(api: Api) -> None:
    form = FormData()
    form.add_field("dry_run", "true")
    form.add_field("file", roster(20).xlsx(), filename="roster.xlsx",
                   content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    token = await api.token(Role.ADMIN)
    response = await api.client.post("/api/v1/elders/imports", data=form,
                                     headers={"Authorization": f"Bearer {token}"})
    started = await response.json()
    assert response.status == 202, started
    body = await _finished(api, started["id"])
    assert (body["status"], body["dry_run"], body["created_count"], body["filename"]) == (
        "done", True, 20, "roster.xlsx")
    assert await api.count(Elder) == 0


async def test_a_failed_import_says_why_and_bad_requests_are_refused(api: Api) -> None:
    status, started = await _upload(api, "姓名,电话\r\n王某,17700000001\r\n".encode(), filename="r.csv")
    assert status == 202
    body = await _finished(api, started["id"])
    assert body["status"] == "failed" and "required column missing: 身份证号" in body["error"]

    status, body = await _upload(api, b"x", role=Role.AGENT, filename="r.csv")
    assert status == 403
    status, body = await _upload(api, roster(2).csv())
    assert status == 422 and body["error"]["field"] == "filename"
    status, body = await _upload(api, b"", filename="r.csv")
    assert status == 422 and body["error"]["field"] == "file"
    status, body = await api.request("GET", "/api/v1/elders/imports/999", role=Role.SUPERVISOR)
    assert status == 404
    status, body = await api.request("GET", f"/api/v1/elders/imports/{started['id']}", role=Role.AUDITOR)
    assert status == 403
