"""The review page's sign-in limits over real HTTP (review/auth.py has the
policy): the real application from tests/review_harness.py, or `python -m
review` processes sharing one database (a SQLite file, then PostgreSQL:
conftest.py), with httpx clients as browsers.
Attempts are fired at once from threads; how many reached the password check
is what the answers say (401 checked and wrong, 303 checked and right, 429
refused before any check)."""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Iterator, Optional

import httpx
import pytest
from sqlalchemy import select

from aftercare.services import start_review_server, wait_until_healthy
from aftercare.store import db
from aftercare.store.models import LoginLimit
from review import auth
from tests.bot_harness import free_port
from tests.review_harness import (
    PASSWORD, STAFF_EMAIL, OffsetClock, add_staff, csrf_of, review_settings, serving,
)

pytestmark = pytest.mark.all_databases
WRONG = "wrong password 123"
NURSE_AT = "198.51.100.7"        # the nurse's own address, as the proxy saw it
STRANGER_AT = "203.0.113.9"      # the stranger's


@pytest.fixture
def url(database_url: str) -> str:
    db.migrate(database_url)
    add_staff(database_url)
    return database_url


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def behind_proxy(url: str, clock: OffsetClock) -> Iterator[str]:
    """The page behind a trusted proxy on 127.0.0.1 (the test plays the proxy)."""
    with serving(review_settings(url, review_trusted_proxies=("127.0.0.1/32",)), clock) as base:
        yield base


@pytest.fixture
def direct(url: str, clock: OffsetClock) -> Iterator[str]:
    """The page with no trusted proxy: every client is 127.0.0.1, like a whole
    clinic behind a proxy nobody told the page about."""
    with serving(review_settings(url), clock) as base:
        yield base


def browser(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=120)


def sign_in(client: httpx.Client, password: str, email: str = STAFF_EMAIL,
            forwarded: Optional[str] = None) -> httpx.Response:
    form = csrf_of(client.get("/login").text)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post("/login", data={"csrf": form, "email": email, "password": password},
                       headers=headers)


