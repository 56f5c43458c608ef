"""What a device sends about where it is (``DevicePositionMessage``: docs/device-protocol.md, *Position*), and the
schemas of /api/v1/elders/{id}/positions and /api/v1/elders/{id}/geofences."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from callcenter.alarms.schemas import MessageId
from callcenter.api.schemas import MAX_INT, Instant, RequestSchema, ResponseSchema, text
from callcenter.elders.schemas import ReadQuery
from callcenter.locations.geometry import MAX_FENCE_M, MIN_RADIUS_M
from callcenter.locations.models import FenceKind, FenceShape, FenceSide, PositionSource

Latitude = Annotated[float, Field(ge=-90, le=90, description="WGS-84 latitude, degrees")]
Longitude = Annotated[float, Field(ge=-180, le=180, description="WGS-84 longitude, degrees")]
MAX_ACCURACY_M = 100_000


class DevicePositionMessage(RequestSchema):
    """A fix as a device sends it (strict: a number in quotes is refused, an unknown field too)."""

    message_id: MessageId = Field(description="the device's id for this message, resent unchanged until it is "
                                              "acknowledged: one message is one stored fix")
    measured_at: Instant = Field(description="when the fix was taken, on the device's clock (ISO 8601 with an "
                                             "offset); not further in the future than CC_ALARM_CLOCK_SKEW_SECONDS")
    lat: Latitude
    lon: Longitude
    accuracy_m: float = Field(ge=0, le=MAX_ACCURACY_M, description="the radius, in metres, the device is within")
    source: PositionSource = Field(description="gps, lbs (cell towers) or wifi")
    altitude_m: float | None = Field(None, ge=-1_000, le=10_000, description="metres above sea level")
    speed_mps: float | None = Field(None, ge=0, le=100, description="metres a second")
    heading_deg: float | None = Field(None, ge=0, lt=360, description="degrees from north, clockwise")

    def fix(self) -> dict[str, Any]:
        """What is sealed with the position: where, and how it moved."""
        return {name: value for name, value in (
            ("lat", self.lat), ("lon", self.lon), ("altitude_m", self.altitude_m), ("speed_mps", self.speed_mps),
            ("heading_deg", self.heading_deg)) if value is not None}


# --- /api/v1/elders/{id}/positions -----------------------------------------------------------------------------

MAX_TRACK = 5000


class TrackQuery(ReadQuery):
    since: Instant | None = Field(None, description="the track from this time (ISO 8601 with an offset; default: "
                                                    "the last 24 hours)")
    until: Instant | None = Field(None, description="the track up to this time (default: now)")
    limit: int = Field(1000, ge=1, le=MAX_TRACK, description="at most this many fixes: the newest of the period")


class PositionOut(ResponseSchema):
    id: int
    device_id: int
    measured_at: dt.datetime = Field(description="on the device's clock")
    received_at: dt.datetime = Field(description="on the platform's clock")
    lat: float = Field(description="WGS-84 latitude (a map on GCJ-02 tiles converts it for display)")
    lon: float = Field(description="WGS-84 longitude")
    accuracy_m: float = Field(description="radius of the fix's uncertainty, metres: draw it as a circle")
    source: PositionSource
    altitude_m: float | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None


class Track(ResponseSchema):
    elder_id: int
    latest: PositionOut | None = Field(description="the newest fix ever stored for the elder (whatever the period)")
    since: dt.datetime
    until: dt.datetime
    items: list[PositionOut] = Field(description="the period's fixes, oldest first (a polyline in order)")
    truncated: bool = Field(description="the period held more than `limit` fixes: these are the newest")


# --- /api/v1/elders/{id}/geofences ---------------------------------------------------------------------------

Clock = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class Point(RequestSchema):
    lat: Latitude
    lon: Longitude


class CircleArea(RequestSchema):
    type: Literal["circle"]
    center: Point
    radius_m: float = Field(ge=MIN_RADIUS_M, le=MAX_FENCE_M, description="metres")


class PolygonArea(RequestSchema):
    type: Literal["polygon"]
    points: list[Point] = Field(min_length=3, max_length=500,
                                description="the corners in order (the last joins the first), WGS-84; a simple "
                                            f"polygon, every corner within {MAX_FENCE_M} m of its centre")


Area = Annotated[CircleArea | PolygonArea, Field(discriminator="type")]


class AllowedHours(RequestSchema):
    """When the forbidden side is allowed, on the centre's clock (CC_TIMEZONE): start inclusive, end exclusive;
    a start later than the end runs over midnight (22:00–06:00)."""

    start: Clock = Field(description="HH:MM")
    end: Clock = Field(description="HH:MM")

    @model_validator(mode="after")
    def _not_empty(self) -> AllowedHours:
        if self.start == self.end:
            raise ValueError("start and end are equal: an empty (or whole-day) window; to allow the whole day, "
                             "deactivate the fence")
        return self


def minutes(clock: str) -> int:
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


class GeofenceCreate(RequestSchema):
    name: text(100) = Field(description="shown on the map and the alarm")  # type: ignore[valid-type]
    kind: FenceKind = Field(FenceKind.STAY_INSIDE, description="stay_inside: leaving it is the alarm; keep_out: "
                                                               "entering it is")
    area: Area
    allowed_hours: AllowedHours | None = Field(None, description="when crossing is allowed (e.g. out 07:00–20:00); "
                                                                 "none: never")
    active: bool = True


class GeofencePatch(RequestSchema):
    """The fields to change; changing the area, the kind or the activity forgets where the elder was."""

    version: int = Field(ge=1, le=MAX_INT, description="the fence's version as read; a stale one is refused (409)")
    name: text(100) | None = None  # type: ignore[valid-type]
    kind: FenceKind | None = None
    area: Area | None = None
    allowed_hours: AllowedHours | None = Field(None, description="null: never allowed")
    active: bool | None = None


class HoursOut(ResponseSchema):
    start: str
    end: str


class FenceStateOut(ResponseSchema):
    side: FenceSide = Field(description="the side of the fence the elder was last known on, for certain")
    since: dt.datetime
    last_measured_at: dt.datetime
    alarm_id: int | None = Field(description="the alarm this stay on the forbidden side raised")


class GeofenceOut(ResponseSchema):
    id: int
    elder_id: int
    name: str
    kind: FenceKind
    shape: FenceShape
    area: dict[str, Any] = Field(description="as given: {center: {lat, lon}, radius_m} or {points: [{lat, lon}]}")
    geometry: dict[str, Any] = Field(description="GeoJSON (RFC 7946, WGS-84 [lon, lat]): a Polygon, or a circle's "
                                                 "centre Point with `radius_m` beside it")
    radius_m: float | None = Field(description="a circle's radius in metres")
    allowed_hours: HoursOut | None
    active: bool
    state: FenceStateOut | None = Field(description="where the elder was by the last certain fix; none yet")
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class GeofenceList(ResponseSchema):
    items: list[GeofenceOut]
