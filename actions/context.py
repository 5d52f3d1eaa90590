"""What every action needs: the protocol, the store, the safety net and a clock.

One AssistantContext is created when the action server starts; tests make
their own with a temporary database and a fixed clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from functools import cached_property
from typing import Callable, Optional
from zoneinfo import ZoneInfo

from aftercare.protocol import Protocol, current_protocol
from aftercare.recovery import hours_since, recovery_day
from aftercare.safety import RedFlagNet
from aftercare.settings import Settings, get_settings
from aftercare.store import db, repository

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class PatientView:
    """The facts about a patient that answers depend on (no ORM object leaks out)."""
    id: int
    treated_at: datetime
    tz: ZoneInfo
    treatment_number: int
    day: int
    hours: float
    treatment_id: Optional[int] = None


@dataclass
class AssistantContext:
    settings: Settings
    clock: Clock = utc_now
    _nets: dict = field(default_factory=dict, repr=False)

    @property
    def protocol(self) -> Protocol:
        return current_protocol(self.settings.protocol_path)

    @property
    def net(self) -> RedFlagNet:
        protocol = self.protocol
        key = id(protocol)
        if key not in self._nets:
            self._nets.clear()
            self._nets[key] = RedFlagNet.from_file(self.settings.red_flag_patterns_path, protocol)
        return self._nets[key]

    @cached_property
    def _migrated(self) -> bool:
        db.migrate(self.settings.database_url)
        return True

    def session(self):
        assert self._migrated
        return db.session_scope(self.settings.database_url)

    def now(self) -> datetime:
        return self.clock()

    def patient(self, sender_id: str) -> Optional[PatientView]:
        with self.session() as session:
            patient = repository.find_patient_by_sender(session, sender_id)
            if patient is None:
                return None
            treatment = repository.current_treatment(patient)
            if treatment is None:
                return None
            tz = ZoneInfo(patient.timezone)
            now = self.now()
            return PatientView(
                id=patient.id,
                treated_at=treatment.treated_at,
                tz=tz,
                treatment_number=treatment.number_in_series,
                day=recovery_day(treatment.treated_at, tz, now),
                hours=hours_since(treatment.treated_at, now),
                treatment_id=treatment.id,
            )

    def assumed_treatment_time(self) -> time:
        """When a patient gives a date but no time, assume the latest closing time of
        the clinic's week, so waiting periods are never cut short."""
        closing = [hours[1] for day in range(7) if (hours := self.protocol.clinic.hours_on(day))]
        return max(closing, default=time(18, 0))


_default: Optional[AssistantContext] = None


def default_context() -> AssistantContext:
    global _default
    if _default is None:
        _default = AssistantContext(settings=get_settings())
    return _default


def set_default_context(context: Optional[AssistantContext]) -> None:
    """Tests swap in their own context (temporary database, fixed clock)."""
    global _default
    _default = context
