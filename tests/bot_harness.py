"""Shared pieces of the bot tests: a clock the test moves, a running bot
against the fake Telegram server, and patients enrolled through a real link."""
from __future__ import annotations

import asyncio
import itertools
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator, Iterator, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import text

from aftercare import checkins as plans
from aftercare import enrolment
from aftercare.protocol import load_protocol
from aftercare.services import running_services
from aftercare.settings import Settings, get_settings
from aftercare.store import db, deliveries, repository
from bot.app import build_application, running
from bot.checkin_service import JOB_TABLE, CheckinService
from support.fake_telegram import FakeTelegramServer
from support.processes import free_port

TOKEN = "123456:TEST-token"
_chat_ids = itertools.count(700_001)


class ManualClock:
    """The bot's notion of now; the test moves it."""

    def __init__(self, now: Optional[datetime] = None) -> None:
        self.current = now or datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.current

    def set(self, moment: datetime) -> None:
        self.current = moment.astimezone(timezone.utc)

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@contextmanager
def running_assistant(work: Path, database_url: Optional[str] = None) -> Iterator[Settings]:
    """The real Rasa server and action server on free ports, with logs of their
    own in `work` and a database there too, unless database_url names one (no
    review page: the bot tests do not need it). Rasa's tracker store is in the
    same database."""
    url = database_url or f"sqlite:///{work / 'aftercare.db'}"
    settings = replace(get_settings(), database_url=url,
                       rasa_url=f"http://127.0.0.1:{free_port()}",
                       action_server_url=f"http://127.0.0.1:{free_port()}/webhook",
                       log_dir=work / "log")
    db.migrate(url)
    with running_services(settings, log_dir=work / "log", timeout=300, include_review=False):
        yield settings



def new_chat_id() -> int:
    return next(_chat_ids)


def bot_settings(settings: Settings, telegram: FakeTelegramServer, **changes) -> Settings:
    return replace(settings, telegram_token=TOKEN, telegram_base_url=telegram.base_url,
                   telegram_base_file_url=telegram.base_file_url, **changes)


@asynccontextmanager
async def running_bot(settings: Settings, telegram: FakeTelegramServer,
                      clock: ManualClock, **changes) -> AsyncIterator:
    application = build_application(bot_settings(settings, telegram, **changes), clock=clock)
    async with running(application, poll_timeout=1):
        yield application


@asynccontextmanager
async def two_bots(settings: Settings, telegram: FakeTelegramServer) -> AsyncIterator[list]:
    """Two bot processes of one bot token, as two Applications: the first
    takes updates, the second only sends."""
    first = build_application(bot_settings(settings, telegram), clock=ManualClock())
    second = build_application(bot_settings(settings, telegram, telegram_receive_updates=False),
                               clock=ManualClock())
    async with running(first, poll_timeout=1), running(second, poll_timeout=1):
        yield [first, second]


def find_delivery(settings: Settings, patient_id: int, checkin_id: str):
    """The delivery row of one patient's check-in, or None."""
    with db.session_scope(settings.database_url) as session:
        return next((d for d in deliveries.for_patient(session, patient_id)
                     if d.checkin_id == checkin_id), None)


def delivery_status(settings: Settings, patient_id: int, checkin_id: str) -> Optional[str]:
    found = find_delivery(settings, patient_id, checkin_id)
    return found.status if found else None


def checkins(application) -> CheckinService:
    return application.bot_data["checkins"]


def add_patient(settings: Settings, treated_at: datetime, name: str = "Test Patient",
                number: int = 1, expiry_days: int = 7) -> tuple[int, str]:
    """A clinic patient and their enrolment code."""
    with db.session_scope(settings.database_url) as session:
        patient = repository.add_patient(session, name=name, treated_at=treated_at,
                                         timezone="Europe/London", treatment_number=number)
        code = enrolment.issue_code(session, patient, datetime.now(timezone.utc), expiry_days)
        return patient.id, code


async def enrol(telegram: FakeTelegramServer, settings: Settings, treated_at: datetime,
                expect_jobs: bool = True, **kwargs) -> tuple[int, int]:
    """Add a patient, tap their link; returns (patient id, chat id) once the
    welcome has arrived and the check-ins are scheduled."""
    patient_id, code = add_patient(settings, treated_at, **kwargs)
    chat_id = new_chat_id()
    telegram.push_command(chat_id, f"/start {code}")
    await telegram.await_messages(chat_id, 2, timeout=20)
    if expect_jobs:
        await wait_until(lambda: job_ids(settings, patient_id))
    return patient_id, chat_id


def treated_hours_ago(hours: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(hours=hours)


def planned_checkin(settings: Settings, patient_id: int,
                    checkin_id: str) -> Optional[plans.PlannedCheckin]:
    """When the patient's check-in is due, as the bot plans it from the protocol."""
    with db.session_scope(settings.database_url) as session:
        patient = repository.get_patient(session, patient_id)
        treatment = repository.current_treatment(patient)
        return plans.find(load_protocol(settings.protocol_path), treatment.treated_at,
                          ZoneInfo(patient.timezone), treatment.number_in_series, checkin_id)


def job_ids(settings: Settings, patient_id: Optional[int] = None) -> set[str]:
    engine = db.make_engine(settings.database_url)
    with engine.connect() as connection:
        ids = set(connection.execute(text(f"SELECT id FROM {JOB_TABLE}")).scalars())
        if patient_id is None:
            return ids
        treatments = set(connection.execute(
            text("SELECT id FROM treatments WHERE patient_id = :p"), {"p": patient_id}).scalars())
    return {j for j in ids if int(j.split(":")[1]) in treatments}


async def wait_until(condition, timeout: float = 15, interval: float = 0.05):
    """Poll a cheap condition (a database read) until it holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = condition()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def fire_now(application, job: str) -> None:
    """Make a scheduled check-in's job run now (APScheduler fires it for real)."""
    checkins(application).scheduler.modify_job(job, next_run_time=datetime.now(timezone.utc))
