"""The check-in delivery log on a real SQLite file and a real PostgreSQL
database (each test runs on both, conftest.py; migrated, so the status CHECK
constraint is the real one): claims, the step to sending, and what a start-up
does with rows a stop or a crash left in flight."""
from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from aftercare.store import db, deliveries, repository
from aftercare.store.models import CheckinDelivery

TREATED = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
STATUSES = ("due", "claimed", "sending", "sent", "skipped", "failed", "uncertain")

pytestmark = pytest.mark.all_databases


@pytest.fixture
def url(database_url: str) -> str:
    db.migrate(database_url)
    return database_url


def _treatment(url: str) -> tuple[int, int]:
    with db.session_scope(url) as session:
        patient = repository.add_patient(session, "Ana", TREATED, "Europe/London")
        return patient.id, repository.current_treatment(patient).id


def _row(url: str, status: str = "due", checkin_id: str = "day1_morning",
         detail: str | None = None) -> int:
    patient_id, treatment_id = _treatment(url)
    with db.session_scope(url) as session:
        assert deliveries.record(session, patient_id=patient_id, treatment_id=treatment_id,
                                 checkin_id=checkin_id, due_at=TREATED + timedelta(days=1),
                                 status=status, detail=detail)
    with db.session_scope(url) as session:
        return session.execute(select(CheckinDelivery.id).where(
            CheckinDelivery.treatment_id == treatment_id)).scalar_one()


def _get(url: str, delivery_id: int) -> CheckinDelivery:
    with db.session_scope(url) as session:
        return session.get(CheckinDelivery, delivery_id)


def _status(url: str, delivery_id: int) -> str:
    return _get(url, delivery_id).status


def _in_own_session(url: str, work):
    """work(session) in a session (and connection) of its own, committed."""
    engine = db.make_engine(url)
    try:
        with Session(engine, future=True) as session, session.begin():
            return work(session)
    finally:
        engine.dispose()


# --- claim ----------------------------------------------------------------------

def test_claim_wins_once_with_two_sessions_that_both_saw_it_due(url):
    delivery_id = _row(url)
    factory = db.session_factory(url)
    with factory() as first, factory() as second:
        # Both workers read the row as due ...
        assert [r.id for r in deliveries.due(first)] == [delivery_id]
        assert [r.id for r in deliveries.due(second)] == [delivery_id]
        first.rollback()
        second.rollback()
        # ... and both try to claim it: only the first change counts.
        assert deliveries.claim(first, delivery_id)
        first.commit()
        assert not deliveries.claim(second, delivery_id)
        second.commit()
    assert _status(url, delivery_id) == "claimed"


def test_claim_wins_once_with_workers_racing_in_threads(url):
    delivery_id = _row(url)
    workers = 6
    start = threading.Barrier(workers)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        start.wait()
        won = _in_own_session(url, lambda s: deliveries.claim(s, delivery_id))
        with lock:
            results.append(won)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [False] * (workers - 1) + [True]
    assert _status(url, delivery_id) == "claimed"


@pytest.mark.parametrize("status", [s for s in STATUSES if s != "due"])
def test_only_a_due_row_can_be_claimed(url, status):
    delivery_id = _row(url, status)
    assert not _in_own_session(url, lambda s: deliveries.claim(s, delivery_id))
    assert _status(url, delivery_id) == status


# --- claimed → sending ------------------------------------------------------------

def test_claimed_to_sending_once(url):
    delivery_id = _row(url)
    assert _in_own_session(url, lambda s: deliveries.claim(s, delivery_id))
    assert _in_own_session(url, lambda s: deliveries.start_sending(s, delivery_id))
    assert _status(url, delivery_id) == "sending"
    assert not _in_own_session(url, lambda s: deliveries.start_sending(s, delivery_id))
    assert _status(url, delivery_id) == "sending"


@pytest.mark.parametrize("status", [s for s in STATUSES if s != "claimed"])
def test_only_a_claimed_row_goes_to_sending(url, status):
    """An unclaimed (due) row is never sent, nor one already past sending."""
    delivery_id = _row(url, status)
    assert not _in_own_session(url, lambda s: deliveries.start_sending(s, delivery_id))
    assert _status(url, delivery_id) == status


def test_sending_then_sent(url):
    delivery_id = _row(url)
    _in_own_session(url, lambda s: deliveries.claim(s, delivery_id))
    _in_own_session(url, lambda s: deliveries.start_sending(s, delivery_id))
    _in_own_session(url, lambda s: deliveries.finish(s, delivery_id, "sent"))
    assert _status(url, delivery_id) == "sent"


# --- release (the assistant did not answer) -----------------------------------------

def test_release_returns_a_claimed_row_to_due(url):
    delivery_id = _row(url)
    _in_own_session(url, lambda s: deliveries.claim(s, delivery_id))
    assert _in_own_session(url, lambda s: deliveries.release(s, delivery_id,
                                                              "assistant unavailable"))
    row = _get(url, delivery_id)
    assert (row.status, row.detail) == ("due", "assistant unavailable")
    assert _in_own_session(url, lambda s: deliveries.claim(s, delivery_id))