def at_once(base: str, passwords: list[str], email: str = STAFF_EMAIL,
            bases: Optional[list[str]] = None) -> list[int]:
    """POST every sign-in at the same moment (each browser has its form and an
    open connection first); their status codes, in order."""
    targets = bases or [base]
    clients = [browser(targets[n % len(targets)]) for n in range(len(passwords))]
    forms = [csrf_of(client.get("/login").text) for client in clients]
    start = threading.Barrier(len(passwords))
    statuses: list[int] = [0] * len(passwords)

    def post(n: int) -> None:
        start.wait()
        statuses[n] = clients[n].post("/login", data={"csrf": forms[n], "email": email,
                                                      "password": passwords[n]}).status_code

    threads = [threading.Thread(target=post, args=(n,)) for n in range(len(passwords))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    for client in clients:
        client.close()
    return statuses


# --- 1. many attempts at once -------------------------------------------------------

def test_sixty_wrong_passwords_at_once_get_five_password_checks(direct):
    statuses = Counter(at_once(direct, [WRONG] * 60))
    assert statuses == {401: 5, 429: 55}
    with browser(direct) as late:
        assert sign_in(late, PASSWORD).status_code == 429


def test_the_right_password_among_a_hundred_at_once_gets_no_extra_check(direct):
    passwords = [WRONG] * 99 + [PASSWORD]
    statuses = at_once(direct, passwords)
    checked = sum(1 for status in statuses if status in (401, 303))
    assert checked <= 5 and set(statuses) <= {401, 303, 429}
    assert statuses.count(429) >= 95


def test_the_right_password_sent_once_five_were_checked_is_refused(direct):
    """99 wrong ones at once; the right one goes as soon as five of them have
    been checked (the rest may still be being answered)."""
    clients = [browser(direct) for _ in range(100)]
    forms = [csrf_of(client.get("/login").text) for client in clients]
    start = threading.Barrier(99)
    five_checked = threading.Event()
    lock = threading.Lock()
    statuses: list[int] = [0] * 100

    def post(n: int, password: str) -> None:
        if n < 99:
            start.wait()
        elif not five_checked.wait(timeout=120):
            return   # statuses[99] stays 0: the assertion below fails
        status = clients[n].post("/login", data={"csrf": forms[n], "email": STAFF_EMAIL,
                                                 "password": password}).status_code
        with lock:
            statuses[n] = status
            if statuses.count(401) >= 5:
                five_checked.set()

    threads = [threading.Thread(target=post, args=(n, WRONG if n < 99 else PASSWORD))
               for n in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    for client in clients:
        client.close()
    assert statuses[99] == 429
    assert Counter(statuses) == {401: 5, 429: 95}


def test_two_review_processes_on_one_database_share_the_limit(url, tmp_path):
    """`python -m review` twice, as `aftercare run` starts it, on the same file."""
    services = []
    try:
        for n in range(2):
            settings = replace(review_settings(url), review_port=free_port(),
                               log_dir=tmp_path / f"log{n}")
            services.append(start_review_server(settings, settings.log_dir))
        wait_until_healthy(services, timeout=60)
        bases = [f"http://127.0.0.1:{s.health_url.split(':')[2].split('/')[0]}"
                 for s in services]
        statuses = Counter(at_once(bases[0], [WRONG] * 60, bases=bases))
        assert statuses == {401: 5, 429: 55}
    finally:
        for service in services:
            service.stop()


# --- 2. nobody else can lock a nurse out ----------------------------------------------

def test_a_strangers_failures_do_not_stop_the_nurse_from_her_address(behind_proxy):
    with browser(behind_proxy) as stranger:
        # The stranger claims to be the nurse's address; the proxy appends the real one.
        answers = [sign_in(stranger, WRONG, forwarded=f"{NURSE_AT}, {STRANGER_AT}").status_code
                   for _ in range(30)]
        assert answers == [401] * 5 + [429] * 25
        # And sending it straight to the proxy changes nothing: the proxy adds the peer.
        assert sign_in(stranger, PASSWORD, forwarded=f"{NURSE_AT}, {STRANGER_AT}").status_code \
            == 429
    with browser(behind_proxy) as nurse:
        assert sign_in(nurse, PASSWORD, forwarded=NURSE_AT).status_code == 303


def test_a_known_device_is_not_paused_by_failures_from_anywhere(behind_proxy, url, clock):
    with browser(behind_proxy) as nurse:
        assert sign_in(nurse, PASSWORD, forwarded=NURSE_AT).status_code == 303
        assert nurse.cookies.get(auth.DEVICE_COOKIE, path="/login")
        nurse.cookies.delete(auth.SESSION_COOKIE)
        # Strangers on five addresses: 25 failures on her account (limit 20 from anywhere).
        with browser(behind_proxy) as stranger:
            for n in range(5):
                for _ in range(5):
                    assert sign_in(stranger, WRONG,
                                   forwarded=f"203.0.113.{n + 20}").status_code in (401, 429)
            # From a sixth address, for her account, anyone is now paused ...
            assert sign_in(stranger, WRONG, forwarded="203.0.113.99").status_code == 429
        with browser(behind_proxy) as new_browser:   # ... even she, on a new browser,
            assert sign_in(new_browser, PASSWORD, forwarded=NURSE_AT).status_code == 429
        # but not on the browser she signed in on before.
        assert sign_in(nurse, PASSWORD, forwarded=NURSE_AT).status_code == 303


def test_behind_an_untrusted_proxy_the_shared_address_does_not_lock_out_known_devices(direct,
                                                                                     url):
    """Without AFTERCARE_REVIEW_TRUSTED_PROXIES everyone is the proxy's address."""
    add_staff(url, "second@clinic.example")
    with browser(direct) as nurse, browser(direct) as stranger:
        assert sign_in(nurse, PASSWORD).status_code == 303
        nurse.cookies.delete(auth.SESSION_COOKIE)
        statuses = [sign_in(stranger, WRONG).status_code for _ in range(8)]
        statuses += [sign_in(stranger, WRONG, email=f"guess{n}@clinic.example").status_code
                     for n in range(20)]
        assert statuses.count(401) == 20 and statuses.count(429) == 8  # 5 + 15, then paused
        assert sign_in(nurse, PASSWORD).status_code == 303            # her device
        # A mark that was not made here, or is someone else's, is no device at all.
        device = nurse.cookies.get(auth.DEVICE_COOKIE, path="/login")
        staff_id, issued, nonce, mac = device.split(".")
        with browser(direct) as forger:
            forger.cookies.set(auth.DEVICE_COOKIE, f"{staff_id}.{issued}.{nonce}.{'0' * 64}",
                               path="/login")
            assert sign_in(forger, PASSWORD).status_code == 429
            forger.cookies.set(auth.DEVICE_COOKIE, device, path="/login")
            assert sign_in(forger, PASSWORD, email="second@clinic.example").status_code == 429


def test_a_forwarded_header_from_an_untrusted_peer_is_ignored(url, clock):
    settings = review_settings(url, review_trusted_proxies=("10.0.0.0/8",))
    with serving(settings, clock) as base, browser(base) as stranger:
        answers = [sign_in(stranger, WRONG, forwarded=f"203.0.113.{n}").status_code
                   for n in range(7)]
        assert answers == [401] * 5 + [429] * 2   # one address: 127.0.0.1, the real peer
        with browser(base) as other:
            assert sign_in(other, PASSWORD, forwarded=NURSE_AT).status_code == 429


def test_proxies_in_the_chain_are_skipped_and_the_first_stranger_counts(url, clock):
    settings = review_settings(url, review_trusted_proxies=("127.0.0.1", "10.0.0.0/8"))
    with serving(settings, clock) as base, browser(base) as client:
        chain = f"{NURSE_AT}, {STRANGER_AT}, 10.1.2.3"   # nurse's part forged by the stranger
        assert [sign_in(client, WRONG, forwarded=chain).status_code for _ in range(6)] \
            == [401] * 5 + [429]
        assert sign_in(client, PASSWORD, forwarded=f"{STRANGER_AT}:5123").status_code == 429
        assert sign_in(client, PASSWORD, forwarded=f"{NURSE_AT}, 10.9.9.9").status_code == 303


def test_the_strangers_own_address_is_paused_for_an_hour(behind_proxy, url, clock):
    add_staff(url, "second@clinic.example")
    with browser(behind_proxy) as stranger:
        for n in range(20):
            assert sign_in(stranger, WRONG, email=f"guess{n}@clinic.example",
                           forwarded=STRANGER_AT).status_code == 401
        paused = sign_in(stranger, PASSWORD, email="second@clinic.example",
                         forwarded=STRANGER_AT)
        assert paused.status_code == 429
        assert 45 * 60 < int(paused.headers["Retry-After"]) <= 60 * 60
        assert "Too many failed sign-in attempts" in paused.text
        with browser(behind_proxy) as nurse:   # from her own address, nothing changed
            assert sign_in(nurse, PASSWORD, forwarded=NURSE_AT).status_code == 303
        clock.advance(minutes=16)
        assert sign_in(stranger, PASSWORD, email="second@clinic.example",
                       forwarded=STRANGER_AT).status_code == 429
        clock.advance(minutes=45)
        assert sign_in(stranger, PASSWORD, email="second@clinic.example",
                       forwarded=STRANGER_AT).status_code == 303


# --- the limiter itself, on the real database -------------------------------------------

def test_limiter_windows_slots_and_what_is_stored(url, clock):
    limiter = auth.LoginLimiter(per_account_address=2, per_account=3, per_address=3,
                                per_device=2)
    start = clock()
    with db.session_scope(url) as s:
        first = limiter.take(s, "A@x.example", "10.0.0.1", None, start)
        assert isinstance(first, auth.Attempt)
        limiter.failed(s, first, start)
    with db.session_scope(url) as s:
        second = limiter.take(s, "a@x.example ", "10.0.0.1", None, start + timedelta(minutes=5))
        limiter.failed(s, second, start + timedelta(minutes=5))
    with db.session_scope(url) as s:
        paused = limiter.take(s, "a@x.example", "10.0.0.1", None, start + timedelta(minutes=6))
        assert paused == auth.Paused(9 * 60)   # until the window's first attempt is 15 min old
        # Another address may still try that account, until the account's own limit (3).
        other = limiter.take(s, "a@x.example", "10.0.0.2", None, start + timedelta(minutes=6))
        assert isinstance(other, auth.Attempt)
    with db.session_scope(url) as s:
        assert isinstance(limiter.take(s, "a@x.example", "10.0.0.3", None,
                                       start + timedelta(minutes=6)), auth.Paused)
        # A device of its own is counted apart from all of that.
        for _ in range(2):
            assert isinstance(limiter.take(s, "a@x.example", "10.0.0.1", "1.device-nonce",
                                           start + timedelta(minutes=6)), auth.Attempt)
        assert isinstance(limiter.take(s, "a@x.example", "10.0.0.1", "1.device-nonce",
                                       start + timedelta(minutes=6)), auth.Paused)
    with db.session_scope(url) as s:
        # A refused attempt took nothing: the address had used 2 of its 3.
        assert isinstance(limiter.take(s, "b@x.example", "10.0.0.1", None,
                                       start + timedelta(minutes=7)), auth.Attempt)
        assert isinstance(limiter.take(s, "c@x.example", "10.0.0.1", None,
                                       start + timedelta(minutes=7)), auth.Paused)
        # The window over, the account from the first address may try again.
        again = limiter.take(s, "a@x.example", "10.0.0.1", None, start + timedelta(minutes=61))
        assert isinstance(again, auth.Attempt)
        limiter.succeeded(s, again)
    with db.session_scope(url) as s:
        keys = s.execute(select(LoginLimit.key_hash)).scalars().all()
        assert keys and all(len(k) == 64 and "@" not in k and "10.0" not in k for k in keys)
        assert s.get(LoginLimit, again.own_key) is None   # a success clears its own place
