"""The panel's map in a real headless Chromium (issue 15): the elder's file shows the last position, the day's track,
the home and the geofences drawn by Leaflet on a blank background with a scale (no CC_MAP_TILE_URL), and "no
position yet" for an elder without one; map.js's WGS-84 → GCJ-02 shift matches eviltransform's reference values;
and with CC_MAP_TILE_URL on a local tile server with gcj02 tiles, the tiles are requested and loaded (the CSP lets
them in) and what is drawn is shifted onto them. The alarm card's map is tests/browser/test_alarm_card.py's."""

from __future__ import annotations

import datetime as dt
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import select

from callcenter.alarms.models import AlarmSource
from callcenter.db.session import Database
from callcenter.locations.intake import POSITION_INTAKE
from callcenter.locations.models import FenceKind, FenceShape, Geofence
from tests import harness
from tests.browser.conftest import PASSWORD, PanelServer, log_in, running_panel, screenshot, wait_for, wait_text
from tests.unit.alarms.factory import HOME, Household, household
from tests.unit.locations.factory import east_of, fix, home_fence, north_of, raw

pytestmark = pytest.mark.browser

# eviltransform's own test points: (WGS-84 lat, lon) → (GCJ-02 lat, lon) in Shanghai, Shenzhen and Beijing.
GCJ02_REFERENCES = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
]
# What the map drew as Leaflet has it: each path's class and its point (markers) or number of points.
DRAWN = """return arguments[0].ccMap.drawn.getLayers().map(function (layer) {
  var at = layer.getLatLng ? layer.getLatLng() : null;
  return [layer.options.className, at ? [at.lat, at.lng] : layer.getLatLngs().flat().length];
});"""


def _positions(server: PanelServer, home: Household, points: list[tuple[float, float]], accuracy_m: float) -> None:
    """``points`` as the elder's device reported them over the last half hour, oldest first."""
    assert server.app is not None
    intake, now = server.app[POSITION_INTAKE], dt.datetime.now(dt.UTC)
    for age, where in zip(range(len(points), 0, -1), points, strict=True):
        document = fix(where, accuracy_m=accuracy_m, measured_at=now - dt.timedelta(minutes=10 * age))
        server.query(lambda _db, document=document: intake.receive_message(home.device_id, raw(document),
                                                                           AlarmSource.MQTT))


async def _keep_out(db: Database, elder_id: int) -> None:
    """A polygon the elder must keep out of: a block north-east of the home."""
    corners = [north_of(east_of(HOME, 700), 200), north_of(east_of(HOME, 1000), 200),
               north_of(east_of(HOME, 1000), 500), north_of(east_of(HOME, 700), 500)]
    async with db.transaction() as session:
        session.add(Geofence(elder_id=elder_id, name="河边", kind=FenceKind.KEEP_OUT, shape=FenceShape.POLYGON,
                             area={"points": [{"lat": lat, "lon": lon} for lat, lon in corners]}, active=True))


def _open_file(driver: WebDriver, base: str, name: str, elder_id: int) -> None:
    if not driver.current_url.endswith("/elders"):
        driver.get(base + "/elders")
    wait_for(driver, "#q-text").clear()
    driver.find_element(By.ID, "q-text").send_keys(name)
    driver.find_element(By.ID, "eld-search-submit").click()
    # The page's first list may land after the search: wait for the search's own single row.
    rows = "return Array.from(document.querySelectorAll('#eld-body tr'), row => row.dataset.elderId);"
    harness.eventually(lambda: driver.execute_script(rows) == [str(elder_id)], what="the searched elder's row")

    def open_row() -> bool:  # the list may be drawn again between finding the row and clicking it
        try:
            wait_for(driver, f"#eld-body tr[data-elder-id='{elder_id}'] button").click()
        except StaleElementReferenceException:
            return False
        return True

    harness.eventually(open_row, what="the searched elder's file opened")


def _picture(driver: WebDriver, name: str) -> None:
    driver.execute_script("document.getElementById('elder-map').scrollIntoView()")
    screenshot(driver, name)


def _drawn_count(driver: WebDriver, count: int) -> None:
    WebDriverWait(driver, 10).until(
        lambda d: d.find_element(By.ID, "elder-map-view").get_attribute("data-drawn") == str(count))