@pytest.mark.parametrize("status", ["sending", "sent", "uncertain", "due"])
def test_release_leaves_anything_but_claimed_alone(url, status):
    delivery_id = _row(url, status)
    assert not _in_own_session(url, lambda s: deliveries.release(s, delivery_id, "x"))
    assert _status(url, delivery_id) == status


# --- start-up recovery -------------------------------------------------------------

def test_start_up_recovery_claimed_to_due_sending_to_uncertain_nothing_else(url):
    ids = {status: _row(url, status, detail=f"was {status}") for status in STATUSES}
    before = {status: _get(url, i) for status, i in ids.items()}

    returned, uncertain = _in_own_session(url, deliveries.recover_interrupted)

    assert (returned, uncertain) == (1, 1)
    after = {status: _get(url, i) for status, i in ids.items()}
    assert after["claimed"].status == "due"
    assert after["sending"].status == "uncertain"
    assert after["sending"].detail == "interrupted while sending"
    for status in ("due", "sent", "skipped", "failed", "uncertain"):
        assert (after[status].status, after[status].detail, after[status].updated_at) == \
            (before[status].status, before[status].detail, before[status].updated_at)
    # The returned row is an ordinary due row again: it can be claimed and sent.
    assert _in_own_session(url, lambda s: deliveries.claim(s, ids["claimed"]))
    assert _in_own_session(url, lambda s: deliveries.start_sending(s, ids["claimed"]))


def test_start_up_recovery_with_nothing_in_flight_changes_nothing(url):
    ids = [_row(url, status) for status in ("due", "sent", "uncertain")]
    assert _in_own_session(url, deliveries.recover_interrupted) == (0, 0)
    assert [_status(url, i) for i in ids] == ["due", "sent", "uncertain"]


def test_second_instance_starting_mid_delivery_still_sends_once(url):
    """Instance A claimed the row and waits for the assistant; instance B starts
    (returns A's claimed row to due) and claims it again. Whichever moves it to
    sending first sends; the other finds it taken."""
    delivery_id = _row(url)
    assert _in_own_session(url, lambda s: deliveries.claim(s, delivery_id))        # A
    assert _in_own_session(url, deliveries.recover_interrupted) == (1, 0)          # B starts
    assert _in_own_session(url, lambda s: deliveries.claim(s, delivery_id))        # B
    assert _in_own_session(url, lambda s: deliveries.start_sending(s, delivery_id))    # A
    assert not _in_own_session(url, lambda s: deliveries.start_sending(s, delivery_id))  # B
    assert _status(url, delivery_id) == "sending"


# --- the service's writer around each send (bot.checkin_service._Marks) -----------

def _commits(engine) -> list[int]:
    counted: list[int] = []
    event.listen(engine, "commit", lambda connection: counted.append(1))
    return counted


@pytest.mark.asyncio
async def test_sending_travels_with_the_sent_of_earlier_sends_in_one_transaction(url):
    from bot.checkin_service import _Marks
    out, nxt = _row(url, "sending"), _row(url, "claimed")
    engine = db.make_engine(url)
    commits = _commits(engine)
    marks = _Marks(sessionmaker(bind=engine, future=True))
    marks.sent(out)                               # waits for company ...
    assert _status(url, out) == "sending"
    assert await marks.start_sending(nxt)         # ... and goes with the next send
    assert (_status(url, out), _status(url, nxt)) == ("sent", "sending")
    assert len(commits) == 1
    assert not await marks.start_sending(nxt)     # only once
    await marks.close()
    engine.dispose()


@pytest.mark.asyncio
async def test_a_sent_alone_is_written_soon_and_close_writes_what_is_pending(url):
    from bot.checkin_service import SENT_DELAY, _Marks
    alone, last = _row(url, "sending"), _row(url, "sending")
    engine = db.make_engine(url)
    marks = _Marks(sessionmaker(bind=engine, future=True))
    marks.sent(alone)
    await asyncio.sleep(SENT_DELAY + 0.5)
    assert _status(url, alone) == "sent"
    marks.sent(last)
    await marks.close()                           # stopping: no waiting for company
    assert _status(url, last) == "sent"
    engine.dispose()


@pytest.mark.asyncio
async def test_many_sends_at_once_each_start_once(url):
    from bot.checkin_service import _Marks
    ids = [_row(url, "claimed") for _ in range(20)]
    engine = db.make_engine(url)
    marks = _Marks(sessionmaker(bind=engine, future=True))
    first = await asyncio.gather(*(marks.start_sending(i) for i in ids))
    again = await asyncio.gather(*(marks.start_sending(i) for i in ids))
    await marks.close()
    engine.dispose()
    assert all(first) and not any(again)
    assert {_status(url, i) for i in ids} == {"sending"}
