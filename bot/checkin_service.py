"""Check-ins: scheduled with APScheduler in a persistent job store, delivered
exactly once through the delivery log.

- Every future check-in of an enrolled patient is a job in the `checkin_jobs`
  table (APScheduler's SQLAlchemy job store, same database), with an explicit
  id, so a restart or a redeploy keeps it.
- When a job fires, the check-in is recorded as `due` in the delivery log and
  the dispatcher sends it: claim (conditional UPDATE), trigger the
  EXTERNAL_checkin intent in Rasa, send the reply, mark `sent`.
- `reconcile()` runs at start-up and every few minutes: it adds jobs that are
  missing (new patients, new treatments, jobs lost with a crash), removes jobs
  that no longer apply, and records check-ins missed while the bot was down
  as `due` if still within their grace window, `skipped` otherwise.
- Check-ins are paced below Telegram's overall limit, leaving room for
  conversation replies; a due check-in in the patient's quiet hours waits for
  their end.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

from aiolimiter import AsyncLimiter
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload
from telegram import Bot
from telegram.error import TelegramError

from aftercare import checkins
from aftercare.protocol import Protocol
from aftercare.store import db, deliveries, repository
from aftercare.store.models import Patient, Treatment
from bot.context import BotContext, chat_for_sender
from bot.rasa import RasaUnavailable
from bot.sending import send

logger = logging.getLogger(__name__)

JOB_TABLE = "checkin_jobs"
JOB_FUNCTION = "bot.checkin_service:checkin_due"
RECONCILE_EVERY = timedelta(minutes=5)
RASA_RETRY = timedelta(minutes=1)

_active: Optional["CheckinService"] = None


async def checkin_due(treatment_id: int, checkin_id: str) -> None:
    """The job every check-in runs (a module-level function, so the job store
    can keep a reference to it)."""
    if _active is None:
        logger.error("check-in %s/%s fired with no service running", treatment_id, checkin_id)
        return
    await _active.on_due(treatment_id, checkin_id)


def job_id(treatment_id: int, checkin_id: str) -> str:
    return f"checkin:{treatment_id}:{checkin_id}"


@dataclass(frozen=True)
class _Job:
    id: str
    run_at: datetime
    treatment_id: int
    checkin_id: str


@dataclass(frozen=True)
class _Delivery:
    id: int
    treatment_id: int
    checkin_id: str


def _active_patients(session: Session, patient_id: Optional[int]) -> list[Patient]:
    query = (select(Patient).options(selectinload(Patient.treatments))
             .where(Patient.enrolled_at.is_not(None), Patient.sender_id.is_not(None),
                    Patient.unreachable_at.is_(None)))
    if patient_id is not None:
        query = query.where(Patient.id == patient_id)
    return list(session.execute(query).scalars())


def _planned(protocol: Protocol, patient: Patient) -> tuple[Optional[Treatment], list]:
    treatment = repository.current_treatment(patient)
    if treatment is None:
        return None, []
    return treatment, checkins.plan(protocol, treatment.treated_at, ZoneInfo(patient.timezone),
                                    treatment.number_in_series)


def _settle(session: Session, protocol: Protocol, now: datetime,
            patient_id: Optional[int] = None) -> dict[str, _Job]:
    """Record missed check-ins (due or skipped) and return the jobs that should exist."""
    recorded = deliveries.recorded_keys(session)
    wanted: dict[str, _Job] = {}
    for patient in _active_patients(session, patient_id):
        treatment, planned = _planned(protocol, patient)
        for item in planned:
            if (treatment.id, item.checkin_id) in recorded:
                continue
            if item.due_at > now:
                key = job_id(treatment.id, item.checkin_id)
                wanted[key] = _Job(key, item.due_at, treatment.id, item.checkin_id)
                continue
            if item.due_at < patient.enrolled_at:
                status, detail = "skipped", "due before the patient enrolled"
            elif now > item.expires_at:
                status, detail = "skipped", "missed while the bot was not running; stale"
            else:
                status, detail = "due", "missed while the bot was not running"
            deliveries.record(session, patient_id=patient.id, treatment_id=treatment.id,
                              checkin_id=item.checkin_id, due_at=item.due_at,
                              status=status, detail=detail)
            if status == "skipped":
                logger.info("check-in %s/%s skipped: %s", treatment.id, item.checkin_id, detail)
    return wanted


class CheckinService:
    def __init__(self, ctx: BotContext, bot: Bot, *, rate_per_second: float = 28,
                 workers: int = 24) -> None:
        self.ctx = ctx
        self.bot = bot
        self._engine = db.make_engine(ctx.settings.database_url, future=False)
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self._engine, tablename=JOB_TABLE)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=timezone.utc)
        self._pace = AsyncLimiter(1, 1 / rate_per_second)  # evenly spaced, no bursts
        self._slots = asyncio.Semaphore(workers)
        self._wake = asyncio.Event()
        self._inflight: set[int] = set()
        self._not_before: dict[int, datetime] = {}
        self._runner: Optional[asyncio.Task] = None
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        global _active
        _active = self
        uncertain = await self.ctx.db(deliveries.mark_interrupted_uncertain)
        if uncertain:
            logger.warning("%d check-in(s) were being sent when the bot stopped; marked "
                           "uncertain and not re-sent", uncertain)
        self.scheduler.start()
        await self.reconcile()
        self._runner = asyncio.create_task(self._run(), name="checkin-dispatcher")

    async def stop(self) -> None:
        """Stop taking new check-ins; let the ones being sent finish."""
        global _active
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self._engine.dispose()
        if _active is self:
            _active = None

    def wake(self) -> None:
        """Look at due check-ins now (after the clock moved, in tests)."""
        self._not_before.clear()
        self._wake.set()

    # --- scheduling ----------------------------------------------------------

    async def reconcile(self, patient_id: Optional[int] = None) -> int:
        """Bring jobs and the delivery log in line with the patients; returns
        the number of jobs added."""
        protocol, now = self.ctx.protocol, self.ctx.now()
        wanted = await self.ctx.db(lambda s: _settle(s, protocol, now, patient_id))
        added = await asyncio.to_thread(self._sync_jobs, wanted, patient_id)
        self._wake.set()
        return added

    async def schedule_patient(self, patient_id: int) -> None:
        await self.reconcile(patient_id)

    async def unschedule_patient(self, patient_id: int) -> None:
        """Remove the jobs of a patient who is gone (erased) or blocked the bot."""
        prefixes = await self.ctx.db(lambda s: [
            f"checkin:{t.id}:" for t in s.execute(
                select(Treatment).where(Treatment.patient_id == patient_id)).scalars()])
        if not prefixes:  # erased already: find the jobs by what they carry
            return await asyncio.to_thread(self._remove_orphans)
        for job in await asyncio.to_thread(self._job_ids):
            if job.startswith(tuple(prefixes)):
                self._remove(job)

    def _job_ids(self) -> set[str]:
        with self._engine.connect() as connection:
            return set(connection.execute(text(f"SELECT id FROM {JOB_TABLE}")).scalars())

    def _remove(self, job: str) -> None:
        try:
            self.scheduler.remove_job(job)
        except Exception:  # JobLookupError: already gone
            pass

    def _remove_orphans(self) -> None:
        with self._engine.connect() as connection:
            treatments = set(connection.execute(text("SELECT id FROM treatments")).scalars())
        for job in self._job_ids():
            if job.startswith("checkin:") and int(job.split(":")[1]) not in treatments:
                self._remove(job)

    def _sync_jobs(self, wanted: dict[str, _Job], patient_id: Optional[int]) -> int:
        existing = {j for j in self._job_ids() if j.startswith("checkin:")}
        for job in wanted.values():
            if job.id not in existing:
                self.scheduler.add_job(JOB_FUNCTION, "date", run_date=job.run_at, id=job.id,
                                       args=[job.treatment_id, job.checkin_id],
                                       replace_existing=True)
        if patient_id is None:  # a full pass: drop jobs that no longer apply
            for stale in existing - set(wanted):
                self._remove(stale)
        return len(set(wanted) - existing)

    # --- delivery ----------------------------------------------------------

    async def on_due(self, treatment_id: int, checkin_id: str) -> None:
        protocol = self.ctx.protocol

        def record(session: Session) -> bool:
            treatment = session.get(Treatment, treatment_id)
            if treatment is None:
                return False
            patient = treatment.patient
            item = checkins.find(protocol, treatment.treated_at, ZoneInfo(patient.timezone),
                                 treatment.number_in_series, checkin_id)
            if item is None:
                return False
            return deliveries.record(session, patient_id=patient.id, treatment_id=treatment_id,
                                     checkin_id=checkin_id, due_at=item.due_at)

        if await self.ctx.db(record):
            self._wake.set()

    async def _run(self) -> None:
        next_reconcile = self.ctx.now() + RECONCILE_EVERY
        while True:
            self._wake.clear()
            now = self.ctx.now()
            if now >= next_reconcile:
                await self.reconcile()
                next_reconcile = now + RECONCILE_EVERY
            rows = await self.ctx.db(lambda s: [
                _Delivery(r.id, r.treatment_id, r.checkin_id) for r in deliveries.due(s)])
            for row in rows:
                if row.id in self._inflight or self._not_before.get(row.id, now) > now:
                    continue
                await self._slots.acquire()
                self._inflight.add(row.id)
                task = asyncio.create_task(self._deliver(row))
                self._tasks.add(task)
                task.add_done_callback(lambda t, i=row.id: self._done(t, i))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._sleep_seconds(now))
            except asyncio.TimeoutError:
                pass

    def _sleep_seconds(self, now: datetime) -> float:
        later = [t for t in self._not_before.values() if t > now]
        until = min(later, default=now + timedelta(seconds=30)) - now
        return max(0.05, min(until.total_seconds(), 30.0))

    def _done(self, task: asyncio.Task, delivery_id: int) -> None:
        self._tasks.discard(task)
        self._inflight.discard(delivery_id)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            logger.error("check-in delivery %s failed: %s", delivery_id,
                         type(task.exception()).__name__)
        self._wake.set()

    def _prepare(self, session: Session, row: _Delivery) -> tuple:
        """Decide what to do with a due check-in, and claim it if it is to be sent."""
        now, protocol = self.ctx.now(), self.ctx.protocol
        treatment = session.get(Treatment, row.treatment_id)
        patient = treatment.patient if treatment else None
        if patient is None or patient.sender_id is None:
            return ("skip", "the patient's record is gone")
        if patient.unreachable_at is not None:
            return ("fail", "the patient blocked the bot")
        if patient.checkins_paused_at is not None:
            return ("skip", "check-ins paused by the patient")
        if repository.current_treatment(patient).id != treatment.id:
            return ("skip", "a newer treatment replaced this one")
        tz = ZoneInfo(patient.timezone)
        item = checkins.find(protocol, treatment.treated_at, tz, treatment.number_in_series,
                             row.checkin_id)
        if item is None:
            return ("skip", "no longer in the protocol")
        if now > item.expires_at:
            return ("skip", "stale: past its grace window")
        allowed = checkins.outside_quiet_hours(now, protocol.quiet_hours, tz)
        if allowed > now:
            return ("defer", allowed)
        chat_id = chat_for_sender(patient.sender_id)
        if chat_id is None:
            return ("skip", "the patient has no Telegram chat")
        if not deliveries.claim(session, row.id):
            return ("taken",)
        return ("send", patient.id, patient.sender_id, chat_id, item.day)

    async def _deliver(self, row: _Delivery) -> None:
        decision = await self.ctx.db(lambda s: self._prepare(s, row))
        action = decision[0]
        if action in ("skip", "fail"):
            status = "skipped" if action == "skip" else "failed"
            await self.ctx.db(lambda s: deliveries.finish(s, row.id, status, decision[1]))
            logger.info("check-in %s %s: %s", row.id, status, decision[1])
            return
        if action == "defer":
            self._not_before[row.id] = decision[1]
            return
        if action == "taken":
            return
        _, patient_id, sender_id, chat_id, day = decision
        self._not_before.pop(row.id, None)
        try:
            replies = await self.ctx.rasa.trigger(
                sender_id, "EXTERNAL_checkin", {"checkin": row.checkin_id, "day": day})
        except RasaUnavailable as exc:
            await self.ctx.db(lambda s: deliveries.release(s, row.id, "assistant unavailable"))
            self._not_before[row.id] = self.ctx.now() + RASA_RETRY
            logger.error("check-in %s waits: %s", row.id, exc)
            return
        await self._pace.acquire()
        try:
            reached = await send(self.ctx, self.bot, chat_id,
                                 [(r.text, r.buttons) for r in replies], kind="checkin",
                                 patient_id=patient_id)
        except TelegramError as exc:
            await self.ctx.db(lambda s: deliveries.finish(s, row.id, "failed",
                                                          f"Telegram: {type(exc).__name__}"))
            logger.error("check-in %s failed: %s", row.id, type(exc).__name__)
            return
        if not reached:
            await self.ctx.db(lambda s: deliveries.finish(s, row.id, "failed",
                                                          "the patient blocked the bot"))
            await self.unschedule_patient(patient_id)
            return
        await self.ctx.db(lambda s: deliveries.finish(s, row.id, "sent"))
