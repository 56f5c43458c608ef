"""Who may hear a recording, why, and the signed playback links a browser's audio element uses.

A browser's ``<audio>`` cannot send a bearer token, so the panel first asks for a playback link with a reason
(``POST /api/v1/recordings/{id}/playback``): the access is audited there, once, with its reason, and the answer is
a URL carrying a short-lived signed grant — bound to the recording, the user and whether it is a download — which
the stream route verifies (and re-reads the user) on every range request the player makes while seeking.
The grant is signed (itsdangerous, HMAC-SHA256): nobody can guess or forge a URL, and it stops working after
``GRANT_TTL``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from itsdangerous import BadPayload, BadSignature

from callcenter.api.errors import Forbidden, Unauthorized
from callcenter.api.tokens import serializer
from callcenter.users.models import Role

GRANT_TTL = dt.timedelta(minutes=15)
# Replaying is part of a supervisor's or auditor's work; taking a copy away is a separate permission.
MAY_DOWNLOAD = frozenset({Role.ADMIN, Role.AUDITOR})
REPLAY_ACTION, DOWNLOAD_ACTION = "recording.replay", "recording.download"


def may_download(role: Role) -> bool:
    return role in MAY_DOWNLOAD


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    recording_id: int
    user_id: int
    download: bool
    access_id: int  # the audit entry that recorded this access and its reason
    expires_at: dt.datetime


class GrantSigner:
    def __init__(self, key: bytes) -> None:
        self._serializer = serializer(key, "recording-grant")

    def issue(self, grant: Grant) -> str:
        return self._serializer.dumps([grant.recording_id, grant.user_id, int(grant.download), grant.access_id,
                                       int(grant.expires_at.timestamp())])

    def verify(self, token: str, recording_id: int, now: dt.datetime) -> Grant:
        try:
            rec, user, download, access, expires = (int(part) for part in self._serializer.loads(token))
        except BadSignature:
            raise Unauthorized("bad playback link signature", code="invalid_token") from None
        except (BadPayload, ValueError, TypeError):
            raise Unauthorized("unreadable playback link", code="invalid_token") from None
        grant = Grant(rec, user, bool(download), access, dt.datetime.fromtimestamp(expires, dt.UTC))
        if grant.recording_id != recording_id:
            raise Forbidden("this playback link is for another recording")
        if grant.expires_at <= now:
            raise Unauthorized("the playback link has expired: ask for a new one", code="invalid_token")
        return grant
