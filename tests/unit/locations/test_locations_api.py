"""/api/v1/elders/{id}/positions and /geofences: the track in time order with the latest fix, what a map needs
(WGS-84, accuracy, GeoJSON), reads audited as reads of the elder's file, the roles of the elder's file, fences kept
with their rules and 422s naming the field, nothing half-written."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, text

from callcenter.alarms.models import AlarmSource
from callcenter.audit.models import AuditEntry
from callcenter.locations.intake import POSITION_INTAKE
from callcenter.locations.models import Geofence, GeofenceState
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.alarms.factory import HOME, household
from tests.unit.locations.factory import NIGHT, east_of, fix, north_of, raw

CIRCLE = {"type": "circle", "center": {"lat": HOME[0], "lon": HOME[1]}, "radius_m": 500}


async def _ok(api: Api, method: str, path: str, role: Role = Role.AGENT, **kwargs: Any) -> Any:
    status, body = await api.request(method, path, role=role, **kwargs)
    assert 200 <= status < 300, (method, path, status, body)
    return body


async def _entries(api: Api, action: str) -> list[AuditEntry]:
    async with api.db.transaction(read_only=True) as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                          .order_by(AuditEntry.id)))


async def test_the_track_is_in_time_order_with_the_latest_fix_and_its_read_is_audited(api: Api) -> None:
    home = await household(api.db)
    intake = api.client.app[POSITION_INTAKE]
    # Sent out of order (a device emptying its buffer): the track is by the device's time.
    for minutes, metres in ((20, 300), (0, 0), (10, 150), (30, 450)):
        await intake.receive_message(home.device_id, raw(fix(
            east_of(HOME, metres), measured_at=NIGHT + dt.timedelta(minutes=minutes), accuracy_m=metres / 10 + 5,
            source="wifi" if metres else "gps", heading_deg=90.0)), AlarmSource.MQTT)
    path = f"/api/v1/elders/{home.elder_id}/positions"
    track = await _ok(api, "GET", path, role=Role.AUDITOR, params={
        "since": (NIGHT - dt.timedelta(minutes=1)).isoformat(),
        "until": (NIGHT + dt.timedelta(minutes=25)).isoformat()})
    assert [item["lon"] for item in track["items"]] == [pytest.approx(east_of(HOME, m)[1]) for m in (0, 150, 300)]
    first = track["items"][0]
    assert (first["lat"], first["lon"], first["accuracy_m"], first["source"], first["heading_deg"],
            first["device_id"]) == (HOME[0], HOME[1], 5.0, "gps", 90.0, home.device_id)
    assert track["latest"]["lon"] == pytest.approx(east_of(HOME, 450)[1])  # the newest ever, outside the period
    assert track["truncated"] is False
    limited = await _ok(api, "GET", path, params={"since": NIGHT.isoformat(), "limit": "2",
                                                  "until": (NIGHT + dt.timedelta(hours=1)).isoformat()})
    assert [item["lon"] for item in limited["items"]] == [pytest.approx(east_of(HOME, m)[1]) for m in (300, 450)]
    assert limited["truncated"] is True
    assert (await _ok(api, "GET", path))["items"] == []  # default: the last 24 hours (these are weeks old)
    [first_read, *_] = entries = await _entries(api, "elder.positions.read")
    assert len(entries) == 3
    assert (first_read.target_type, first_read.target_id, first_read.details) == (
        "elder", str(home.elder_id), {"justified_by": "none", "positions": 3})
    for params, field in (({"since": "yesterday"}, "since"), ({"limit": "0"}, "limit"),
                          ({"since": NIGHT.isoformat(), "until": (NIGHT - dt.timedelta(hours=1)).isoformat()}, "since"),
                          ({"call_id": "999999"}, "call_id"), ({"since": "2026-03-01T08:00:00"}, "since")):
        status, body = await api.request("GET", path, role=Role.AGENT, params=params)
        assert (status, body["error"]["field"]) == (422, field), params
    assert (await api.request("GET", path, role=Role.PROVIDER))[0] == 403
    status, body = await api.request("GET", "/api/v1/elders/999999/positions", role=Role.AGENT)
    assert (status, body["error"]["field"]) == (404, "id")
    assert len(await _entries(api, "elder.positions.read")) == 3  # refused reads wrote nothing


async def test_geofences_are_kept_with_their_rules_and_shown_as_geojson(api: Api) -> None:
    home = await household(api.db)
    base = f"/api/v1/elders/{home.elder_id}/geofences"
    fence = await _ok(api, "POST", base, json={"name": "家附近", "area": CIRCLE,
                                               "allowed_hours": {"start": "07:00", "end": "20:00"}})
    assert (fence["kind"], fence["shape"], fence["radius_m"], fence["allowed_hours"], fence["active"],
            fence["state"], fence["version"]) == (
        "stay_inside", "circle", 500.0, {"start": "07:00", "end": "20:00"}, True, None, 1)
    assert fence["geometry"] == {"type": "Point", "coordinates": [HOME[1], HOME[0]]}
    async with api.db.engine.connect() as connection:  # a fence round a home says where it is: sealed
        [stored] = (await connection.execute(text("SELECT area FROM geofences"))).one()
    assert stored.startswith("cc1:") and str(HOME[0]) not in stored
    sw = north_of(HOME, 1000)
    corners = [sw, east_of(sw, 300), north_of(east_of(sw, 300), 200), north_of(sw, 200)]
    bank = await _ok(api, "POST", base, role=Role.SUPERVISOR, json={
        "name": "河边", "kind": "keep_out", "area": {"type": "polygon", "points": [
            {"lat": lat, "lon": lon} for lat, lon in corners]}})
    assert (bank["shape"], bank["allowed_hours"], bank["radius_m"]) == ("polygon", None, None)
    ring = bank["geometry"]["coordinates"][0]
    assert bank["geometry"]["type"] == "Polygon" and len(ring) == 5 and ring[0] == ring[-1]

    # The elder walks out at night: the fence list shows the side and the alarm.
    await api.client.app[POSITION_INTAKE].receive_message(home.device_id, raw(fix(HOME, measured_at=NIGHT)),
                                                          AlarmSource.MQTT)
    receipt = await api.client.app[POSITION_INTAKE].receive_message(home.device_id, raw(fix(
        east_of(HOME, 1500), measured_at=NIGHT + dt.timedelta(minutes=5))), AlarmSource.MQTT)
    listed = await _ok(api, "GET", base, role=Role.AUDITOR)
    assert [item["id"] for item in listed["items"]] == [fence["id"], bank["id"]]
    assert (listed["items"][0]["state"]["side"], listed["items"][0]["state"]["alarm_id"]) == (
        "outside", receipt.alarm_ids[0])
    alarm = await _ok(api, "GET", f"/api/v1/alarms/{receipt.alarm_ids[0]}")
    assert (alarm["type"], alarm["payload"]["geofence_name"], alarm["payload"]["event"]) == (
        "geofence", "家附近", "exit")
    shown = await _ok(api, "GET", f"{base}/{fence['id']}")
    assert shown["state"]["side"] == "outside"
    assert [e.details for e in await _entries(api, "elder.geofences.read")] == [
        {"justified_by": "none", "geofences": 2}, {"justified_by": "none", "geofence_id": fence["id"]}]

    # A change of area forgets the side; a stale version is refused.
    changed = await _ok(api, "PATCH", f"{base}/{fence['id']}", json={
        "version": 1, "area": {**CIRCLE, "radius_m": 3000}, "allowed_hours": None})
    assert (changed["version"], changed["radius_m"], changed["allowed_hours"], changed["state"]) == (
        2, 3000.0, None, None)
    status, body = await api.request("PATCH", f"{base}/{fence['id']}", role=Role.AGENT, json={"version": 1,
                                                                                              "name": "x"})
    assert (status, body["error"]["code"], body["error"]["field"]) == (409, "stale_version", "version")
    renamed = await _ok(api, "PATCH", f"{base}/{fence['id']}", json={"version": 2, "name": "小区"})
    assert renamed["version"] == 3 and renamed["radius_m"] == 3000.0
    assert [e.details["changed"] for e in await _entries(api, "geofence.update")] == [
        ["area", "allowed_hours"], ["name"]]

    gone = await _ok(api, "DELETE", f"{base}/{bank['id']}")
    assert gone["name"] == "河边"
    assert (await api.request("GET", f"{base}/{bank['id']}", role=Role.AGENT))[0] == 404
    other = await household(api.db, name="钱玉兰")  # another elder's path does not reach this fence
    status, body = await api.request("GET", f"/api/v1/elders/{other.elder_id}/geofences/{fence['id']}",
                                     role=Role.AGENT)
    assert (status, body["error"]["field"]) == (404, "fence_id")
    assert len(await _entries(api, "geofence.create")) == 2 and len(await _entries(api, "geofence.delete")) == 1


async def test_bad_fences_are_refused_naming_the_field_and_roles_are_the_files(api: Api) -> None:
    home = await household(api.db)
    base = f"/api/v1/elders/{home.elder_id}/geofences"
    a, b = HOME, east_of(HOME, 500)
    c, d = north_of(b, 500), north_of(HOME, 500)

    def points(*corners: tuple[float, float]) -> dict[str, Any]:
        return {"type": "polygon", "points": [{"lat": lat, "lon": lon} for lat, lon in corners]}

    for body, field in (
            ({"area": CIRCLE}, "name"),
            ({"name": "家", "area": {**CIRCLE, "radius_m": 5}}, "area.circle.radius_m"),
            ({"name": "家", "area": {**CIRCLE, "center": {"lat": 95, "lon": 116.3}}}, "area.circle.center.lat"),
            ({"name": "家", "area": {"type": "square"}}, "area"),
            ({"name": "家", "area": points(a, b)}, "area.polygon.points"),
            ({"name": "家", "area": points(a, c, b, d)}, "area.points"),  # a bow tie
            ({"name": "家", "area": points(a, b, c, b)}, "area.points.3"),
            ({"name": "家", "area": CIRCLE, "kind": "stay_near"}, "kind"),
            ({"name": "家", "area": CIRCLE, "allowed_hours": {"start": "7:00", "end": "20:00"}}, "allowed_hours.start"),
            ({"name": "家", "area": CIRCLE, "allowed_hours": {"start": "24:00", "end": "20:00"}},
             "allowed_hours.start"),
            ({"name": "家", "area": CIRCLE, "allowed_hours": {"start": "08:00", "end": "08:00"}}, "allowed_hours"),
            ({"name": "家", "area": CIRCLE, "colour": "red"}, "colour"),
    ):
        status, answer = await api.request("POST", base, role=Role.AGENT, json=body)
        assert (status, answer["error"]["field"]) == (422, field), (body, answer)
    fence = await _ok(api, "POST", base, json={"name": "家", "area": CIRCLE})
    for patch, field in (({"version": 1, "name": None}, "name"), ({"version": 1, "area": points(a, c, b, d)},
                                                                   "area.points"), ({"name": "x"}, "version")):
        status, answer = await api.request("PATCH", f"{base}/{fence['id']}", role=Role.AGENT, json=patch)
        assert (status, answer["error"]["field"]) == (422, field), (patch, answer)
    assert (await api.request("POST", base, role=Role.AUDITOR, json={"name": "家", "area": CIRCLE}))[0] == 403
    assert (await api.request("GET", base, role=Role.PROVIDER))[0] == 403
    assert (await api.request("DELETE", f"{base}/{fence['id']}", role=Role.AUDITOR))[0] == 403
    assert (await api.request("POST", "/api/v1/elders/999999/geofences", role=Role.AGENT,
                              json={"name": "家", "area": CIRCLE}))[0] == 404
    assert await api.count(Geofence) == 1 and await api.count(GeofenceState) == 0  # the refused left nothing
    assert len(await _entries(api, "geofence.create")) == 1
    unchanged = await _ok(api, "GET", f"{base}/{fence['id']}")
    assert (unchanged["version"], unchanged["name"]) == (1, "家")


async def test_an_elders_fences_go_with_the_file(api: Api) -> None:
    elder = await _ok(api, "POST", "/api/v1/elders", json={"full_name": "李桂兰", "address": "西城区展览路 3 号"})
    await _ok(api, "POST", f"/api/v1/elders/{elder['id']}/geofences", json={"name": "家", "area": CIRCLE})
    await _ok(api, "DELETE", f"/api/v1/elders/{elder['id']}", role=Role.SUPERVISOR)
    assert await api.count(Geofence) == 0
