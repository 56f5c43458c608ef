"""A hold placed over the API takes the recordings out of S3's own lifecycle rule at once; lifting puts them back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from callcenter.recordings.backends import RecordingStores
from callcenter.recordings.s3 import LEGAL_HOLD, STANDARD
from callcenter.recordings.storage import LocalRecordingStore
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.s3server import MotoServer
from tests.unit.retention.conftest import s3_store
from tests.unit.retention.rig import RECORDING_FLOOR, Rig


@pytest.fixture
def api_recording_stores(moto_server: MotoServer, tmp_path: Path) -> RecordingStores:
    return RecordingStores(s3_store(moto_server), LocalRecordingStore(tmp_path / "recordings"))


async def test_holds_over_the_api_tag_s3_objects(api: Api, api_recording_stores: RecordingStores,
                                                 moto_server: MotoServer) -> None:
    rig = Rig(api.db, api_recording_stores.primary, api.settings.data_dir.parent, s3=moto_server.client())
    call = await rig.call(ended=RECORDING_FLOOR)
    first = await rig.recording(created=RECORDING_FLOOR + dt.timedelta(minutes=1), call_id=call)
    second = await rig.recording(created=RECORDING_FLOOR + dt.timedelta(minutes=2), call_id=call)
    complaint = await rig.order(call_id=call)
    assert [await rig.tag(first), await rig.tag(second)] == [STANDARD, STANDARD]

    status, body = await api.request("PUT", f"/api/v1/calls/{call}/legal-hold", role=Role.AUDITOR,
                                     json={"reason": "court order"})
    assert status == 200 and body["recording_ids"] == [first, second]
    assert [await rig.tag(first), await rig.tag(second)] == [LEGAL_HOLD, LEGAL_HOLD]

    status, _ = await api.request("PUT", f"/api/v1/work-orders/{complaint}/legal-hold", role=Role.AUDITOR,
                                  json={"reason": "complaint"})
    assert status == 200
    status, _ = await api.request("DELETE", f"/api/v1/calls/{call}/legal-hold", role=Role.AUDITOR,
                                  params={"reason": "court order lifted"})
    assert status == 200  # the complaint's hold still covers the call
    assert [await rig.tag(first), await rig.tag(second)] == [LEGAL_HOLD, LEGAL_HOLD]
    status, _ = await api.request("DELETE", f"/api/v1/work-orders/{complaint}/legal-hold", role=Role.AUDITOR,
                                  params={"reason": "complaint settled"})
    assert status == 200
    assert [await rig.tag(first), await rig.tag(second)] == [STANDARD, STANDARD]
