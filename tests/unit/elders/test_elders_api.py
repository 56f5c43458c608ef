"""/api/v1/elders over HTTP against a real database: happy paths, every error class, nothing half-written."""

from __future__ import annotations

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.elders.models import Contact, Elder
from callcenter.users.models import Role
from tests.apiclient import Api

ELDER = {
    "full_name": "张桂兰", "gender": "女", "birth_date": "1941-03-08", "id_number": "11010519491231002X",
    "phone": "177 0000 0101", "address": "示范市东城区和平社区 3 号楼", "community": "和平社区", "district": "东城区",
    "latitude": 34.035, "longitude": 113.852, "living_situation": "alone", "care_level": 3,
    "conditions": ["高血压"], "medications": ["氨氯地平 5mg"], "allergies": ["青霉素"], "language": "zh-CN",
    "contacts": [
        {"role": "relative", "name": "李建国", "phone": "17700000201", "priority": 1, "relationship": "儿子"},
        {"role": "doctor", "name": "王医生", "phone": "0371-65123456"},
    ],
}


async def _create(api: Api, **changes: object) -> dict:
    status, body = await api.request("POST", "/api/v1/elders", role=Role.AGENT, json={**ELDER, **changes})
    assert status == 201, body
    return body


async def test_create_read_and_list(api: Api) -> None:
    created = await _create(api)
    assert created["phone"] == "17700000101"
    assert (created["id_number"], created["masked_fields"]) == ("1101**********002X", ["id_number"])
    assert [(c["role"], c["priority"], c["phone"], c["relationship"]) for c in created["contacts"]] == [
        ("relative", 1, "17700000201", "儿子"), ("doctor", 1, "037165123456", None)]
    status, read = await api.request("GET", f"/api/v1/elders/{created['id']}", role=Role.AUDITOR)
    assert status == 200 and read == created
    status, page = await api.request("GET", "/api/v1/elders", role=Role.SUPERVISOR)
    assert status == 200 and page["total"] == 1
    assert page["items"] == [{
        "id": created["id"], "full_name": "张桂兰", "gender": "女", "birth_year": 1941, "community": "和平社区",
        "district": "东城区", "phone_masked": "177****0101", "id_number_masked": "1101**********002X",
        "care_level": 3, "living_situation": "alone"}]
    async with api.db.transaction() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "elder.create"))
        assert entry.target_id == str(created["id"]) and entry.source_ip == "127.0.0.1"


async def test_search_by_name_phone_and_community_with_paging(api: Api) -> None:
    first = await _create(api)
    second = await _create(api, full_name="刘德福", id_number=None, phone="17700000102", community="幸福社区",
                           address="幸福社区 7 号楼",
                           contacts=[{"role": "relative", "name": "刘晓燕", "phone": "17700000203"}])
    for _ in range(3):
        await _create(api, full_name="王某", id_number=None, phone=None, address=None, community="幸福社区",
                      contacts=[])

    async def ids(**params: str) -> list[int]:
        status, page = await api.request("GET", "/api/v1/elders", params=params)
        assert status == 200, page
        return [e["id"] for e in page["items"]]

    assert await ids(q="德福") == [second["id"]]
    assert await ids(q="和平社区 3") == [first["id"]]  # part of the address
    assert await ids(phone="177-0000-0102") == [second["id"]]
    assert await ids(phone="17700000203") == [second["id"]]  # a contact's number finds the elder
    assert await ids(community="和平社区", q="王") == []
    assert await ids(community="和平社区") == [first["id"]]
    assert await ids(q="%") == []  # LIKE wildcards are literal
    status, page = await api.request("GET", "/api/v1/elders", params={"q": "王", "limit": "2", "offset": "1"})
    assert status == 200
    assert (page["total"], len(page["items"]), page["limit"], page["offset"]) == (3, 2, 2, 1)


async def test_patch_changes_only_given_fields_and_null_clears(api: Api) -> None:
    created = await _create(api)
    status, patched = await api.request("PATCH", f"/api/v1/elders/{created['id']}", role=Role.AGENT,
                                        json={"care_level": 4, "phone": None, "notes": "每周二血透"})
    assert status == 200, patched
    assert (patched["care_level"], patched["phone"], patched["notes"]) == (4, None, "每周二血透")
    assert patched["full_name"] == created["full_name"] and patched["contacts"] == created["contacts"]
    assert patched["updated_at"] >= created["updated_at"]


