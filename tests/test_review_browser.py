"""The review page in a real browser: headless Chromium driven by Selenium, the
real application on a free port, staff accounts made and disabled with the
real `aftercare staff` command. Screenshots go to results/screenshots/.

Chromium and its driver come from the Debian packages `chromium` and
`chromium-driver` (scripts/setup.sh installs them); without them these tests
fail and say so, rather than skip quietly.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import select

from aftercare.settings import PROJECT_ROOT
from aftercare.store import db, repository
from aftercare.store.models import Escalation, EscalationEvent
from tests.review_harness import (
    PASSWORD, PATIENT_NAME, SCRIPT_TEXT, TRIGGER_TEXT, OffsetClock, add_scene,
    review_settings, serving,
)

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = PROJECT_ROOT / "results" / "screenshots"
AFTERCARE = Path(sys.executable).parent / "aftercare"
EMAIL = "browser.nurse@clinic.example"
NOTE = "Called her at 10:20; she is sending a photo of the eye."
RESOLVE_NOTE = "Seen in clinic the same day; swelling settling, follow-up on Friday."
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-quic", "--window-size=1280,1600")


def _require_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"the browser tests need {' and '.join(missing)}: install them with "
                    "`apt-get install -y chromium chromium-driver` (as root; scripts/setup.sh "
                    "does this on a machine with apt)", pytrace=False)


def aftercare(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """The real `aftercare` command on this test's database."""
    env = {**os.environ, "AFTERCARE_DATABASE_URL": url}
    result = subprocess.run([str(AFTERCARE), *args], input=stdin, env=env, cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


@dataclass(frozen=True)
class Site:
    base: str
    url: str
    escalation_id: int
    patient_id: int
    routine_id: int


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    _require_chromium()
    work = tmp_path_factory.mktemp("review-browser")
    url = f"sqlite:///{work / 'aftercare.db'}"
    db.migrate(url)
    # An older routine escalation of another patient, so "first" means ordered.
    other = add_scene(url, name="Rosalind Other", sender_id="tg-111", level="routine")
    scene = add_scene(url)
    aftercare(url, "staff", "add", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
    with serving(review_settings(url), OffsetClock()) as base:
        yield Site(base=base, url=url, escalation_id=scene.escalation_id,
                   patient_id=scene.patient_id, routine_id=other.escalation_id)


@pytest.fixture
def browser(site: Site, tmp_path: Path) -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in CHROME_ARGS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    service = Service(executable_path=str(CHROMEDRIVER),
                      log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def click_and_wait(browser: WebDriver, element: WebElement) -> None:
    """Click a link or submit button and wait until the next page has loaded
    (a click returns before the navigation it starts has finished)."""
    old_page = browser.find_element(By.TAG_NAME, "html")
    element.click()
    # Asked about mid-navigation, ChromeDriver may answer "Node ... does not
    # belong to the document" (an unknown error, not a stale element): ask again.
    wait = WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,))
    wait.until(expected_conditions.staleness_of(old_page))
    wait.until(lambda b: b.execute_script("return document.readyState") == "complete")


def sign_in(browser: WebDriver, site: Site, email: str = EMAIL, start: str = "/") -> None:
    browser.get(site.base + start)
    assert "/login" in browser.current_url
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#login-form button"))
    assert "/login" not in browser.current_url, browser.find_element(By.TAG_NAME, "main").text


def screenshot(browser: WebDriver, name: str) -> Path:
    """The whole page, not just the window, as a test artefact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, max(800, min(int(height) + 40, 6000)))
    path = SCREENSHOTS / name
    assert browser.save_screenshot(str(path))
    return path


def assert_no_alert(browser: WebDriver) -> None:
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert


def test_sign_in_read_the_transcript_add_a_note_and_resolve(browser: WebDriver, site: Site):
    browser.get(site.base + "/")
    assert browser.current_url.endswith("/login")
    sign_in(browser, site)
    assert browser.current_url == site.base + "/"

    rows = browser.find_elements(By.CSS_SELECTOR, "#open-table tbody tr")
    assert [r.get_attribute("data-escalation") for r in rows] == [
        str(site.escalation_id), str(site.routine_id)]
    first = rows[0]
    assert PATIENT_NAME in first.text and "urgent" in first.text and "open" in first.text
    click_and_wait(browser, first.find_element(By.CSS_SELECTOR, "a.open-link"))
    assert browser.current_url == f"{site.base}/escalations/{site.escalation_id}"

    transcript = browser.find_element(By.ID, "conversation").text
    assert SCRIPT_TEXT in transcript          # the tags shown as text, not run
    assert TRIGGER_TEXT in transcript
    assert_no_alert(browser)
    assert browser.find_element(By.ID, "trigger").text == TRIGGER_TEXT

    browser.find_element(By.ID, "note-text").send_keys(NOTE)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#note-form button"))
    assert browser.find_element(By.ID, "flash").text == "Note added."
    assert NOTE in browser.find_element(By.ID, "timeline").text

    browser.find_element(By.ID, "resolve-note").send_keys(RESOLVE_NOTE)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#resolve-form button"))
    assert browser.find_element(By.ID, "flash").text == "Resolved."
    timeline = browser.find_element(By.ID, "timeline").text
    assert f"resolved by {EMAIL}" in timeline and RESOLVE_NOTE in timeline
    assert_no_alert(browser)
    screenshot(browser, "review_escalation.png")

    with db.session_scope(site.url) as session:
        escalation = session.get(Escalation, site.escalation_id)
        assert escalation.status == "resolved" and escalation.note == RESOLVE_NOTE
        kinds = [(e.kind, e.actor) for e in escalation.events]
    assert kinds == [("note", EMAIL), ("resolved", EMAIL)]

    browser.get(f"{site.base}/patients/{site.patient_id}")
    points = browser.find_elements(By.CSS_SELECTOR, "#symptom-chart circle.point")
    assert len(points) == 2
    # The photos are served (with the session cookie) as images the browser can draw.
    assert browser.execute_script(
        "const images = [...document.querySelectorAll('#photos img')];"
        "return images.length === 2 && images.every(i => i.complete && i.naturalWidth > 0);")
    assert SCRIPT_TEXT in browser.find_element(By.ID, "conversation").text
    screenshot(browser, "review_patient.png")
    assert (SCREENSHOTS / "review_escalation.png").stat().st_size > 10_000


def test_a_form_without_its_csrf_token_is_refused(browser: WebDriver, site: Site):
    sign_in(browser, site, start=f"/escalations/{site.routine_id}")
    assert browser.current_url == f"{site.base}/escalations/{site.routine_id}"
    browser.execute_script(
        "document.querySelector('#note-form input[name=csrf]').remove()")
    browser.find_element(By.ID, "note-text").send_keys("a note that must not be saved")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#note-form button"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Form refused"
    assert "nothing was changed" in browser.find_element(By.ID, "error").text
    with db.session_scope(site.url) as session:
        assert session.execute(select(EscalationEvent).where(
            EscalationEvent.escalation_id == site.routine_id)).first() is None
        assert repository.list_escalations(session, open_only=True)


def test_a_disabled_account_is_signed_out_at_the_next_page(browser: WebDriver, site: Site):
    email = "leaving.nurse@clinic.example"
    aftercare(site.url, "staff", "add", email, "--password-stdin", stdin=PASSWORD + "\n")
    sign_in(browser, site, email=email, start="/patients")
    assert browser.current_url == f"{site.base}/patients"
    assert PATIENT_NAME in browser.find_element(By.ID, "patients-table").text
    result = aftercare(site.url, "staff", "disable", email)
    assert "sessions have ended" in result.stdout
    browser.get(f"{site.base}/patients")
    assert browser.current_url == f"{site.base}/login?next=/patients"
    assert PATIENT_NAME not in browser.page_source
