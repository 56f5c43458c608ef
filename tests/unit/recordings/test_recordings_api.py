"""/api/v1/recordings: who may list and play what, byte ranges for players, and every play on the audit trail —
the recording's own, and for an elder's call, the elder's file's."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.calls.models import Call, Disposition
from callcenter.db.base import utcnow
from callcenter.elders.models import Elder
from callcenter.recordings.access import Grant, GrantSigner
from callcenter.recordings.models import Recording
from callcenter.recordings.storage import LocalRecordingStore
from callcenter.users.models import Role, User
from tests.apiclient import Api

AUDIO = bytes(range(256)) * 40  # 10 240 bytes standing in for an Ogg file
T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


async def _seed(api: Api, tmp_path: Path) -> tuple[int, int, int]:
    """Two recordings: one of a call the agent answered, one of another agent's call. Returns (agent's call,
    agent's recording, other recording)."""
    agent_token = await api.token(Role.AGENT)
    agent_id = api.tokens.verify(agent_token, utcnow()).user_id
    source = tmp_path / "audio.ogg"
    source.write_bytes(AUDIO)
    store = LocalRecordingStore(api.settings.recordings_dir)
    async with api.db.transaction() as session:
        other_agent = User(username="other-agent", role=Role.AGENT, password_hash="x")
        session.add(other_agent)
        await session.flush()
        mine = Call(linkedid="1.1", agent_id=agent_id, started_at=T0, disposition=Disposition.ANSWERED)
        theirs = Call(linkedid="2.1", agent_id=other_agent.id, started_at=T0, disposition=Disposition.ANSWERED)
        session.add_all([mine, theirs])
        await session.flush()
        rows = []
        for serial, call in (("SOS-20260301080000-11", mine), ("SOS-20260301080500-21", theirs)):
            key = f"2026/03/01/{serial}.ogg"
            stored = await store.put(key, source)
            rows.append(Recording(serial_number=serial, call_id=call.id, storage_key=key, audio_format="ogg/opus",
                                  duration_seconds=12.5, size_bytes=stored.size_bytes, sha256=stored.sha256,
                                  created_at=T0, expires_at=T0 + dt.timedelta(days=92)))
        session.add_all(rows)
        await session.flush()
        return mine.id, rows[0].id, rows[1].id


async def test_listing_and_metadata_by_role(api: Api, tmp_path: Path) -> None:
    call_id, mine, theirs = await _seed(api, tmp_path)
    for role in (Role.ADMIN, Role.SUPERVISOR, Role.AUDITOR):
        status, page = await api.request("GET", "/api/v1/recordings", role=role)
        assert status == 200, page
        assert [r["id"] for r in page["items"]] == [theirs, mine] and page["total"] == 2
    status, page = await api.request("GET", "/api/v1/recordings", role=Role.AGENT)
    assert [r["id"] for r in page["items"]] == [mine]
    status, page = await api.request("GET", "/api/v1/recordings", role=Role.AUDITOR,
                                     params={"call_id": str(call_id)})
    assert [r["id"] for r in page["items"]] == [mine]
    item = page["items"][0]
    assert item["serial_number"] == "SOS-20260301080000-11" and item["audio_format"] == "ogg/opus"
    assert item["duration_seconds"] == 12.5 and item["size_bytes"] == len(AUDIO)
    assert item["expires_at"] == "2026-06-01T08:00:00Z" and "storage_key" not in item
    assert (await api.request("GET", f"/api/v1/recordings/{mine}", role=Role.AGENT))[0] == 200
    status, body = await api.request("GET", f"/api/v1/recordings/{theirs}", role=Role.AGENT)
    assert status == 404 and body["error"]["field"] == "id"  # another agent's call: as if absent
    assert (await api.request("GET", "/api/v1/recordings", role=Role.PROVIDER))[0] == 403
    assert (await api.request("GET", "/api/v1/recordings", role=None))[0] == 401
    assert (await api.request("GET", "/api/v1/recordings", params={"call_id": "0"}))[0] == 422