async def test_add_and_list_contacts(api: Api) -> None:
    created = await _create(api)
    status, contact = await api.request("POST", f"/api/v1/elders/{created['id']}/contacts", role=Role.AGENT,
                                        json={"role": "relative", "name": "李秀梅", "phone": "17700000202",
                                              "priority": 2, "relationship": "女儿"})
    assert status == 201, contact
    assert contact["elder_id"] == created["id"] and contact["relationship"] == "女儿"
    status, listing = await api.request("GET", f"/api/v1/elders/{created['id']}/contacts", role=Role.AUDITOR)
    assert status == 200
    assert sorted((c["role"], c["priority"]) for c in listing["items"]) == [("doctor", 1), ("relative", 1),
                                                                           ("relative", 2)]


async def test_malformed_json_is_400_and_writes_nothing(api: Api) -> None:
    for raw in ['{"full_name": "张"', "", "[1, 2", '{"full_name": NaN}', b"\xff\xfe"]:
        status, body = await api.request("POST", "/api/v1/elders", data=raw)
        assert status == 400, raw
        assert body["error"]["code"] == "malformed_json"
    assert await api.count(Elder) == 0


async def test_schema_violations_are_422_naming_the_field_and_write_nothing(api: Api) -> None:
    cases = {
        "phone": {"phone": "123456"},
        "contacts.1.phone": {"contacts": [ELDER["contacts"][0], {"role": "doctor", "name": "王", "phone": "99"}]},
        "contacts.0.role": {"contacts": [{"role": "neighbour", "name": "x", "phone": "120"}]},
        "id_number": {"id_number": "110105194912310021"},
        "care_level": {"care_level": 6},
        "latitude": {"latitude": 91},
        "longitude": {"longitude": -180.5},
        "language": {"language": "fr"},
        "full_name": {"full_name": "   "},
        "birth_date": {"birth_date": "2999-01-01"},
        "surname": {"surname": "张"},
        "conditions.0": {"conditions": [1]},
    }
    for field, change in cases.items():
        status, body = await api.request("POST", "/api/v1/elders", json={**ELDER, **change})
        assert status == 422, (field, body)
        assert body["error"]["code"] == "invalid"
        assert body["error"]["field"] == field, body
    status, body = await api.request("POST", "/api/v1/elders", json={"care_level": "3"})
    assert status == 422 and {d["field"] for d in body["error"]["details"]} == {"full_name", "care_level"}
    assert await api.count(Elder) == 0 and await api.count(Contact) == 0


async def test_patch_rejects_null_for_required_fields(api: Api) -> None:
    created = await _create(api)
    for field in ("full_name", "language", "conditions"):
        status, body = await api.request("PATCH", f"/api/v1/elders/{created['id']}", json={field: None})
        assert status == 422 and body["error"]["field"] == field, body


async def test_unknown_elder_is_404(api: Api) -> None:
    for method, path, body in [("GET", "/api/v1/elders/999", None), ("PATCH", "/api/v1/elders/999", {"notes": "x"}),
                               ("GET", "/api/v1/elders/999/contacts", None),
                               ("POST", "/api/v1/elders/999/contacts",
                                {"role": "relative", "name": "x", "phone": "13800138000"})]:
        status, answer = await api.request(method, path, json=body)
        assert status == 404, (method, path)
        assert answer["error"] == {"code": "not_found", "message": "no elder 999", "field": "id"}
    assert await api.count(Contact) == 0


async def test_conflicts_are_409_and_leave_no_rows(api: Api) -> None:
    created = await _create(api)
    elders, contacts, audit = await api.count(Elder), await api.count(Contact), await api.count(AuditEntry)
    status, body = await api.request("POST", f"/api/v1/elders/{created['id']}/contacts",
                                      json={"role": "relative", "name": "又一个", "phone": "13800138000",
                                            "priority": 1})
    assert status == 409 and body["error"]["field"] == "priority"
    status, body = await api.request("POST", "/api/v1/elders", json=ELDER)  # same resident ID
    assert status == 409 and body["error"]["field"] == "id_number"
    twice = [ELDER["contacts"][0], {**ELDER["contacts"][0], "name": "另一个"}]
    status, body = await api.request("POST", "/api/v1/elders", json={**ELDER, "id_number": None, "contacts": twice})
    assert status == 409 and body["error"]["field"] == "contacts.1.priority"
    other = await _create(api, id_number=None, contacts=[])
    status, body = await api.request("PATCH", f"/api/v1/elders/{other['id']}",
                                      json={"id_number": ELDER["id_number"]})
    assert status == 409 and body["error"]["field"] == "id_number"
    assert (await api.count(Elder), await api.count(Contact)) == (elders + 1, contacts)
    assert await api.count(AuditEntry) == audit + 1  # only the successful create of `other`
