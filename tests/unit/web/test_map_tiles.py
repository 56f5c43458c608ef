"""The panel's map tiles (issue 15): CC_MAP_TILE_URL/COORDINATES/ATTRIBUTION as read and refused, the pages' CSP
that lets images come from the tile server only while one is set, and the tile settings in the config of the
pages with a map (the desk's alarm card, the elder's file's section) with Leaflet and map.js loaded before them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callcenter.config import ConfigError, Settings, tile_origin
from callcenter.db.session import Database
from callcenter.users.models import Role
from tests.apiclient import Api, api_settings, assembled
from tests.unit.web.test_pages import log_in

TILES = "http://127.0.0.1:8123/tiles/{z}/{x}/{y}.png?key=demo"


def test_no_tiles_by_default_on_wgs84_and_the_variables_are_read() -> None:
    defaults = Settings.from_env({})
    assert (defaults.map_tile_url, defaults.map_tile_coordinates, defaults.map_tile_attribution) == ("", "wgs84", "")
    given = Settings.from_env({"CC_MAP_TILE_URL": f" {TILES} ", "CC_MAP_TILE_COORDINATES": "GCJ02",
                               "CC_MAP_TILE_ATTRIBUTION": " © 示例地图 "})
    assert (given.map_tile_url, given.map_tile_coordinates, given.map_tile_attribution) == (
        TILES, "gcj02", "© 示例地图")
    assert tile_origin(TILES) == "http://127.0.0.1:8123"
    assert tile_origin("https://{s}.tiles.example.com/{z}/{x}/{y}.png") == "https://*.tiles.example.com"


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("CC_MAP_TILE_COORDINATES", "bd09", "CC_MAP_TILE_COORDINATES='bd09': one of wgs84, gcj02"),
    ("CC_MAP_TILE_URL", "ftp://tiles.example.com/{z}/{x}/{y}", "CC_MAP_TILE_URL=.*expected http"),
    ("CC_MAP_TILE_URL", "https://tiles.example.com/{z}/{x}.png", r"CC_MAP_TILE_URL=.*no \{y\}"),
    ("CC_MAP_TILE_URL", "https://a.{s}.example.com/{z}/{x}/{y}", r"CC_MAP_TILE_URL=.*\{s\} only as its first"),
    ("CC_MAP_TILE_URL", "https://user:secret@tiles.example.com/{z}/{x}/{y}", "CC_MAP_TILE_URL holds credentials"),
])
def test_a_bad_tile_setting_names_the_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as refused:
        Settings.from_env({name: value})
    assert "secret" not in str(refused.value)


def _image_sources(policy: str) -> list[str]:
    [directive] = [part.strip() for part in policy.split(";") if part.strip().startswith("img-src ")]
    return directive.split()[1:]


def _config(text: str) -> dict[str, Any]:
    match = re.search(r'<script id="cc-config" type="application/json">(.*?)</script>', text, re.S)
    assert match is not None
    return json.loads(match.group(1))  # type: ignore[no-any-return]


async def _pages(client: TestClient, username: str) -> dict[str, tuple[str, str]]:
    """The desk's and the elders page's (CSP, HTML) for ``username``."""
    assert (await log_in(client, username)).status == 303
    pages = {}
    for path in ("/", "/elders"):
        response = await client.get(path)
        assert response.status == 200, path
        pages[path] = (response.headers["Content-Security-Policy"], await response.text())
    return pages


async def test_without_tiles_images_come_only_from_the_panel_and_the_maps_draw_on_blank(api: Api) -> None:
    user = await api.user(Role.SUPERVISOR)
    pages = await _pages(api.client, user.username)
    login = await api.client.get("/login")
    assert _image_sources(login.headers["Content-Security-Policy"]) == ["'self'"]
    for path, (policy, text) in pages.items():
        assert _image_sources(policy) == ["'self'"], path
        config = _config(text)
        shown = config["map"] if path == "/" else config["sections"]["elder_map"]["map"]
        assert shown == {"tileUrl": None, "tileCoordinates": "wgs84", "attribution": ""}, path
        # Leaflet and map.js before the page's own script (and the elder_map section's after it).
        order = [text.index(f"/static/{name}") for name in ("common.js", "leaflet.js", "map.js")]
        assert order == sorted(order) and "/static/leaflet.css" in text, path
        own = "/static/panel.js" if path == "/" else "/static/elders.js"
        assert text.index("/static/map.js") < text.index(own), path
    assert pages["/elders"][1].index("/static/elders.js") < pages["/elders"][1].index("/static/elder_map.js")
    assert 'id="elder-map"' in pages["/elders"][1] and 'id="alarm-map-view"' in pages["/"][1]


async def test_with_a_tile_url_its_origin_alone_is_added_to_img_src(db: Database, tmp_path: Path, api: Api) -> None:
    settings = api_settings(tmp_path / "tiles", CC_MAP_TILE_URL=TILES, CC_MAP_TILE_COORDINATES="gcj02",
                            CC_MAP_TILE_ATTRIBUTION="© 示例地图")
    user = await api.user(Role.SUPERVISOR)
    async with TestClient(TestServer(assembled(db, settings).web)) as client:
        pages = await _pages(client, user.username)
        for path, (policy, text) in pages.items():
            assert _image_sources(policy) == ["'self'", "http://127.0.0.1:8123"], path
            assert "script-src 'self';" in policy and "connect-src 'self';" in policy  # nothing else opens up
            config = _config(text)
            shown = config["map"] if path == "/" else config["sections"]["elder_map"]["map"]
            assert shown == {"tileUrl": TILES, "tileCoordinates": "gcj02", "attribution": "© 示例地图"}, path