async def _audio(api: Api, recording_id: int, *, role: Role | None = Role.AUDITOR,
                 range_header: str | None = None, reason: str | None = "质量抽查",
                 download: bool = False) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {await api.token(role)}"} if role else {}
    if range_header is not None:
        headers["Range"] = range_header
    params = {"reason": reason} if reason is not None else {}
    if download:
        params["download"] = "true"
    response = await api.client.get(f"/api/v1/recordings/{recording_id}/audio", headers=headers, params=params)
    return response.status, dict(response.headers), await response.read()


async def test_audio_is_served_whole_or_by_range(api: Api, tmp_path: Path) -> None:
    _, mine, _ = await _seed(api, tmp_path)
    size = len(AUDIO)
    status, headers, body = await _audio(api, mine)
    assert status == 200 and body == AUDIO
    assert headers["Content-Type"] == "audio/ogg" and headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Length"] == str(size) and "Content-Range" not in headers
    assert headers["Cache-Control"] == "private, no-store"
    for header, (first, last) in [("bytes=0-99", (0, 99)), ("bytes=10000-", (10000, size - 1)),
                                  ("bytes=-240", (size - 240, size - 1)), ("bytes=9000-99999", (9000, size - 1))]:
        status, headers, body = await _audio(api, mine, range_header=header)
        assert status == 206, header
        assert headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert headers["Content-Length"] == str(last - first + 1)
        assert body == AUDIO[first:last + 1]
    for header in (f"bytes={size}-", "bytes=-0", "bytes=20-10", "bytes=x-y"):
        status, headers, body = await _audio(api, mine, range_header=header)
        assert status == 416, header
        assert headers["Content-Range"] == f"bytes */{size}"
        assert b'"range_not_satisfiable"' in body


async def test_a_range_of_five_thousand_digits_is_416_or_clamped_never_500(api: Api, tmp_path: Path) -> None:
    """Python's int() refuses more than 4,300 digits: such a header once ended in a 500."""
    _, mine, _ = await _seed(api, tmp_path)
    size, digits = len(AUDIO), "9" * 5000
    status, headers, body = await _audio(api, mine, range_header=f"bytes={digits}-")
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}", body[:300]
    assert len(body) < 500  # the answer does not repeat the header
    status, headers, body = await _audio(api, mine, range_header=f"bytes=100-{digits}")
    assert status == 206 and headers["Content-Range"] == f"bytes 100-{size - 1}/{size}" and body == AUDIO[100:]
    async with api.db.transaction() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "recording.replay"))
    assert entry is not None and len(entry.details["range"]) < 100  # not 5,000 digits on the audit trail
    status, link = await api.request("POST", f"/api/v1/recordings/{mine}/playback", role=Role.SUPERVISOR,
                                     json={"reason": "投诉核查 WO-1"})
    assert status == 201, link
    response = await api.client.get(link["url"], headers={"Range": f"bytes={digits}-"})
    assert response.status == 416 and response.headers["Content-Range"] == f"bytes */{size}"


async def test_audio_needs_a_token_and_a_role_that_may_hear_it(api: Api, tmp_path: Path) -> None:
    _, mine, theirs = await _seed(api, tmp_path)
    status, _, body = await _audio(api, mine, role=None)
    assert status == 401 and AUDIO[:100] not in body
    assert (await _audio(api, mine, role=Role.PROVIDER))[0] == 403
    assert (await _audio(api, theirs, role=Role.AGENT))[0] == 404
    assert (await _audio(api, mine, role=Role.AGENT))[0] == 200
    assert (await _audio(api, 4040))[0] == 404


