"""The readings domain's section of the elder's file (``readings.plugin.HEALTH_TRENDS``): on the elders page for
the roles that may read readings, with uPlot linked before its script, and hand entry and the elder's own limits
offered only to the roles the API lets do them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from callcenter.contract import PageSection
from callcenter.readings import http
from callcenter.readings.plugin import HEALTH_TRENDS
from callcenter.users.models import Role
from callcenter.web.assets import VENDOR_DIRECTORY, StaticFiles
from tests.apiclient import Api
from tests.unit.web.test_pages import log_in


def _config(text: str) -> dict[str, object]:
    match = re.search(r'<script id="cc-config" type="application/json">(.*?)</script>', text, re.S)
    assert match is not None
    return json.loads(match.group(1))  # type: ignore[no-any-return]


@pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.AGENT, Role.AUDITOR])
async def test_the_file_carries_the_section_as_the_api_lets_the_role_use_it(api: Api, role: Role) -> None:
    user = await api.user(role)
    assert (await log_in(api.client, user.username)).status == 303
    text = await (await api.client.get("/elders")).text()
    may_enter = role in http.routes.roles_for("POST", "/elders/{id}/readings")
    may_set = role in http.routes.roles_for("PUT", "/elders/{id}/thresholds/{type}")
    assert (role, may_enter, may_set) in {(Role.SUPERVISOR, True, True), (Role.AGENT, True, False),
                                          (Role.AUDITOR, False, False)}
    assert {"health_trends": _config(text)["sections"]["health_trends"]} == {"health_trends": {  # type: ignore[comparison-overlap]
        "mayEnter": may_enter, "maySetLimits": may_set, "timezone": "Asia/Shanghai",
        "types": ["blood_pressure", "heart_rate", "spo2", "glucose", "temperature", "weight", "steps"],
        "measures": {"blood_pressure": ["systolic_mmhg", "diastolic_mmhg"], "heart_rate": ["bpm"],
                     "spo2": ["percent"], "glucose": ["mmol_l"], "temperature": ["celsius"], "weight": ["kg"],
                     "steps": ["count"]}}}
    assert 'id="ht"' in text and "健康数据" in text
    assert ('id="ht-entry"' in text) is may_enter and ('id="ht-limits-form"' in text) is may_set
    # uPlot (vendored) with the page's libraries, before the page's script and the section's after it; its
    # stylesheet before the section's.
    scripts = re.findall(r'<script src="/static/([^"?]+)\?v=', text)
    assert scripts.index("uPlot.iife.min.js") < scripts.index("elders.js") < scripts.index("health_trends.js")
    assert scripts.count("uPlot.iife.min.js") == 1
    sheets = re.findall(r'<link rel="stylesheet" href="/static/([^"?]+)\?v=', text)
    assert sheets.index("uPlot.min.css") < sheets.index("health_trends.css")
    assert (await api.client.get("/static/uPlot.iife.min.js")).status == 200


def test_a_section_names_only_vendored_libraries(tmp_path: Path) -> None:
    assert all((VENDOR_DIRECTORY / name).is_file() for name in HEALTH_TRENDS.libraries)
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "part.js").write_text("", encoding="utf-8")
    (tmp_path / "static" / "chart.js").write_text("", encoding="utf-8")
    assert StaticFiles.of([PageSection("elders", "part", tmp_path, libraries=("uPlot.iife.min.js",))])
    with pytest.raises(FileNotFoundError, match=r"nochart\.js"):
        StaticFiles.of([PageSection("elders", "part", tmp_path, libraries=("nochart.js",))])
    with pytest.raises(FileNotFoundError, match=r"chart\.js"):  # a domain's own file is no vendored library
        StaticFiles.of([PageSection("elders", "part", tmp_path, libraries=("chart.js",)),
                        PageSection("elders", "chart", tmp_path)])
