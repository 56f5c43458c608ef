"""SMS templates: both catalogues hold the same keys and placeholders, every text fits one SMS with typical values,
names are masked, and a missing or unknown value, an unknown template, a bad number or a text over one SMS is refused
naming the field, with nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from callcenter.api.errors import Invalid
from callcenter.db.session import Database
from callcenter.notifications.models import MessageState, Purpose, SmsMessage
from callcenter.notifications.services import NotificationService
from callcenter.notifications.templates import LANGUAGES, Templates, check_one_sms, mask_name, sms_length
from tests.unit.notifications.factory import ALARM_VALUES

TYPICAL = {"elder_name": "欧阳秀兰", "time": "12月8日 14:05", "alarm": "烟雾", "hotline": "010-12349",
           "responder": "社区志愿者", "minutes": 30, "when": "明天上午9点", "what": "社区医生随访"}


def _values(templates: Templates, key: str) -> dict[str, object]:
    return {name: TYPICAL[name] for name in templates.placeholders_of(key)}


def test_every_template_in_every_language_fits_one_sms_after_the_signature() -> None:
    templates = Templates.load()
    assert {"alarm_notice", "cascade_request", "help_coming", "care_call_missed", "reminder"} <= templates.keys
    for language in LANGUAGES:
        for key in templates.keys:
            body = templates.render(key, _values(templates, key), language, prefix="【养老服务中心】").body
            length, limit, _alphabet = sms_length(body)
            assert length <= limit, (language, key, body)


def test_names_are_masked_and_values_shown_as_sent() -> None:
    rendered = Templates.load().render("alarm_notice", ALARM_VALUES)
    assert rendered.body == "张某某于14:05发生跌倒报警，中心正在处理。如有疑问请拨打12349。"
    assert rendered.values == {**ALARM_VALUES, "elder_name": "张某某"}
    assert [mask_name(name) for name in ("张伟", "张桂兰", "欧阳秀兰", "Li Wei Min", " ")] == [
        "张某", "张某某", "欧某某", "Li ***", ""]


@pytest.mark.parametrize(("key", "values", "field", "words"), [
    ("alarm_notice", {k: v for k, v in ALARM_VALUES.items() if k != "hotline"}, "values.hotline", "needs a value"),
    ("alarm_notice", {**ALARM_VALUES, "address": "月坛北街 8 号"}, "values.address", "no placeholder {address}"),
    ("alarm_notice", {**ALARM_VALUES, "time": " \n "}, "values.time", "is empty"),
    ("alarm_notice", {**ALARM_VALUES, "time": 14.5}, "values.time", "text or a whole number"),
    ("no_such_template", {}, "template", "no SMS template"),
    ("alarm_notice", {**ALARM_VALUES, "alarm": "跌倒" * 20}, "body", "one SMS holds 70 in UCS-2"),
])
def test_bad_values_are_refused_naming_the_field(key: str, values: dict[str, object], field: str,
                                                 words: str) -> None:
    with pytest.raises(Invalid, match=words) as refused:
        Templates.load().render(key, values)
    assert refused.value.field == field


def test_the_limits_are_70_in_ucs2_and_160_septets_in_gsm7() -> None:
    check_one_sms("字" * 70)
    check_one_sms("a" * 160)
    check_one_sms("€" * 80)  # an extension character takes two septets
    for text, limit in (("字" * 71, "70 in UCS-2"), ("a" * 161, "160 in GSM-7"), ("€" * 81, "160 in GSM-7"),
                        ("a" * 70 + "字", "70 in UCS-2")):
        with pytest.raises(Invalid, match=limit) as refused:
            check_one_sms(text)
        assert refused.value.field == "body"


def test_the_catalogues_must_agree(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="differ in keys"):
        Templates({"zh-CN": {"a": "甲{x}"}, "en": {"b": "b{x}"}})
    with pytest.raises(ValueError, match="other placeholders"):
        Templates({"zh-CN": {"a": "甲{x}"}, "en": {"a": "a{y}"}})
    with pytest.raises(ValueError, match="plain name"):
        Templates({"zh-CN": {"a": "甲{x.y}"}, "en": {"a": "a{x.y}"}})


async def test_a_refused_message_writes_nothing(db: Database) -> None:
    service = NotificationService(db, Templates.load(), channel="smpp")
    too_long = {**ALARM_VALUES, "alarm": "跌" * 60}
    for to, values, field in (("138 0013 x", ALARM_VALUES, "to"), ("1234", ALARM_VALUES, "to"),
                              ("139-0000-1111", too_long, "body")):
        with pytest.raises(Invalid) as refused:
            await service.send(to=to, template="alarm_notice", values=values, purpose=Purpose.ALARM_NOTICE)
        assert refused.value.field == field
    async with db.transaction(read_only=True) as session:
        assert await session.scalar(select(func.count()).select_from(SmsMessage)) == 0
    sent = await service.send(to="139-0000-1111", template="alarm_notice", values=ALARM_VALUES,
                              purpose=Purpose.ALARM_NOTICE, language="en")
    assert (sent.recipient, sent.state, sent.language) == ("13900001111", MessageState.QUEUED, "en")
    assert sent.body == "张某某: 跌倒 alarm at 14:05. We are on it; call 12349."
