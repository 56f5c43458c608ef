"""The distribution queue's order: SOS voice calls, then fall/smoke/gas/silent SOS, then the other alarms, vital signs
last; by severity within each band."""

from __future__ import annotations

import itertools

from callcenter.alarms.models import DEFAULT_SEVERITY, AlarmSeverity, AlarmType
from callcenter.alarms.priority import LIFE_AT_RISK, SOS_VOICE, queue_priority

T, S = AlarmType, AlarmSeverity


def test_sos_voice_calls_come_before_every_alarm() -> None:
    assert all(queue_priority(t, s) > SOS_VOICE for t, s in itertools.product(AlarmType, AlarmSeverity))


def test_life_at_risk_before_the_others_and_vital_signs_last_whatever_the_severity() -> None:
    assert {T.FALL, T.SMOKE, T.GAS, T.SOS_SILENT} == LIFE_AT_RISK
    others = set(AlarmType) - LIFE_AT_RISK - {T.VITAL_SIGN}
    for urgent, other in itertools.product(LIFE_AT_RISK, others):
        assert queue_priority(urgent, S.LOW) < queue_priority(other, S.CRITICAL), (urgent, other)
        assert queue_priority(other, S.LOW) < queue_priority(T.VITAL_SIGN, S.CRITICAL), other


def test_within_a_band_the_more_severe_first() -> None:
    ranks = [queue_priority(T.WATER_LEAK, severity) for severity in (S.CRITICAL, S.HIGH, S.MEDIUM, S.LOW)]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4
    # Same type and severity: the same priority (the queue then goes by arrival).
    assert queue_priority(T.FALL, S.CRITICAL) == queue_priority(T.SMOKE, S.CRITICAL)


def test_an_alarm_type_without_a_severity_gets_its_default() -> None:
    assert set(DEFAULT_SEVERITY) == set(AlarmType)
    assert {t for t, s in DEFAULT_SEVERITY.items() if s is S.CRITICAL} == LIFE_AT_RISK
    sorted_by_queue = sorted(AlarmType, key=lambda t: queue_priority(t, DEFAULT_SEVERITY[t]))
    assert set(sorted_by_queue[:4]) == LIFE_AT_RISK and sorted_by_queue[-1] is T.VITAL_SIGN