def test_the_file_shows_position_track_and_fences_on_a_blank_map_with_a_scale(browser: Any,
                                                                              panel_server: PanelServer) -> None:
    server = panel_server
    home = server.query(lambda db: household(db, name="钱玉兰"))
    track = [east_of(HOME, 150), east_of(HOME, 450), north_of(east_of(HOME, 450), 300)]
    _positions(server, home, track, accuracy_m=25)
    server.query(lambda db: home_fence(db, home.elder_id, radius_m=600))  # after the fixes: no alarm
    server.query(lambda db: _keep_out(db, home.elder_id))
    nowhere = server.query(lambda db: household(db, name="周无定位"))

    driver = browser()
    log_in(driver, server.base, "supervisor-b", PASSWORD)
    driver.get(server.base + "/elders")
    _open_file(driver, server.base, "钱玉兰", home.elder_id)
    view = wait_for(driver, "#elder-map-view")
    _drawn_count(driver, 6)  # two fences, the track, the home, the accuracy circle and the position
    assert driver.find_element(By.ID, "elder-map-accuracy").text == "25 米"
    assert driver.find_element(By.ID, "elder-map-source").text == "GPS"
    assert driver.find_element(By.ID, "elder-map-time").text.strip()
    assert driver.find_element(By.ID, "elder-map-summary").text == "近 24 小时轨迹 3 个点 · 电子围栏 2 个"
    assert not driver.find_element(By.ID, "elder-map-none").is_displayed()

    # Leaflet drew the vector layers as SVG paths, on a blank background (no tile layer, no image) with a scale.
    assert view.get_attribute("data-tiles") == "off"
    assert driver.find_elements(By.CSS_SELECTOR, "#elder-map-view img") == []
    for css, count in (("path.cc-map-fence-stay_inside", 1), ("path.cc-map-fence-keep_out", 1),
                       ("path.cc-map-track", 1), ("path.cc-map-home", 1), ("path.cc-map-accuracy", 1),
                       ("path.cc-map-position", 1)):
        paths = driver.find_elements(By.CSS_SELECTOR, f"#elder-map-view svg {css}")
        assert len(paths) == count, css
        assert all(len(path.get_attribute("d")) > 8 for path in paths), css  # not Leaflet's empty "M0 0"
    box = driver.execute_script("return document.querySelector('#elder-map-view path.cc-map-track').getBBox()")
    assert box["width"] > 20 and box["height"] > 20  # the track spans the map, not a dot
    scale = driver.find_element(By.CSS_SELECTOR, "#elder-map-view .leaflet-control-scale-line")
    assert scale.is_displayed() and re.fullmatch(r"\d+ (m|km)", scale.text), scale.text
    # WGS-84 tiles (here: none) get the positions unshifted.
    drawn = dict((name, at) for name, at in driver.execute_script(DRAWN, view) if isinstance(at, list))
    assert drawn["cc-map-position"] == pytest.approx(list(track[-1]), abs=1e-9)
    assert drawn["cc-map-home"] == pytest.approx(list(HOME), abs=1e-9)
    _picture(driver, "elder-map-blank")

    # The shared map script's WGS-84 → GCJ-02 shift, against eviltransform's reference values; none outside China.
    for wgs, gcj in GCJ02_REFERENCES:
        assert driver.execute_script("return CCMap.wgs84ToGcj02(arguments[0], arguments[1])", *wgs) == \
            pytest.approx(list(gcj), abs=1e-9)
        # And back (a point picked on GCJ-02 tiles is stored in WGS-84): within a few centimetres.
        back = driver.execute_script("return CCMap.gcj02ToWgs84(arguments[0], arguments[1])", *gcj)
        assert (back["lat"], back["lon"]) == pytest.approx(wgs, abs=1e-7)
    assert driver.execute_script("return CCMap.wgs84ToGcj02(48.8566, 2.3522)") == [48.8566, 2.3522]

    # An elder whose device never reported a position: said plainly; the map shows the home alone.
    _open_file(driver, server.base, "周无定位", nowhere.elder_id)
    wait_for(driver, "#elder-map-none")
    _drawn_count(driver, 1)
    assert not driver.find_element(By.ID, "elder-map-latest").is_displayed()
    assert "0 个点" in driver.find_element(By.ID, "elder-map-summary").text
    assert driver.find_elements(By.CSS_SELECTOR, "#elder-map-view svg path.cc-map-position") == []
    _picture(driver, "elder-map-no-position")


