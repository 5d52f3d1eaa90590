"""Check-ins: scheduled with APScheduler in a persistent job store, delivered
exactly once through the delivery log.

- Every future check-in of an enrolled patient is a job in the `checkin_jobs`
  table (APScheduler's SQLAlchemy job store, same database), with an explicit
  id, so a restart or a redeploy keeps it.
- When a job fires, the check-in is recorded as `due` in the delivery log and
  the dispatcher sends it: claim it (`claimed`, a conditional UPDATE), trigger
  the EXTERNAL_checkin intent in Rasa, and when its turn to go to Telegram
  comes, mark it `sending` (conditional again), send the reply, mark `sent`
  (only after Telegram accepted it; an empty reply from the assistant is `failed`).
  At start-up a row left `claimed` is due again (it never reached Telegram),
  one left `sending` is `uncertain` (aftercare/store/deliveries.py).
- `reconcile()` runs at start-up and every few minutes: it adds jobs that are
  missing (new patients, new treatments, jobs lost with a crash), removes jobs
  that no longer apply, and records check-ins missed while the bot was down
  as `due` if still within their grace window, `skipped` otherwise.
- A patient marked unreachable (they blocked the bot) who writes again gets
  their future check-ins back (`reachable_again`); those missed meanwhile are
  skipped.
- Check-ins are paced below Telegram's overall limit, leaving room for
  conversation replies; a due check-in in the patient's quiet hours waits for
  their end.
- With several bot processes on one database, one of them leads: it alone
  runs the scheduler and sends check-ins, while it holds the scheduler lock
  (bot/leader.py: an advisory lock on PostgreSQL, a file lock on SQLite).
  The others stand by and ask for the lock every few seconds, so one takes
  over when the leader dies; what they do for their own patients (a new
  enrolment, /stop, /forget, a blocked patient writing again) goes into the
  shared job store and delivery log, which the leader looks at every time it
  checks its lock. A leader that loses the lock stops at once. The delivery
  log's conditional updates would keep a second sender from sending twice.

Many check-ins fall due at the same minute (everyone's day-1 morning), so the
database work is done in bulk and off the event loop (figures:
docs/benchmarks.md): the service keeps pooled connections and a thread pool of
its own (SQLAlchemy 1.4 opens and closes a SQLite connection per session
otherwise, and the bot's replies must not queue behind a wave of check-ins);
jobs that fire together are recorded in a few short transactions, not one
each; reconcile adds missing jobs in one transaction and wakes the scheduler
once. The claimed → sending step just before each request to Telegram and
the `sent` after it are written by one writer on a thread of its own (the
step is on the way of every send), together: each send's `sending` carries
the `sent` of the sends that ended just before it, so the step costs no
transaction of its own. The job store's connections commit without waiting
for the disk (synchronous=NORMAL, still crash-safe in WAL mode): the jobs are
derived from the patients and the delivery log, and reconcile rebuilds any
that a power cut loses; the delivery log, which makes sending exactly-once,
keeps full durability.
"""
from __future__ import annotations

import asyncio
import logging
import pickle
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Optional, TypeVar
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy import create_engine, event, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, joinedload, selectinload, sessionmaker
from sqlalchemy.pool import NullPool, QueuePool
from telegram import Bot
from telegram.error import TelegramError

from aftercare import checkins
from aftercare.protocol import Protocol
from aftercare.store import chats, db, deliveries, escalations, repository
from aftercare.store.models import CheckinDelivery, Patient, Treatment
from bot.budget import Pacer
from bot.context import BotContext, chat_for_sender
from bot.leader import ASK_AGAIN_SECONDS, LeaderLock
from bot.outgoing import compose
from bot.rasa import RasaUnavailable
from bot.sending import send

logger = logging.getLogger(__name__)

