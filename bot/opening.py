"""Whether the clinic is open now (temporary: replaced by aftercare.opening_hours)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aftercare.protocol import Protocol


def clinic_is_open(protocol: Protocol, now: datetime) -> bool:
    local = now.astimezone(ZoneInfo(protocol.clinic.timezone))
    hours = protocol.clinic.hours_on(local.weekday())
    return hours is not None and hours[0] <= local.time() < hours[1]