def _png(size: int = 256) -> bytes:
    """A plain pale-green tile."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((214, 232, 214)) * size for _ in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_tiles_of_the_configured_server_load_and_gcj02_tiles_get_shifted_points(browser: Any, tmp_path: Path) -> None:
    port, requested, tile = harness.free_tcp_port(), [], _png()

    async def serve_tile(request: web.Request) -> web.Response:
        requested.append(request.path)
        return web.Response(body=tile, content_type="image/png")

    async def start_tiles(_db: Database) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/tiles/{z}/{x}/{y}.png", serve_tile)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    with running_panel(tmp_path, CC_MAP_TILE_URL=f"http://127.0.0.1:{port}/tiles/{{z}}/{{x}}/{{y}}.png",
                       CC_MAP_TILE_COORDINATES="gcj02", CC_MAP_TILE_ATTRIBUTION="© 测试瓦片") as server:
        tiles = server.query(start_tiles)
        try:
            home = server.query(lambda db: household(db, name="吴桂芝"))
            where = east_of(HOME, 200)
            _positions(server, home, [where], accuracy_m=15)
            driver = browser()
            log_in(driver, server.base, "agent-b", PASSWORD)
            _open_file(driver, server.base, "吴桂芝", home.elder_id)
            view = wait_for(driver, "#elder-map-view")
            _drawn_count(driver, 3)  # the home, the accuracy circle and the position
            # Loaded, not just asked for: a tile the CSP refused would never get Leaflet's loaded class.
            wait_for(driver, "#elder-map-view img.leaflet-tile-loaded", timeout=15)
            assert requested and all(re.fullmatch(r"/tiles/\d+/\d+/\d+\.png", path) for path in requested)
            assert view.get_attribute("data-tiles") == "on"
            wait_text(driver, "#elder-map-view .leaflet-control-attribution", "© 测试瓦片")
            # Stored and served WGS-84, drawn GCJ-02: some hundreds of metres off the WGS-84 point in Beijing.
            drawn = dict((name, at) for name, at in driver.execute_script(DRAWN, view) if isinstance(at, list))
            shifted = driver.execute_script("return CCMap.wgs84ToGcj02(arguments[0], arguments[1])", *where)
            assert drawn["cc-map-position"] == pytest.approx(shifted, abs=1e-9)
            assert abs(shifted[1] - where[1]) > 1e-3
            _picture(driver, "elder-map-tiles-gcj02")
        finally:
            server.query(lambda _db: tiles.cleanup())


def _click_map(driver: WebDriver, right: int, down: int) -> None:
    """A click on the elder's map, ``right`` and ``down`` pixels from its centre."""
    view = driver.find_element(By.ID, "elder-map-view")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", view)
    ActionChains(driver).move_to_element_with_offset(view, right, down).click().perform()


async def _fences(db: Database, elder_id: int) -> list[Geofence]:
    async with db.transaction(read_only=True) as session:
        return list((await session.scalars(select(Geofence).where(Geofence.elder_id == elder_id)
                                           .order_by(Geofence.id))).all())