JOB_TABLE = "checkin_jobs"
JOB_FUNCTION = "bot.checkin_service:checkin_due"
RECONCILE_EVERY = timedelta(minutes=5)
RASA_RETRY = timedelta(minutes=1)
JOB_DEFAULTS = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
DB_THREADS = 6
RECORD_CHUNK = 200  # check-ins recorded per transaction: the write lock is held briefly
SENT_DELAY = 0.2    # seconds a `sent` may wait for a claimed → sending to travel with
WRITE_RETRY = 1.0   # seconds before writing `sent` again after the database refused
LEADER_POLL = ASK_AGAIN_SECONDS
T = TypeVar("T")

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
            patient_id: Optional[int] = None,
            missed_because: Optional[str] = None) -> dict[str, _Job]:
    """Record missed check-ins (due or skipped) and return the jobs that should
    exist. With `missed_because`, every past check-in without a row is skipped
    for that reason (none is sent late)."""
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
            elif missed_because is not None:
                status, detail = "skipped", missed_because
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


def _record_due(session: Session, protocol: Protocol, items: list[tuple[int, str]]) -> int:
    """Record fired check-ins as due (those without a row yet); the number recorded."""
    ids = sorted({treatment_id for treatment_id, _ in items})
    treatments = {t.id: t for t in session.execute(
        select(Treatment).options(joinedload(Treatment.patient))
        .where(Treatment.id.in_(ids))).scalars()}
    recorded = {(t, c) for t, c in session.execute(
        select(CheckinDelivery.treatment_id, CheckinDelivery.checkin_id)
        .where(CheckinDelivery.treatment_id.in_(ids)))}
    rows = []
    for treatment_id, checkin_id in items:
        treatment = treatments.get(treatment_id)
        if treatment is None or (treatment_id, checkin_id) in recorded:
            continue
        patient = treatment.patient
        item = checkins.find(protocol, treatment.treated_at, ZoneInfo(patient.timezone),
                             treatment.number_in_series, checkin_id)
        if item is not None:
            rows.append({"patient_id": patient.id, "treatment_id": treatment_id,
                         "checkin_id": checkin_id, "due_at": item.due_at, "status": "due",
                         "detail": None})
    if not rows:
        return 0
    try:
        with session.begin_nested():
            session.execute(insert(CheckinDelivery), rows)
    except IntegrityError:  # some were recorded meanwhile (a reconcile): one at a time
        return sum(deliveries.record(session, **row) for row in rows)
    return len(rows)


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _pooled_engine(url: str, *, future: bool, pool_size: int,
                   synchronous: Optional[str] = None) -> Engine:
    """db.make_engine, with a connection pool for a SQLite file (SQLAlchemy 1.4
    gives it none: every session would connect, set its pragmas and close)."""
    engine = db.make_engine(url, future=future)
    if engine.dialect.name != "sqlite":
        return engine
    if isinstance(engine.pool, NullPool):
        engine.dispose()
        engine = create_engine(url, future=future, poolclass=QueuePool, pool_size=pool_size,
                               max_overflow=pool_size, pool_pre_ping=False,
                               connect_args={"check_same_thread": False})
        event.listen(engine, "connect", db._on_sqlite_connect)
    if synchronous is not None:
        def _synchronous(dbapi_connection, connection_record) -> None:
            dbapi_connection.execute(f"PRAGMA synchronous={synchronous}")
        event.listen(engine, "connect", _synchronous)
    return engine


