"""An alarm's place in the queue the desk distributes to agents (issue 15): lower comes first.

The order is by band, then by severity within the band:

1. an SOS voice call (not an alarm: ``SOS_VOICE``) before everything — the elder is on the line;
2. a life at risk now: fall, smoke, gas, the SOS pressed without voice;
3. every other alarm (inactivity, geofence, water, doors, bed exit);
4. vital signs last: a reading is followed up, it does not mean someone is on the floor.

So a low-severity gas alarm still comes before a critical water leak, and any alarm before a critical reading.
"""

from __future__ import annotations

import enum

from callcenter.alarms.models import SEVERITY_RANK, AlarmSeverity, AlarmType


class Band(enum.IntEnum):
    SOS_VOICE = 0
    LIFE_AT_RISK = 1
    OTHER = 2
    VITALS = 3


LIFE_AT_RISK = frozenset({AlarmType.FALL, AlarmType.SMOKE, AlarmType.GAS, AlarmType.SOS_SILENT})
# Room for the severities within a band.
_BAND_WIDTH = 10
# The priority of an SOS voice call, for a queue that holds calls and alarms together.
SOS_VOICE = Band.SOS_VOICE * _BAND_WIDTH


def band(alarm_type: AlarmType) -> Band:
    if alarm_type in LIFE_AT_RISK:
        return Band.LIFE_AT_RISK
    if alarm_type is AlarmType.VITAL_SIGN:
        return Band.VITALS
    return Band.OTHER


def queue_priority(alarm_type: AlarmType, severity: AlarmSeverity) -> int:
    """The alarm's priority in the distribution queue: lower first, every alarm after ``SOS_VOICE``."""
    return band(alarm_type) * _BAND_WIDTH + 1 + SEVERITY_RANK[severity]
