"""The HTTP gateway channel: the shape of the Chinese SMS providers' APIs (Aliyun's SendSms, Tencent Cloud's
SendSms and the many gateways modelled on them) — not the text but a template registered with the provider (and
approved by it), its parameters, and the centre's signature (签名, shown by the provider as 【…】 before the text),
in one signed JSON POST per message.

The request (``POST CC_SMS_HTTP_URL``):

    {"phone_number": "13800138000", "sign_name": "养老服务中心", "template_code": "SMS_0001",
     "template_param": {"elder_name": "张某某", …}, "out_id": "42"}

signed with the platform's one HMAC-SHA256 scheme for machine-to-machine requests (``api.signing``: the headers
X-CC-Key-Id = CC_SMS_HTTP_KEY, X-CC-Timestamp, X-CC-Nonce, X-CC-Signature over method, path, time, nonce and the
body's SHA-256, keyed with CC_SMS_HTTP_SECRET). A provider with its own scheme (Aliyun's RPC signature, Tencent's
TC3) is reached through a small relay, or a signer of its own in place of ``api.signing.sign_request``.
``template_code`` is the provider's code of the template (CC_SMS_HTTP_TEMPLATES maps the catalogue's keys to them;
a key not mapped is sent as it is); ``out_id`` is the platform's message id.

The answer: HTTP 200 with ``{"code": "OK", "message_id": "…"}`` (``biz_id`` is read too) is taken; any other code
is a refusal in the provider's words; 400 and 422 are refused for good (the request itself is wrong), anything else
(a 5xx, a timeout, no connection) is tried again by the service.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Callable, Mapping

import aiohttp

from callcenter.api.signing import sign_request
from callcenter.contract import Check
from callcenter.db.base import utcnow
from callcenter.logs import get_logger
from callcenter.notifications.channels import Attempt, Outgoing, Refused, Submitted

log = get_logger(__name__)

PERMANENT_STATUSES = frozenset({400, 422})


class HttpGatewayChannel:
    name = "http"
    receipts = False  # the providers report deliveries by callback or by polling: not read yet

    def __init__(self, *, url: str, key: str, secret: str, signature: str, timeout: float,
                 templates: Mapping[str, str] | None = None, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._url = url
        self._path = urllib.parse.urlsplit(url).path or "/"
        self._key = key
        self._secret = secret
        self._signature = signature
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._templates = dict(templates or {})
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._last_error: str | None = None
        self.sent = 0

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def stop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def request_body(self, message: Outgoing) -> bytes:
        return json.dumps({"phone_number": message.recipient, "sign_name": self._signature,
                           "template_code": self._templates.get(message.template, message.template),
                           "template_param": message.values, "out_id": str(message.message_id)},
                          ensure_ascii=False, separators=(",", ":")).encode()

    async def submit(self, message: Outgoing) -> Attempt:
        if self._session is None:
            return Refused("the HTTP gateway channel is not started")
        body = self.request_body(message)
        headers = {"Content-Type": "application/json; charset=utf-8",
                   **sign_request("POST", self._path, self._key, self._secret, body, self._clock())}
        try:
            async with self._session.post(self._url, data=body, headers=headers) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            return self._refused(f"gateway not reached: {type(error).__name__}")
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        code = str(answer.get("code", ""))
        if status == 200 and code.upper() == "OK":
            provider_id = str(answer.get("message_id") or answer.get("biz_id") or "")
            if provider_id:
                self._last_error = None
                self.sent += 1
                return Submitted(provider_id[:65])
            return self._refused("the gateway answered OK without a message id")
        words = str(answer.get("message", ""))[:120]
        return self._refused(f"refused by the gateway: HTTP {status} {code} {words}".strip(),
                             permanent=status in PERMANENT_STATUSES)

    def _refused(self, reason: str, *, permanent: bool = False) -> Refused:
        self._last_error = reason
        return Refused(reason, permanent=permanent)

    def check(self) -> Check:
        host = urllib.parse.urlsplit(self._url).netloc
        facts = {"sent": self.sent}
        if self._last_error is not None:
            return Check(False, f"the last request to {host} failed: {self._last_error}", facts=facts)
        return Check(True, f"HTTP gateway at {host}", facts=facts)