class _Marks:
    """The two writes around each check-in's request to Telegram: claimed →
    sending just before it (awaited: the request is made only if this caller
    changed the row) and `sent` after it (not awaited: the check-in is out).

    One writer, on a thread and a pooled connection of its own, so the
    claimed → sending that a paced send waits for never queues behind the
    service's other database work. Whatever is pending when it writes goes in
    one transaction: in a wave each send's claimed → sending carries the
    `sent` of those that ended since the last one, and a `sent` with nothing
    to travel with is written after at most SENT_DELAY seconds. A check-in
    sent but not yet marked `sent` when the process dies is `sending`, so
    `uncertain` at the next start, as one cut off during its request would be.
    """

    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="checkin-marks")
        self._starting: list[tuple[int, asyncio.Future]] = []
        self._sent: list[int] = []
        self._writer: Optional[asyncio.Task] = None
        self._timer: Optional[asyncio.TimerHandle] = None

    async def start_sending(self, delivery_id: int) -> bool:
        """claimed → sending, committed; False if the row was not claimed any
        more (another worker or instance moved it on: do not send)."""
        future = asyncio.get_running_loop().create_future()
        self._starting.append((delivery_id, future))
        self._kick()
        return await future

    def sent(self, delivery_id: int) -> None:
        self._sent.append(delivery_id)
        self._later(SENT_DELAY)

    async def close(self) -> None:
        """Write what is pending now (the service is stopping), then stop the thread."""
        while True:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._writer is None or self._writer.done():
                break
            await asyncio.gather(self._writer, return_exceptions=True)
        if (self._starting or self._sent) and not await self._write_once():
            logger.error("%d sent check-in(s) could not be marked sent; they will be "
                         "marked uncertain at the next start", len(self._sent))
        self._thread.shutdown(wait=True)

    def _later(self, delay: float) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(delay, self._kick)

    def _kick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="checkin-marks")

    async def _write(self) -> None:
        while self._starting or self._sent:
            if not await self._write_once():
                self._later(WRITE_RETRY)
            if not self._starting:  # a `sent` that came meanwhile can wait for company
                break
        if self._sent:
            self._later(SENT_DELAY)

    async def _write_once(self) -> bool:
        starting, self._starting = self._starting, []
        sent, self._sent = self._sent, []

        def run() -> list[bool]:
            session = self._sessions()
            try:
                for delivery_id in sent:
                    deliveries.finish(session, delivery_id, "sent")
                changed = [deliveries.start_sending(session, delivery_id)
                           for delivery_id, _ in starting]
                session.commit()
                return changed
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

        try:
            changed = await asyncio.get_running_loop().run_in_executor(self._thread, run)
        except Exception as exc:
            logger.error("check-in delivery marks not written: %s", type(exc).__name__)
            self._sent[:0] = sent          # written again later
            for _, future in starting:     # not sent: the row stays claimed
                if not future.done():
                    future.set_exception(exc)
            return False
        for (_, future), ok in zip(starting, changed):
            if not future.done():
                future.set_result(ok)
        return True