async def test_no_reason_no_audio_and_only_auditors_and_admins_download(api: Api, tmp_path: Path) -> None:
    _, mine, _ = await _seed(api, tmp_path)
    status, _, body = await _audio(api, mine, reason=None)
    assert status == 422 and b'"reason"' in body
    assert (await _audio(api, mine, reason="ab"))[0] == 422  # a reason says something
    assert (await _audio(api, mine, role=Role.SUPERVISOR, download=True))[0] == 403
    status, headers, body = await _audio(api, mine, role=Role.AUDITOR, download=True)
    assert status == 200 and body == AUDIO
    assert headers["Content-Disposition"].startswith("attachment;")
    assert (await _audio(api, mine, role=Role.SUPERVISOR))[1]["Content-Disposition"].startswith("inline;")


async def test_every_audio_access_is_audited_with_who_what_and_which_bytes(api: Api, tmp_path: Path) -> None:
    _, mine, _ = await _seed(api, tmp_path)
    await _audio(api, mine, role=Role.AUDITOR)
    await _audio(api, mine, role=Role.AUDITOR, range_header="bytes=100-199")
    await _audio(api, mine, role=Role.AUDITOR, range_header="bytes=999999-")  # 416: nothing heard, nothing logged
    async with api.db.transaction() as session:
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "recording.replay")
                                         .order_by(AuditEntry.id))).all()
        auditor = await session.scalar(select(User).where(User.role == Role.AUDITOR))
    assert auditor is not None
    assert [(e.actor_id, e.target_type, e.target_id) for e in entries] == [(auditor.id, "recording", str(mine))] * 2
    assert entries[0].details == {"serial_number": "SOS-20260301080000-11", "range": None, "reason": "质量抽查",
                                  "bytes": f"0-{len(AUDIO) - 1}/{len(AUDIO)}"}
    assert entries[1].details["range"] == "bytes=100-199" and entries[1].details["bytes"].startswith("100-199/")
    assert entries[0].source_ip


async def test_audio_missing_from_storage_is_503_and_logged(api: Api, tmp_path: Path) -> None:
    _, mine, _ = await _seed(api, tmp_path)
    (api.settings.recordings_dir / "2026/03/01/SOS-20260301080000-11.ogg").unlink()
    status, _, body = await _audio(api, mine)
    assert status == 503 and b"cannot be read from storage" in body


async def test_the_document_describes_the_audio_route_as_bytes(api: Api) -> None:
    _, document = await api.request("GET", "/api/v1/openapi.json", role=None)
    audio = document["paths"]["/api/v1/recordings/{id}/audio"]["get"]
    assert set(audio["responses"]) == {"200", "206", "401", "403", "404", "416", "422", "503"}
    assert audio["responses"]["206"]["content"] == {"audio/ogg": {"schema": {"type": "string", "format": "binary"}}}
    assert set(audio["responses"]["206"]["headers"]) == {"Accept-Ranges", "Content-Range"}
    assert audio["x-roles"] == ["agent", "auditor", "supervisor"]
    listing = document["paths"]["/api/v1/recordings"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"call_id", "limit", "offset", "since", "until",
                                                          "elder_id", "phone", "agent", "queue", "work_order_id",
                                                          "sos"}


