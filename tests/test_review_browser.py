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
from datetime import datetime, timedelta, timezone
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
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import select

from aftercare.settings import PROJECT_ROOT
from aftercare.store import db, escalations as store, repository
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

    rows = browser.find_elements(By.CSS_SELECTOR, "#queue-table tbody tr")
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


# --- phone and desktop width: the list, an escalation and a patient -------------------

PHONE, DESKTOP = 390, 1280
LONG_WORD = "Aaaaaaaaaaaaaaaaaaaaaahhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh!!!"


def set_width(browser: WebDriver, width: int, height: int = 900) -> None:
    """The page laid out at width CSS pixels, as a phone (width 390) or a desktop
    browser shows it (DevTools' device metrics; the window itself may not go
    that narrow)."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def sideways(browser: WebDriver) -> tuple[int, int]:
    """(document width, window width): equal or less means no sideways scrolling.
    execute_script runs in the driver, not in the page, so the CSP does not apply."""
    return tuple(browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"))


def screenshot_at(browser: WebDriver, width: int, name: str) -> Path:
    """The whole page at width, saved in results/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    set_width(browser, width, max(800, min(int(height), 8000)))
    path = SCREENSHOTS / name
    assert browser.save_screenshot(str(path))
    set_width(browser, width)
    return path


@pytest.fixture(scope="module")
def wide(site: Site) -> dict:
    """A patient with a long name, words with no place to break, an acknowledged and
    an overdue escalation: what makes a narrow page scroll sideways."""
    scene = add_scene(site.url, name="Maximiliana Featherstonehaugh-Cholmondeley",
                      sender_id="tg-3905", level="emergency")
    with db.session_scope(site.url) as session:
        escalation = session.get(Escalation, scene.escalation_id)
        escalation.created_at = escalation.created_at - timedelta(minutes=45)
        acked = repository.record_escalation(
            session, patient_id=scene.patient_id, sender_id=scene.sender_id,
            message=f"{LONG_WORD} the cheek is hot, https://example.org/{'x' * 80}",
            level="urgent", reason=f"spreading redness; {LONG_WORD}", day=2)
        acked.created_at = datetime.now(timezone.utc) - timedelta(minutes=30)
        store.acknowledge(session, acked.id, "telegram:99 Sam Lee",
                          datetime.now(timezone.utc) - timedelta(minutes=12))
        store.add_note(session, acked.id, EMAIL, f"Rang twice {LONG_WORD}",
                       datetime.now(timezone.utc))
    return {"list": "/", "escalation": f"/escalations/{acked.id}",
            "patient": f"/patients/{scene.patient_id}"}


def test_list_escalation_and_patient_fit_a_phone_and_a_desktop(browser: WebDriver, site: Site,
                                                              wide: dict):
    sign_in(browser, site)
    for width in (PHONE, DESKTOP):
        set_width(browser, width)
        for name, path in wide.items():
            browser.get(site.base + path)
            assert browser.find_element(By.TAG_NAME, "h1").text, name
            document_width, window_width = sideways(browser)
            assert window_width == width, (name, width)
            assert document_width <= window_width, (
                f"{name} at {width} px scrolls sideways: {document_width} px wide")
            shot = screenshot_at(browser, width, f"review_{name}_{width}.png")
            assert shot.stat().st_size > 5_000
            assert_no_alert(browser)


def test_on_a_phone_the_list_is_cards_with_buttons_to_tap(browser: WebDriver, site: Site,
                                                        wide: dict):
    sign_in(browser, site)
    set_width(browser, PHONE)
    browser.get(site.base + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#queue-table tbody tr")
    assert len(rows) >= 2
    for row in rows:
        assert row.value_of_css_property("display") == "block"
        link = row.find_element(By.CSS_SELECTOR, "a.open-link")
        assert link.size["height"] >= 44 and link.size["width"] >= PHONE * 0.6
    assert "Acknowledged by Sam Lee (Telegram), 12 min ago" in browser.find_element(
        By.ID, "queue-table").text
    for control in browser.find_elements(By.CSS_SELECTOR, "#queue-filters button, "
                                                          "#queue-filters select, #q"):
        assert control.size["height"] >= 44
    overdue = browser.find_elements(By.CSS_SELECTOR, "#queue-table tr.overdue")
    assert overdue and "overdue" in overdue[0].text.lower()
    # A filter is a plain GET form: choose a level, press Show.
    Select(browser.find_element(By.ID, "level")).select_by_value("urgent")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#queue-filters button"))
    assert "level=urgent" in browser.current_url
    levels = {r.find_element(By.CSS_SELECTOR, ".level").text
              for r in browser.find_elements(By.CSS_SELECTOR, "#queue-table tbody tr")}
    assert levels == {"urgent"}
    set_width(browser, DESKTOP)
    row = browser.find_element(By.CSS_SELECTOR, "#queue-table tbody tr")
    assert row.value_of_css_property("display") == "table-row"
