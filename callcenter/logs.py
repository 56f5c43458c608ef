"""Structured JSON logs (structlog). Telephony lines carry ``uniqueid``/``linkedid`` via bound loggers.

No personal data in the logs (issue 14, GB/T 35273): log lines name calls, orders and elders by their ids, never
by phone number or resident ID — and, in case a value slips into a message, an exception's text or a library's
line (an access log's query string, a database error), ``redact`` masks every mainland mobile or landline number
and every resident ID number in every string of every line before it is written. The database engine is created
with ``hide_parameters`` (db.session), so SQL errors never carry the values they were given.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# A resident ID (18 characters, the last a digit or X), a mobile number (optionally +86), a landline with its area
# code: none of them inside a longer run of digits, nor glued to a word or a hyphen before it — call ids,
# timestamps, order numbers and recording serials (``SOS-20261207040102-17966160620``, whose tail is the call's
# epoch-based linkedid and can look like a mobile number) stay readable.
_RESIDENT_ID = re.compile(r"(?<![\w-])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![\w-])(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)")
_LANDLINE = re.compile(r"(?<![\w.-])0\d{2,3}-\d{7,8}(?!\d)")
MASK = "[redacted]"


def redact_text(text: str) -> str:
    if not any(ch.isdigit() for ch in text):
        return text
    return _LANDLINE.sub(MASK, _MOBILE.sub(MASK, _RESIDENT_ID.sub(MASK, text)))


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: phone numbers and resident IDs in any string of the line are masked."""
    for key, value in event_dict.items():
        event_dict[key] = _redacted(value)
    return event_dict


def configure_logging(level: str = "info") -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            redact,  # after the traceback is text: an exception's message is masked too
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library (aiohttp, panoramisk, alembic) come out as JSON too.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.format_exc_info, redact,
                        structlog.processors.JSONRenderer(ensure_ascii=False)],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Alembic narrates every plugin it loads at INFO; only its warnings matter in the platform's log.
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