def test_a_supervisor_draws_a_circle_and_a_polygon_on_the_map_switches_one_off_and_deletes_one(
        browser: Any, panel_server: PanelServer) -> None:
    server = panel_server
    home = server.query(lambda db: household(db, name="冯秀英"))
    driver = browser()
    log_in(driver, server.base, "supervisor-b", PASSWORD)
    _open_file(driver, server.base, "冯秀英", home.elder_id)
    wait_for(driver, "#elder-fences-none")
    _drawn_count(driver, 1)  # the home alone
    assert driver.find_element(By.ID, "fence-picked").text == "请在地图上点击选择圆心。"

    # Saved before a centre is picked: refused, said beside the form; nothing stored.
    driver.find_element(By.ID, "fence-name").send_keys("小区周边")
    driver.find_element(By.ID, "fence-save").click()
    wait_text(driver, "#elder-fence-message", "请修改标出的内容后再保存。")
    assert driver.find_elements(By.CSS_SELECTOR, "#elder-fence-errors li")
    assert server.query(lambda db: _fences(db, home.elder_id)) == []

    # A circle: one click sets the centre (drawn as a draft with the radius), hours allowed out 07:00-20:00.
    _click_map(driver, 40, -30)
    WebDriverWait(driver, 5).until(lambda d: d.find_element(By.ID, "fence-picked").text.startswith("圆心："))
    assert driver.find_elements(By.CSS_SELECTOR, "#elder-map-view svg path.cc-map-draft")
    radius = driver.find_element(By.ID, "fence-radius")
    radius.clear()
    radius.send_keys("300")
    driver.execute_script("document.getElementById('fence-from').value = '07:00';"
                          "document.getElementById('fence-until').value = '20:00';")
    centre = driver.execute_script("return document.getElementById('fence-picked').textContent")
    driver.find_element(By.ID, "fence-save").click()
    wait_text(driver, "#elder-fence-message", "已保存电子围栏“小区周边”。")
    wait_for(driver, "#elder-fences-body tr")
    _drawn_count(driver, 2)
    assert driver.find_elements(By.CSS_SELECTOR, "#elder-map-view svg path.cc-map-draft") == []
    [circle] = server.query(lambda db: _fences(db, home.elder_id))
    assert (circle.name, circle.kind, circle.shape, circle.area["radius_m"]) == (
        "小区周边", FenceKind.STAY_INSIDE, FenceShape.CIRCLE, 300)
    assert (circle.allowed_from, circle.allowed_until) == (7 * 60, 20 * 60)  # minutes of the centre's day
    lat, lon = (float(part) for part in centre.removeprefix("圆心：").split(","))
    assert (circle.area["center"]["lat"], circle.area["center"]["lon"]) == pytest.approx((lat, lon), abs=1e-6)
    # Where it was clicked: near the home the map is centred on (a few hundred metres), and not on it.
    assert abs(lon - HOME[1]) + abs(lat - HOME[0]) > 0 and abs(lon - HOME[1]) < 0.01 and abs(lat - HOME[0]) < 0.01

    # A polygon the elder must keep out of: three corners clicked in turn.
    Select(driver.find_element(By.ID, "fence-shape")).select_by_value("polygon")
    Select(driver.find_element(By.ID, "fence-kind")).select_by_value("keep_out")
    assert not driver.find_element(By.ID, "fence-radius").is_displayed()
    for right, down in ((-120, 60), (-40, 110), (-150, 120)):
        _click_map(driver, right, down)
    wait_text(driver, "#fence-picked", "已选 3 个顶点")
    driver.find_element(By.ID, "fence-name").send_keys("河边")
    driver.find_element(By.ID, "fence-save").click()
    wait_text(driver, "#elder-fence-message", "已保存电子围栏“河边”。")
    _drawn_count(driver, 3)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#elder-map-view svg path.cc-map-fence-keep_out")) == 1
    rows = driver.find_elements(By.CSS_SELECTOR, "#elder-fences-body tr")
    assert [row.find_element(By.TAG_NAME, "td").text for row in rows] == ["小区周边", "河边"]
    assert "任何时间都报警" in rows[1].text and "多边形，3 个顶点" in rows[1].text
    assert "07:00–20:00 允许" in rows[0].text and "圆形，半径 300 米" in rows[0].text
    _picture(driver, "elder-map-fences-drawn")

    # The circle switched off (drawn dashed, kept), the polygon deleted after the confirmation.
    rows[0].find_element(By.CSS_SELECTOR, "button[data-action='toggle']").click()
    wait_text(driver, "#elder-fences-message", "电子围栏“小区周边”：已停用。")
    wait_text(driver, f"#elder-fences-body tr[data-fence-id='{circle.id}'] td:nth-child(5)", "已停用")
    driver.find_element(By.CSS_SELECTOR, "#elder-fences-body tr:nth-child(2) button[data-action='delete']").click()
    WebDriverWait(driver, 5).until(lambda d: d.switch_to.alert).accept()
    wait_text(driver, "#elder-fences-message", "已删除电子围栏“河边”。")
    WebDriverWait(driver, 5).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#elder-fences-body tr")) == 1)
    [left] = server.query(lambda db: _fences(db, home.elder_id))
    assert (left.id, left.active) == (circle.id, False)
