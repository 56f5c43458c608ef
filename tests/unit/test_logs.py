"""No personal data in the logs: phone numbers and resident IDs are masked in every line, structlog's and the
standard library's, messages and tracebacks alike; SQL errors carry no parameters."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import text

from callcenter.db.session import Database
from callcenter.logs import redact_text

PERSONAL = ["17700009901", "+86 13800138000", "8613800138000", "11010119450101123X", "110101194501011234",
            "0371-65551234", "010-12345678"]
KEPT = ["uniqueid 1796653407.45", "WO-20261207-0001", "1796653407123", "call 42", "linkedid=1733550000.123",
        "2026-12-07T02:30:12.234425Z", "SOS-20261207021842-17966099222592", "SOS-20261207040102-17966160620",
        "/spool/recordings/SOS-20261207040102-17966160620.wav", "CONF-20261207040102-17966160620"]


@pytest.mark.parametrize("value", PERSONAL)
def test_numbers_of_people_are_masked(value: str) -> None:
    assert redact_text(f"a {value} b") == "a [redacted] b"


@pytest.mark.parametrize("value", KEPT)
def test_ids_timestamps_and_order_numbers_stay_readable(value: str) -> None:
    assert redact_text(value) == value


# Logging is configured once per process (structlog and the root logger are process-wide): the lines are written
# by a process of their own, as the platform writes them.
_WRITER = """
import logging
from callcenter.logs import configure_logging, get_logger
configure_logging("info")
logging.getLogger("aiohttp.access").info('127.0.0.1 "GET /api/v1/elders?phone=13800138000 HTTP/1.1" 200')
try:
    raise ValueError("resident 110101194501011234 not found")
except ValueError:
    logging.getLogger("lib").exception("failed")
    get_logger("domain").exception("sos.failed", caller="17700009901", contacts=[{"phone": "13900139000"}])
"""


def test_every_kind_of_line_is_masked() -> None:
    result = subprocess.run([sys.executable, "-c", _WRITER], capture_output=True, text=True, timeout=60,
                            check=True)
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert len(lines) == 3, result.stderr
    text_of_lines = json.dumps(lines, ensure_ascii=False)
    for value in ("13800138000", "110101194501011234", "17700009901", "13900139000"):
        assert value not in text_of_lines
    assert lines[2]["caller"] == "[redacted]" and lines[2]["contacts"] == [{"phone": "[redacted]"}]
    assert "[redacted] not found" in lines[1]["exception"]


async def test_a_database_error_does_not_carry_its_parameters(db: Database) -> None:
    with pytest.raises(Exception) as raised:
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO no_such_table (phone) VALUES (:phone)"),
                                  {"phone": "secret-13800138000"})
    assert "secret-13800138000" not in str(raised.value)
    assert "hidden due to hide_parameters" in str(raised.value) or "parameters" not in str(raised.value)
