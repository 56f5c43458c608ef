"""/api/v1/volunteer-teams and /api/v1/volunteers over HTTP against a real database: the registry, its checks,
the review, service records and feedback in the summary, and pairing that puts the volunteer among the elder's
contacts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.elders.models import Contact
from callcenter.elders.schemas import resident_id_check_digit
from callcenter.users.models import Role
from callcenter.volunteers.models import Volunteer, VolunteerFeedback, VolunteerServiceRecord, VolunteerTeam
from tests.apiclient import Api


def resident_id(first17: str) -> str:
    return first17 + resident_id_check_digit(first17)


VOLUNTEER: dict[str, Any] = {
    "full_name": "陈志强", "phone": "139 0000 0301", "id_number": resident_id("44030419900101123"),
    "community": "和平社区", "skills": ["陪聊", "助浴"],
    "trainings": [{"name": "老年急救", "completed_on": "2024-05-10", "hours": 8}],
    "certificates": [{"name": "养老护理员", "number": "YL-2024-0031", "issued_on": "2024-06-01",
                      "expires_on": "2027-05-31"}],
}


async def _volunteer(api: Api, **changes: object) -> dict:
    status, body = await api.request("POST", "/api/v1/volunteers", role=Role.SUPERVISOR,
                                     json={**VOLUNTEER, **changes})
    assert status == 201, body
    return body


async def _approved(api: Api, **changes: object) -> dict:
    volunteer = await _volunteer(api, **changes)
    status, body = await api.request("POST", f"/api/v1/volunteers/{volunteer['id']}/review",
                                     json={"status": "approved"})
    assert status == 200, body
    return body


async def _elder(api: Api, name: str = "张桂兰") -> int:
    status, body = await api.request("POST", "/api/v1/elders", role=Role.AGENT,
                                     json={"full_name": name, "community": "和平社区",
                                           "contacts": [{"role": "relative", "name": "李建国",
                                                         "phone": "17700000201"}]})
    assert status == 201, body
    return body["id"]


async def _contacts(api: Api, elder_id: int) -> list[tuple[str, str, str, int]]:
    status, body = await api.request("GET", f"/api/v1/elders/{elder_id}/contacts", role=Role.AGENT)
    assert status == 200, body
    return sorted((c["role"], c["name"], c["phone"], c["priority"]) for c in body["items"])


async def test_teams_are_created_listed_read_and_changed(api: Api) -> None:
    status, team = await api.request("POST", "/api/v1/volunteer-teams", role=Role.SUPERVISOR,
                                     json={"name": "和平社区志愿服务队", "leader_name": "周红",
                                           "phone": "0371-6512 3456", "community": "和平社区"})
    assert status == 201, team
    assert (team["phone"], team["review_status"], team["volunteer_count"]) == ("037165123456", "pending", 0)
    await _volunteer(api, team_id=team["id"])
    status, listing = await api.request("GET", "/api/v1/volunteer-teams", role=Role.AGENT)
    assert status == 200 and [(t["id"], t["volunteer_count"]) for t in listing["items"]] == [(team["id"], 1)]
    status, patched = await api.request("PATCH", f"/api/v1/volunteer-teams/{team['id']}",
                                        json={"review_status": "approved", "leader_name": None})
    assert status == 200, patched
    assert (patched["review_status"], patched["leader_name"], patched["name"]) == ("approved", None, team["name"])
    status, read = await api.request("GET", f"/api/v1/volunteer-teams/{team['id']}", role=Role.AUDITOR)
    assert status == 200 and read == patched

    status, body = await api.request("POST", "/api/v1/volunteer-teams", json={"name": "和平社区志愿服务队"})
    assert status == 409 and body["error"]["field"] == "name"
    status, body = await api.request("PATCH", f"/api/v1/volunteer-teams/{team['id']}", json={"name": None})
    assert status == 422 and body["error"]["field"] == "name"
    status, body = await api.request("POST", "/api/v1/volunteer-teams", role=Role.AGENT, json={"name": "另一队"})
    assert status == 403
    status, body = await api.request("GET", "/api/v1/volunteer-teams/999")
    assert status == 404 and body["error"]["field"] == "id"
    assert await api.count(VolunteerTeam) == 1
    async with api.db.transaction() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "volunteer_team")
                                         .order_by(AuditEntry.id))).all()
    assert actions == ["volunteer_team.create", "volunteer_team.update"]


async def test_create_read_and_search_with_paging(api: Api) -> None:
    status, team = await api.request("POST", "/api/v1/volunteer-teams", json={"name": "幸福队"})
    assert status == 201
    created = await _volunteer(api)
    assert (created["phone"], created["review_status"], created["team_name"]) == ("13900000301", "pending", None)
    assert created["trainings"] == VOLUNTEER["trainings"] and created["certificates"] == VOLUNTEER["certificates"]
    assert created["summary"] == {"service_records": 0, "service_hours": 0, "evaluations": 0,
                                  "average_rating": None, "complaints": 0, "awards": 0, "paired_elders": 0}
    status, read = await api.request("GET", f"/api/v1/volunteers/{created['id']}", role=Role.AUDITOR)
    assert status == 200 and read == {**created, "id_number": "4403" + "*" * 10 + created["id_number"][-4:],
                                      "masked_fields": ["id_number"]}
    second = await _approved(api, full_name="刘芳", phone="13900000302", id_number=None, community="幸福社区",
                             team_id=team["id"])
    assert second["team_name"] == "幸福队"
    for index in range(3):
        await _volunteer(api, full_name=f"王{index}", phone=f"1390000031{index}", id_number=None,
                         community="幸福社区")

    async def ids(**params: str) -> list[int]:
        status, page = await api.request("GET", "/api/v1/volunteers", role=Role.AGENT, params=params)
        assert status == 200, page
        return [v["id"] for v in page["items"]]

    assert await ids(name="志强") == [created["id"]]
    assert await ids(phone="139-0000-0302") == [second["id"]]
    assert await ids(community="和平社区") == [created["id"]]
    assert await ids(team_id=str(team["id"])) == [second["id"]]
    assert await ids(review_status="approved") == [second["id"]]
    assert await ids(name="%") == []  # LIKE wildcards are literal
    status, page = await api.request("GET", "/api/v1/volunteers",
                                     params={"community": "幸福社区", "limit": "2", "offset": "1"})
    assert status == 200
    assert (page["total"], len(page["items"]), page["limit"], page["offset"]) == (4, 2, 2, 1)
    status, body = await api.request("GET", "/api/v1/volunteers", params={"phone": "12"})
    assert status == 422 and body["error"]["field"] == "phone"


async def test_the_resident_id_is_masked_in_lists_and_for_those_who_do_not_manage_volunteers(api: Api) -> None:
    created = await _volunteer(api)
    full = VOLUNTEER["id_number"]
    masked = full[:4] + "*" * 10 + full[-4:]
    assert (created["id_number"], created["masked_fields"]) == (full, [])  # its registrar typed it
    for role, expected in ((Role.SUPERVISOR, full), (Role.ADMIN, full), (Role.AGENT, masked),
                           (Role.AUDITOR, masked)):
        status, read = await api.request("GET", f"/api/v1/volunteers/{created['id']}", role=role)
        assert status == 200 and read["id_number"] == expected, role
        assert read["masked_fields"] == ([] if expected == full else ["id_number"])
        status, page = await api.request("GET", "/api/v1/volunteers", role=role)
        assert status == 200 and [v["id_number"] for v in page["items"]] == [masked], role
    status, patched = await api.request("PATCH", f"/api/v1/volunteers/{created['id']}", role=Role.SUPERVISOR,
                                        json={"notes": "周末有空"})
    assert status == 200 and patched["id_number"] == full  # the editor gets back what it may send


async def test_bad_input_is_422_naming_the_field_and_writes_nothing(api: Api) -> None:
    wrong_check_digit = VOLUNTEER["id_number"][:17] + ("0" if VOLUNTEER["id_number"][17] != "0" else "1")
    cases = {
        "id_number": {"id_number": wrong_check_digit},
        "phone": {"phone": "123456"},
        "full_name": {"full_name": "  "},
        "trainings.0.completed_on": {"trainings": [{"name": "急救", "completed_on": "2999-01-01", "hours": 2}]},
        "trainings.0.hours": {"trainings": [{"name": "急救", "completed_on": "2024-01-01", "hours": 0}]},
        "certificates.0.expires_on": {"certificates": [{"name": "证", "issued_on": "2024-01-01",
                                                        "expires_on": "2023-12-31"}]},
        "certificates.0.issued_on": {"certificates": [{"name": "证"}]},
        "review_status": {"review_status": "approved"},  # only the review action sets it
        "team_id": {"team_id": 999},  # no such team
    }
    for field, change in cases.items():
        status, body = await api.request("POST", "/api/v1/volunteers", json={**VOLUNTEER, **change})
        assert status == 422, (field, body)
        assert body["error"]["code"] == "invalid" and body["error"]["field"] == field, body
    assert await api.count(Volunteer) == 0 and await api.count(AuditEntry) == 0

    created = await _volunteer(api)
    status, body = await api.request("POST", "/api/v1/volunteers", json={**VOLUNTEER, "phone": "13900000399"})
    assert status == 409 and body["error"]["field"] == "id_number"  # the same person twice
    for field in ("full_name", "phone", "trainings"):
        status, body = await api.request("PATCH", f"/api/v1/volunteers/{created['id']}", json={field: None})
        assert status == 422 and body["error"]["field"] == field, body
    status, body = await api.request("PATCH", f"/api/v1/volunteers/{created['id']}",
                                     json={"id_number": wrong_check_digit})
    assert status == 422 and body["error"]["field"] == "id_number"
    assert await api.count(Volunteer) == 1


async def test_patch_changes_trainings_certificates_and_clears_with_null(api: Api) -> None:
    created = await _volunteer(api)
    trainings = [*VOLUNTEER["trainings"], {"name": "认知症照护", "completed_on": "2025-03-02", "hours": 12.5}]
    status, patched = await api.request("PATCH", f"/api/v1/volunteers/{created['id']}", role=Role.SUPERVISOR,
                                        json={"trainings": trainings, "certificates": [], "community": None,
                                              "skills": ["理发"]})
    assert status == 200, patched
    assert patched["trainings"] == trainings and patched["certificates"] == []
    assert (patched["community"], patched["skills"], patched["phone"]) == (None, ["理发"], created["phone"])
    assert patched["updated_at"] >= created["updated_at"]
    status, _ = await api.request("PATCH", f"/api/v1/volunteers/{created['id']}", role=Role.AGENT,
                                  json={"notes": "x"})
    assert status == 403
    async with api.db.transaction() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "volunteer.update"))
    assert entry is not None and entry.details == {"fields": ["certificates", "community", "skills", "trainings"]}


async def test_review_records_the_reviewer_and_time_and_refusals_need_a_reason(api: Api) -> None:
    reviewer = await api.user(Role.SUPERVISOR, username="review-lead")
    token = await api.token_for(reviewer)
    created = await _volunteer(api)
    status, body = await api.request("POST", f"/api/v1/volunteers/{created['id']}/review", token=token,
                                     json={"status": "rejected"})
    assert status == 422 and body["error"]["field"] == "note"
    status, body = await api.request("POST", f"/api/v1/volunteers/{created['id']}/review", token=token,
                                     json={"status": "pending"})
    assert status == 422 and body["error"]["field"] == "status"
    status, body = await api.request("POST", f"/api/v1/volunteers/{created['id']}/review", role=Role.AUDITOR,
                                     json={"status": "approved"})
    assert status == 403
    status, reviewed = await api.request("POST", f"/api/v1/volunteers/{created['id']}/review", token=token,
                                         json={"status": "approved", "note": "材料齐全"})
    assert status == 200, reviewed
    assert (reviewed["review_status"], reviewed["reviewed_by_id"], reviewed["reviewed_by"],
            reviewed["review_note"]) == ("approved", reviewer.id, "review-lead", "材料齐全")
    assert reviewed["reviewed_at"] is not None
    async with api.db.transaction() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "volunteer.review"))
    assert entry is not None and entry.actor_id == reviewer.id and entry.target_id == str(created["id"])
    assert entry.details == {"status": "approved", "previous": "pending"}


async def test_pairing_puts_the_volunteer_among_the_elders_contacts_and_unpairing_removes_it(api: Api) -> None:
    volunteer = await _approved(api)
    elder_id = await _elder(api)
    path = f"/api/v1/volunteers/{volunteer['id']}/pairings"
    status, pairing = await api.request("POST", path, role=Role.SUPERVISOR, json={"elder_id": elder_id})
    assert status == 201, pairing
    assert (pairing["elder_id"], pairing["elder_name"], pairing["priority"]) == (elder_id, "张桂兰", 1)
    assert await _contacts(api, elder_id) == [("relative", "李建国", "17700000201", 1),
                                             ("volunteer", "陈志强", "13900000301", 1)]
    _, contacts = await api.request("GET", f"/api/v1/elders/{elder_id}/contacts", role=Role.AGENT)
    assert [c["volunteer_id"] for c in contacts["items"]] == [None, volunteer["id"]]  # links back
    status, body = await api.request("POST", path, json={"elder_id": elder_id})
    assert status == 409 and body["error"]["code"] == "already_paired"
    status, body = await api.request("POST", path, json={"elder_id": 999})
    assert status == 422 and body["error"]["field"] == "elder_id"
    status, body = await api.request("POST", path, role=Role.AGENT, json={"elder_id": elder_id})
    assert status == 403

    # A second volunteer comes after the first unless told otherwise; a taken priority is a conflict.
    other = await _approved(api, full_name="刘芳", phone="13900000302", id_number=None)
    other_path = f"/api/v1/volunteers/{other['id']}/pairings"
    status, body = await api.request("POST", other_path, json={"elder_id": elder_id, "priority": 1})
    assert status == 409 and body["error"]["field"] == "priority"
    status, second = await api.request("POST", other_path, json={"elder_id": elder_id})
    assert status == 201 and second["priority"] == 2

    # A new name and number follow the volunteer into the elder's contacts.
    status, _ = await api.request("PATCH", f"/api/v1/volunteers/{volunteer['id']}",
                                  json={"full_name": "陈志刚", "phone": "+86 139 0000 0399"})
    assert status == 200
    assert ("volunteer", "陈志刚", "13900000399", 1) in await _contacts(api, elder_id)
    status, listing = await api.request("GET", path, role=Role.AUDITOR)
    assert status == 200 and [p["elder_id"] for p in listing["items"]] == [elder_id]
    status, read = await api.request("GET", f"/api/v1/volunteers/{volunteer['id']}")
    assert read["summary"]["paired_elders"] == 1

    status, remaining = await api.request("DELETE", f"{path}/{elder_id}", role=Role.SUPERVISOR)
    assert status == 200 and remaining == {"items": []}
    assert await _contacts(api, elder_id) == [("relative", "李建国", "17700000201", 1),
                                             ("volunteer", "刘芳", "13900000302", 2)]
    status, body = await api.request("DELETE", f"{path}/{elder_id}")
    assert status == 404 and body["error"]["field"] == "elder_id"
    async with api.db.transaction() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "volunteer",
                                                                         AuditEntry.target_id == str(volunteer["id"]))
                                         .order_by(AuditEntry.id))).all()
    assert actions == ["volunteer.create", "volunteer.review", "volunteer.pair", "volunteer.update",
                       "volunteer.unpair"]


async def test_only_approved_volunteers_are_paired_and_suspension_unpairs(api: Api) -> None:
    elder_id = await _elder(api)
    pending = await _volunteer(api)
    status, body = await api.request("POST", f"/api/v1/volunteers/{pending['id']}/pairings",
                                     json={"elder_id": elder_id})
    assert status == 409 and body["error"]["code"] == "not_approved"
    status, rejected = await api.request("POST", f"/api/v1/volunteers/{pending['id']}/review",
                                         json={"status": "rejected", "note": "未提供无犯罪记录证明"})
    assert status == 200 and rejected["review_status"] == "rejected"
    status, body = await api.request("POST", f"/api/v1/volunteers/{pending['id']}/pairings",
                                     json={"elder_id": elder_id})
    assert status == 409 and body["error"]["code"] == "not_approved"
    assert [c[0] for c in await _contacts(api, elder_id)] == ["relative"]

    approved = await _approved(api, full_name="刘芳", phone="13900000302", id_number=None)
    status, _ = await api.request("POST", f"/api/v1/volunteers/{approved['id']}/pairings",
                                  json={"elder_id": elder_id})
    assert status == 201
    status, suspended = await api.request("POST", f"/api/v1/volunteers/{approved['id']}/review",
                                          json={"status": "suspended", "note": "投诉核查中"})
    assert status == 200 and suspended["summary"]["paired_elders"] == 0
    assert [c[0] for c in await _contacts(api, elder_id)] == ["relative"]  # no agent calls a suspended volunteer
    async with api.db.transaction() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "volunteer.review",
                                                              AuditEntry.target_id == str(approved["id"]))
                                     .order_by(AuditEntry.id.desc()))
    assert entry is not None and entry.details["unpaired_elders"] == [elder_id]


async def test_service_records_and_feedback_make_the_summary(api: Api) -> None:
    elder_id = await _elder(api)
    pending = await _volunteer(api, id_number=None, phone="13900000388")
    status, body = await api.request("POST", f"/api/v1/volunteers/{pending['id']}/service-records",
                                     json={"served_on": "2025-01-02", "hours": 2, "description": "探访"})
    assert status == 409 and body["error"]["code"] == "not_approved"

    volunteer = await _approved(api)
    base = f"/api/v1/volunteers/{volunteer['id']}"
    for served_on, hours in (("2025-03-01", 2), ("2025-03-08", 1.5)):
        status, row = await api.request("POST", f"{base}/service-records", role=Role.SUPERVISOR,
                                        json={"served_on": served_on, "hours": hours, "description": "上门陪聊",
                                              "elder_id": elder_id})
        assert status == 201, row
    for change, field in (({"hours": 25}, "hours"), ({"served_on": "2999-01-01"}, "served_on"),
                          ({"description": " "}, "description"), ({"elder_id": 999}, "elder_id")):
        status, body = await api.request("POST", f"{base}/service-records",
                                         json={"served_on": "2025-03-09", "hours": 1, "description": "x", **change})
        assert status == 422 and body["error"]["field"] == field, (field, body)
    status, records = await api.request("GET", f"{base}/service-records", role=Role.AGENT)
    assert status == 200 and records["total"] == 2
    assert [r["served_on"] for r in records["items"]] == ["2025-03-08", "2025-03-01"]  # latest first

    feedback = [
        {"kind": "evaluation", "rating": 5, "text": "耐心细致", "given_on": "2025-03-02", "elder_id": elder_id},
        {"kind": "evaluation", "rating": 4, "text": "准时", "given_on": "2025-03-09"},
        {"kind": "complaint", "text": "迟到半小时", "given_on": "2025-03-10"},
        {"kind": "award", "text": "2025 年度优秀志愿者", "given_on": "2025-03-11"},
    ]
    for item in feedback:
        status, row = await api.request("POST", f"{base}/feedback", json=item)
        assert status == 201, row
    for bad in ({"kind": "evaluation", "text": "x", "given_on": "2025-03-01"},
                {"kind": "evaluation", "rating": 6, "text": "x", "given_on": "2025-03-01"},
                {"kind": "complaint", "rating": 2, "text": "x", "given_on": "2025-03-01"}):
        status, body = await api.request("POST", f"{base}/feedback", json=bad)
        assert status == 422 and body["error"]["field"] == "rating", (bad, body)
    status, complaints = await api.request("GET", f"{base}/feedback", role=Role.AUDITOR,
                                           params={"kind": "complaint"})
    assert status == 200 and [f["text"] for f in complaints["items"]] == ["迟到半小时"]

    status, read = await api.request("GET", base)
    assert status == 200
    assert read["summary"] == {"service_records": 2, "service_hours": 3.5, "evaluations": 2, "average_rating": 4.5,
                               "complaints": 1, "awards": 1, "paired_elders": 0}
    status, page = await api.request("GET", "/api/v1/volunteers", params={"review_status": "approved"})
    assert status == 200 and page["items"][0]["summary"] == read["summary"]
    assert (await api.count(VolunteerServiceRecord), await api.count(VolunteerFeedback)) == (2, 4)


async def test_unknown_volunteer_is_404_everywhere(api: Api) -> None:
    elder_id = await _elder(api)
    for method, path, body in [
        ("GET", "/api/v1/volunteers/999", None), ("PATCH", "/api/v1/volunteers/999", {"notes": "x"}),
        ("POST", "/api/v1/volunteers/999/review", {"status": "approved"}),
        ("GET", "/api/v1/volunteers/999/service-records", None),
        ("POST", "/api/v1/volunteers/999/service-records",
         {"served_on": "2025-01-01", "hours": 1, "description": "x"}),
        ("GET", "/api/v1/volunteers/999/feedback", None),
        ("POST", "/api/v1/volunteers/999/feedback", {"kind": "award", "text": "x", "given_on": "2025-01-01"}),
        ("GET", "/api/v1/volunteers/999/pairings", None),
        ("POST", "/api/v1/volunteers/999/pairings", {"elder_id": elder_id}),
        ("DELETE", f"/api/v1/volunteers/999/pairings/{elder_id}", None),
    ]:
        status, answer = await api.request(method, path, json=body)
        assert status == 404, (method, path, answer)
        assert answer["error"] == {"code": "not_found", "message": "no volunteer 999", "field": "id"}
    assert await api.count(Contact) == 1  # the elder's relative only