async def test_a_playback_link_is_audited_once_streams_ranges_without_a_bearer_and_cannot_be_forged(
        api: Api, tmp_path: Path) -> None:
    _, mine, theirs = await _seed(api, tmp_path)
    status, body = await api.request("POST", f"/api/v1/recordings/{mine}/playback", role=Role.SUPERVISOR,
                                      json={"reason": "投诉核查 WO-1"})
    assert status == 201, body
    url = body["url"]
    assert url.startswith(f"/api/v1/recordings/{mine}/stream?grant=")
    for header, expected in ((None, 200), ("bytes=0-99", 206), ("bytes=5000-", 206)):
        response = await api.client.get(url, headers={"Range": header} if header else {})  # no bearer token
        assert response.status == expected, header
        data = await response.read()
        assert data == (AUDIO if header is None else AUDIO[int(header[6:].split("-")[0]):][:len(data)])
    assert (await api.client.get(url[:-3] + "AAA")).status == 401  # a forged signature
    assert (await api.client.get(url.replace(f"/{mine}/", f"/{theirs}/"))).status == 403  # another recording
    assert (await api.client.get(f"/api/v1/recordings/{mine}/stream")).status == 422  # no grant at all
    expired = GrantSigner(api.tokens.derived_key("recording-playback")).issue(
        Grant(mine, 1, False, 1, utcnow() - dt.timedelta(seconds=1)))
    assert (await api.client.get(f"/api/v1/recordings/{mine}/stream", params={"grant": expired})).status == 401
    status, body = await api.request("POST", f"/api/v1/recordings/{mine}/playback", role=Role.SUPERVISOR,
                                      json={"reason": "想下载一份", "download": True})
    assert status == 403, body
    status, body = await api.request("POST", f"/api/v1/recordings/{mine}/playback", role=Role.AUDITOR,
                                      json={"reason": "监管抽查", "download": True})
    response = await api.client.get(body["url"])
    assert response.status == 200 and response.headers["Content-Disposition"].startswith("attachment;")

    # Each link was one access, with its reason; auditors (and admins) list them, nobody else.
    status, body = await api.request("GET", f"/api/v1/recordings/{mine}/accesses", role=Role.AUDITOR)
    assert status == 200, body
    assert [(a["action"], a["details"]["reason"]) for a in body["items"]] == [
        ("recording.replay", "投诉核查 WO-1"), ("recording.download", "监管抽查")]
    assert (await api.request("GET", f"/api/v1/recordings/{mine}/accesses", role=Role.SUPERVISOR))[0] == 403


async def _elder_reads(api: Api) -> list[AuditEntry]:
    async with api.db.transaction() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "elder.recording")
                                          .order_by(AuditEntry.id)))


async def test_a_recording_of_an_elders_call_read_or_heard_is_a_read_of_the_elders_file(
        api: Api, tmp_path: Path) -> None:
    call_id, mine, theirs = await _seed(api, tmp_path)
    async with api.db.transaction() as session:
        elder = Elder(full_name="张老人", phone="17700000101")
        session.add(elder)
        await session.flush()
        call = await session.get(Call, call_id)
        assert call is not None
        call.elder_id, call.caller_number, elder_id = elder.id, "17700000101", elder.id

    status, page = await api.request("GET", "/api/v1/recordings", role=Role.AUDITOR)
    assert status == 200 and page["total"] == 2
    assert await _elder_reads(api) == []  # a list is no read of any file
    assert (await api.request("GET", f"/api/v1/recordings/{theirs}", role=Role.AUDITOR))[0] == 200
    assert await _elder_reads(api) == []  # nobody's call: nobody's file

    status, body = await api.request("GET", f"/api/v1/recordings/{mine}", role=Role.AUDITOR)
    assert status == 200 and (body["call"]["elder_name"], body["call"]["caller_number"]) == ("张老人", "17700000101")
    status, _ = await api.request("POST", f"/api/v1/recordings/{mine}/playback", role=Role.SUPERVISOR,
                                  json={"reason": "投诉核查 WO-1"})
    assert status == 201
    assert (await _audio(api, mine, role=Role.AUDITOR, download=True))[0] == 200

    reads = await _elder_reads(api)
    grounds = {"justified_by": "call", "call_id": call_id, "recording": mine}
    assert [(e.target_type, e.target_id, e.details) for e in reads] == [
        ("elder", str(elder_id), {**grounds, "fields": ["elder_name", "caller_number"]}),
        ("elder", str(elder_id), {**grounds, "access": "recording.replay", "fields": ["audio"]}),
        ("elder", str(elder_id), {**grounds, "access": "recording.download", "fields": ["audio"]})]
    assert all(e.actor_id is not None and e.source_ip for e in reads)
    written = json.dumps([e.details for e in reads], ensure_ascii=False)
    assert "张老人" not in written and "17700000101" not in written