class CheckinService:
    def __init__(self, ctx: BotContext, bot: Bot, *, rate_per_second: float = 28,
                 workers: int = 24, lock: Optional[LeaderLock] = None,
                 leader_poll: float = LEADER_POLL) -> None:
        self.ctx = ctx
        self.bot = bot
        url = ctx.settings.database_url
        self._engine = _pooled_engine(url, future=False, pool_size=2, synchronous="NORMAL")
        self._store = SQLAlchemyJobStore(engine=self._engine, tablename=JOB_TABLE)
        self._db_engine = _pooled_engine(url, future=True, pool_size=DB_THREADS)
        self._sessions = sessionmaker(bind=self._db_engine, future=True, expire_on_commit=False)
        self._threads = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="checkin-db")
        self._marks = _Marks(self._sessions)
        self.scheduler = self._new_scheduler()
        self._lock = lock or LeaderLock()
        self._leader_poll = leader_poll
        self.leading = False
        self._watcher: Optional[asyncio.Task] = None
        self._pace = Pacer(rate_per_second)  # evenly spaced, no bursts
        self._slots = asyncio.Semaphore(workers)
        self._wake = asyncio.Event()
        self._inflight: set[int] = set()
        self._not_before: dict[int, datetime] = {}
        self._runner: Optional[asyncio.Task] = None
        self._tasks: set[asyncio.Task] = set()
        self._arrived: list[tuple[int, str]] = []      # fired jobs not yet recorded
        self._recorder: Optional[asyncio.Task] = None

    async def _db(self, work: Callable[[Session], T]) -> T:
        """Like ctx.db (work(session) in a worker thread, committed), on the
        service's own pooled connections and threads."""
        def run() -> T:
            session = self._sessions()
            try:
                result = work(session)
                session.commit()
                return result
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()
        return await asyncio.get_running_loop().run_in_executor(self._threads, run)

    async def _in_thread(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, work)

    def _new_scheduler(self) -> AsyncIOScheduler:
        return AsyncIOScheduler(jobstores={"default": self._store},
                                job_defaults=JOB_DEFAULTS, timezone=timezone.utc)

    # --- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        try:   # a standby writes jobs too; the leader's scheduler may not have made the table
            await self._in_thread(lambda: self._store.jobs_t.create(self._engine, checkfirst=True))
        except SQLAlchemyError:   # another process made it at the same moment
            pass
        if await self._in_thread(self._lock.try_acquire):
            await self._lead()
        else:
            logger.warning("another bot process schedules and sends the check-ins (%s): this "
                           "one stands by without a scheduler, and takes over if that one "
                           "stops", self._lock.description)
        self._watcher = asyncio.create_task(self._watch_lock(), name="checkin-leadership")

    async def _lead(self, grace: float = 0.0) -> None:
        """Become the process that schedules and sends. After a takeover, wait
        `grace` first: a leader that lost its lock (rather than died) notices
        within one check and stops before rows it left are taken back."""
        global _active
        if grace:
            await asyncio.sleep(grace)
        _active, self.leading = self, True
        returned, uncertain = await self._db(deliveries.recover_interrupted)
        if returned:
            logger.warning("%d check-in(s) were claimed but not yet sent when the bot "
                           "stopped; due again (sent if still within their grace)", returned)
        if uncertain:
            logger.warning("%d check-in(s) were being sent when the bot stopped; marked "
                           "uncertain and not re-sent", uncertain)
        self.scheduler.start()
        await self.reconcile()
        self._runner = asyncio.create_task(self._run(), name="checkin-dispatcher")
        logger.info("this bot process schedules and sends the check-ins (%s)",
                    self._lock.description)

    async def _stand_down(self) -> None:
        """Stop scheduling and sending at once; sends under way are cut off
        (a row left `sending` is uncertain for the next leader, never re-sent)."""
        global _active
        self.leading = False
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._not_before.clear()
        if _active is self:
            _active = None
        self.scheduler = self._new_scheduler()

    async def _watch_lock(self) -> None:
        while True:
            await asyncio.sleep(self._leader_poll)
            try:
                if self.leading:
                    if not await self._in_thread(self._lock.held):
                        logger.error("the check-in scheduler lock was lost (%s): this process "
                                     "stops sending check-ins and asks for it again",
                                     self._lock.description)
                        await self._stand_down()
                        continue
                    # Jobs and due check-ins that standby processes wrote.
                    if self.scheduler.running:
                        self.scheduler.wakeup()
                    self._wake.set()
                elif await self._in_thread(self._lock.try_acquire):
                    logger.warning("the bot process that sent check-ins stopped: this one takes "
                                   "over (%s)", self._lock.description)
                    await self._lead(grace=2 * self._leader_poll)
            except asyncio.CancelledError:
                raise
            except Exception as exc:   # keep watching: the next round tries again
                logger.error("check-in scheduler lock: %s", type(exc).__name__, exc_info=exc)

    async def stop(self) -> None:
        """Stop taking new check-ins; let the ones being sent finish."""
        global _active
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        if self.scheduler.running:  # no more jobs fire (a job not fired yet stays scheduled)
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down at the loop's next turn
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        while self._recorder is not None and not self._recorder.done():
            await asyncio.gather(self._recorder, return_exceptions=True)
        await self._marks.close()
        await self._in_thread(self._lock.release)
        self.leading = False
        self._threads.shutdown(wait=True)
        self._engine.dispose()
        self._db_engine.dispose()
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
        started = time.monotonic()
        wanted = await self._db(lambda s: _settle(s, protocol, now, patient_id))
        added = await self._in_thread(lambda: self._sync_jobs(wanted, patient_id))
        self._wake.set()
        if added:
            logger.info("reconcile: %d check-in job(s) added, %d wanted, in %.1f s", added,
                        len(wanted), time.monotonic() - started)
        return added

    async def schedule_patient(self, patient_id: int) -> None:
        await self.reconcile(patient_id)

    async def reachable_again(self, patient_id: int) -> bool:
        """A patient marked unreachable wrote again: clear the mark and schedule
        their future check-ins, in one transaction with skipping those that
        fell due while they could not be reached (never sent late). False if
        they were not marked unreachable (any more)."""
        protocol, now = self.ctx.protocol, self.ctx.now()

        def clear_and_settle(session: Session) -> Optional[dict[str, _Job]]:
            if not chats.clear_unreachable(session, patient_id):
                return None
            return _settle(session, protocol, now, patient_id,
                           missed_because="missed while the patient had blocked the bot")

        wanted = await self._db(clear_and_settle)
        if wanted is None:
            return False
        await self._in_thread(lambda: self._sync_jobs(wanted, patient_id))
        self._wake.set()
        logger.info("patient %s wrote again: reachable, %d check-in job(s) scheduled",
                    patient_id, len(wanted))
        return True

    async def unschedule_patient(self, patient_id: int) -> None:
        """Remove the jobs of a patient who is gone (erased) or blocked the bot."""
        prefixes = await self._db(lambda s: [
            f"checkin:{t.id}:" for t in s.execute(
                select(Treatment).where(Treatment.patient_id == patient_id)).scalars()])
        if not prefixes:  # erased already: find the jobs by what they carry
            return await self._in_thread(self._remove_orphans)
        for job in await self._in_thread(self._job_ids):
            if job.startswith(tuple(prefixes)):
                self._remove(job)

    def _job_ids(self) -> set[str]:
        with self._engine.connect() as connection:
            return set(connection.execute(text(f"SELECT id FROM {JOB_TABLE}")).scalars())

    def _remove(self, job: str) -> None:
        try:
            if self.scheduler.running:
                self.scheduler.remove_job(job)
            else:   # a standby: straight from the shared job store
                self._store.remove_job(job)
        except Exception:  # JobLookupError: already gone
            pass

    def _remove_orphans(self) -> None:
        with self._engine.connect() as connection:
            treatments = set(connection.execute(text("SELECT id FROM treatments")).scalars())
        for job in self._job_ids():
            if job.startswith("checkin:") and int(job.split(":")[1]) not in treatments:
                self._remove(job)

    def _job_times(self) -> dict[str, Optional[float]]:
        """Check-in job ids and when they run (a UTC timestamp)."""
        with self._engine.connect() as connection:
            rows = connection.execute(text(
                f"SELECT id, next_run_time FROM {JOB_TABLE} WHERE id LIKE 'checkin:%'"))
            return {job: run_at for job, run_at in rows}

    def _sync_jobs(self, wanted: dict[str, _Job], patient_id: Optional[int]) -> int:
        existing = self._job_times()
        missing = [job for key, job in wanted.items() if key not in existing]
        if missing:
            self._add_jobs(missing)
        # A corrected treatment date or a changed protocol moves a check-in.
        moved = [job for key, job in wanted.items() if existing.get(key) is not None
                 and abs(existing[key] - job.run_at.timestamp()) > 1]
        if moved:
            self._add_jobs(moved, replace=True)
            logger.info("reconcile: %d check-in job(s) moved to a new time", len(moved))
        if patient_id is None:  # a full pass: drop jobs that no longer apply
            for stale in existing.keys() - set(wanted):
                self._remove(stale)
        return len(missing)

    def _add_jobs(self, jobs: list[_Job], replace: bool = False) -> None:
        """The jobs scheduler.add_job would store, written in one transaction,
        then one wake-up of the scheduler (add_job commits and wakes it once per
        job: minutes for a clinic's worth of patients). With `replace`, jobs of
        the same ids are deleted in that transaction first. If one of them
        appeared meanwhile, fall back to add_job, which replaces it."""
        now = datetime.now(timezone.utc)

        def row(job: _Job) -> dict:
            trigger = DateTrigger(run_date=job.run_at, timezone=timezone.utc)
            apjob = Job(self.scheduler, id=job.id, func=JOB_FUNCTION, trigger=trigger,
                        executor="default", args=(job.treatment_id, job.checkin_id),
                        kwargs={}, next_run_time=trigger.get_next_fire_time(None, now),
                        **JOB_DEFAULTS)
            return {"id": apjob.id,
                    "next_run_time": datetime_to_utc_timestamp(apjob.next_run_time),
                    "job_state": pickle.dumps(apjob.__getstate__(), self._store.pickle_protocol)}

        try:
            with self._engine.begin() as connection:
                table = self._store.jobs_t
                for chunk in _chunks(jobs if replace else [], 500):
                    connection.execute(table.delete().where(table.c.id.in_([j.id for j in chunk])))
                for chunk in _chunks(jobs, 5000):  # built a chunk at a time: less memory
                    connection.execute(table.insert(), [row(j) for j in chunk])
        except IntegrityError:
            if not self.scheduler.running:   # a standby: the leader's reconcile adds them
                logger.info("%d check-in job(s) appeared meanwhile; left to the leader", len(jobs))
                return
            for job in jobs:
                self.scheduler.add_job(JOB_FUNCTION, "date", run_date=job.run_at, id=job.id,
                                       args=[job.treatment_id, job.checkin_id],
                                       replace_existing=True)
            return
        if self.scheduler.running:
            self.scheduler.wakeup()

    # --- delivery ----------------------------------------------------------

    async def on_due(self, treatment_id: int, checkin_id: str) -> None:
        """Record the check-in as due (once, however often its job runs). Jobs
        that fire together are recorded together; this returns once it is."""
        self._arrived.append((treatment_id, checkin_id))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_arrived(), name="checkin-recorder")
        await asyncio.shield(self._recorder)

    async def _record_arrived(self) -> None:
        protocol = self.ctx.protocol
        while self._arrived:
            batch, self._arrived = list(dict.fromkeys(self._arrived)), []
            for chunk in _chunks(batch, RECORD_CHUNK):
                if await self._db(lambda s, c=chunk: _record_due(s, protocol, c)):
                    self._wake.set()

    async def _run(self) -> None:
        next_reconcile = self.ctx.now() + RECONCILE_EVERY
        while True:
            self._wake.clear()
            now = self.ctx.now()
            if now >= next_reconcile:
                await self.reconcile()
                next_reconcile = now + RECONCILE_EVERY
            rows = await self._db(lambda s: [
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
        treatment = session.get(Treatment, row.treatment_id, options=[
            joinedload(Treatment.patient).selectinload(Patient.treatments)])
        patient = treatment.patient if treatment else None
        if patient is None or patient.sender_id is None:
            return ("skip", "the patient's record is gone")
        if patient.unreachable_at is not None:
            return ("fail", "the patient blocked the bot")
        if patient.checkins_paused_at is not None:
            return ("skip", "check-ins paused by the patient")
        if escalations.in_handoff(session, patient.sender_id) is not None:
            return ("skip", "a person at the clinic was handling the patient")
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
        decision = await self._db(lambda s: self._prepare(s, row))
        action = decision[0]
        if action in ("skip", "fail"):
            status = "skipped" if action == "skip" else "failed"
            await self._db(lambda s: deliveries.finish(s, row.id, status, decision[1]))
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
            await self._db(lambda s: deliveries.release(s, row.id, "assistant unavailable"))
            self._not_before[row.id] = self.ctx.now() + RASA_RETRY
            logger.error("check-in %s waits: %s", row.id, exc)
            return
        messages = [(r.text, r.buttons) for r in replies]
        if not compose(messages):
            # Nothing to send (e.g. no text for this check-in in the assistant's
            # domain): the row must not read `sent`.
            detail = f"the assistant gave no text for check-in {row.checkin_id}"
            await self._db(lambda s: deliveries.finish(s, row.id, "failed", detail))
            logger.error("check-in %s failed: %s", row.id, detail)
            return
        try:
            async with self._pace.turn():
                try:
                    ours = await self._marks.start_sending(row.id)
                except SQLAlchemyError:  # not sent; try again later
                    await self._db(lambda s: deliveries.release(s, row.id, "database busy"))
                    self._not_before[row.id] = self.ctx.now() + RASA_RETRY
                    return
                if not ours:
                    logger.info("check-in %s taken by another worker meanwhile", row.id)
                    return
                reached = await send(self.ctx, self.bot, chat_id, messages, kind="checkin",
                                     patient_id=patient_id)
        except TelegramError as exc:
            await self._db(lambda s: deliveries.finish(s, row.id, "failed",
                                                       f"Telegram: {type(exc).__name__}"))
            logger.error("check-in %s failed: %s", row.id, type(exc).__name__)
            return
        if not reached:
            await self._db(lambda s: deliveries.finish(s, row.id, "failed",
                                                       "the patient blocked the bot"))
            await self.unschedule_patient(patient_id)
            return
        self._marks.sent(row.id)
