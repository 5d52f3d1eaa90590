"""Issue 11 end to end: a message the assistant misreads becomes training data,
and the retrained assistant understands it.

1. The shipped model misreads MESSAGE (asserted first, on a real Rasa server).
2. A patient enrols over Telegram (the real bot against the fake Bot API
   server), says yes to improving the assistant with the enrolment's button,
   sends MESSAGE and then tells the assistant it misunderstood: the real
   action server's safety check puts MESSAGE in the authors' inbox.
3. An author signs in to the review page in headless Chromium, finds it in
   the inbox and labels it with the intent the patient meant.
4. `aftercare.authoring.export` writes it into a temporary copy of data/
   (never the project's own data/nlu), checked as `aftercare validate` does.
5. `rasa train` (as `aftercare train` runs it, reusing the spaCy pipeline in
   build/) trains a model from the copy into a temporary directory, and a
   Rasa server started on that model reads MESSAGE as the labelled intent.

Screenshots of the inbox, the label form and the quality page, at phone and
desktop width, go to results/screenshots/authoring_*.png; at phone width no
page scrolls sideways.
"""
from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from aftercare import staff as accounts
from aftercare.authoring.export import export_labelled
from aftercare.authoring.inbox import InboxFilter, list_inbox
from aftercare.evaluation import classifier_intent
from aftercare.services import (
    MODEL_DIR, VENV_BIN, service_env, start_rasa_server, wait_until_healthy,
)
from aftercare.settings import PROJECT_ROOT
from aftercare.store import db
from aftercare.store.models import InboxItem
from cli.commands.validate import data_problems
from support.fake_telegram import FakeTelegramServer
from tests.bot_harness import (
    ManualClock, enrol, free_port, running_assistant, running_bot, treated_hours_ago,
    wait_until,
)
from tests.review_harness import PASSWORD, OffsetClock, review_settings, serving
from tests.test_review_browser import (
    CHROME_ARGS, CHROMEDRIVER, CHROMIUM, SCREENSHOTS, click_and_wait,
)

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                 reason="no trained model: run `make model` first")]

# Written for this test: hot pilates is exercise in a heated room, which the
# shipped model reads as a question about saunas.
MESSAGE = "when may I return to my hot pilates"
MEANT = "ask_exercise_sweat"
SAID_IT_MISUNDERSTOOD = "that's not what I asked"
AUTHOR = "content.author@clinic.example"
WIDTHS = (390, 1280)


def parse(rasa_url: str, text: str) -> tuple[str, float]:
    """The classifier's best real intent (as `aftercare evaluate` measures it)."""
    response = requests.post(f"{rasa_url}/model/parse", json={"text": text}, timeout=60)
    response.raise_for_status()
    return classifier_intent(response.json())


# --------------------------------------------------------------------------- the browser

@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"this test needs {' and '.join(missing)}: apt-get install -y chromium "
                    "chromium-driver", pytrace=False)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in CHROME_ARGS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=ChromeService(executable_path=str(CHROMEDRIVER),
                                                    log_output=str(tmp_path / "driver.log")),
                              options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def screenshots(browser: WebDriver, name: str) -> None:
    """The page at phone and desktop width, whole; at phone width it must not
    scroll sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        browser.set_window_size(width, 700)
        browser.refresh()
        sideways = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if width < 500:
            assert sideways <= 0, f"{name} scrolls sideways by {sideways} px at {width} px"
        height, chrome = browser.execute_script(
            "return [document.documentElement.scrollHeight,"
            " window.outerHeight - window.innerHeight]")
        browser.set_window_size(width, max(700, min(int(height) + int(chrome), 9000)))
        assert browser.save_screenshot(str(SCREENSHOTS / f"{name}_{width}.png"))
    browser.set_window_size(1280, 1600)


def sign_in(browser: WebDriver, base: str) -> None:
    browser.get(base + "/authoring")
    browser.find_element(By.ID, "email").send_keys(AUTHOR)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#login-form button"))
    assert browser.current_url.endswith("/authoring"), browser.current_url


# --------------------------------------------------------------------------- the steps

async def patient_is_misunderstood(settings, telegram: FakeTelegramServer) -> None:
    """Enrol, agree with the consent button, send MESSAGE, say it was misread."""
    async with running_bot(settings, telegram, ManualClock()):
        _, chat_id = await enrol(telegram, settings, treated_hours_ago(30))
        consent = telegram.sent_messages(chat_id)[0]
        buttons = [row[0]["callback_data"] for row in consent.reply_markup["inline_keyboard"]]
        assert "bot:improve_yes" in buttons
        sent = len(telegram.sent_messages(chat_id))
        telegram.push_callback(chat_id, "bot:improve_yes", consent.message_id)
        await telegram.await_messages(chat_id, sent + 1)
        for text in (MESSAGE, SAID_IT_MISUNDERSTOOD):
            sent = len(telegram.sent_messages(chat_id))
            telegram.push_message(chat_id, text)
            await telegram.await_messages(chat_id, sent + 1, timeout=30)
        await wait_until(lambda: inbox_ids(settings.database_url), timeout=30)


def inbox_ids(url: str) -> list[int]:
    with db.session_scope(url) as session:
        return [row.id for row in list_inbox(session, InboxFilter(status="all")).rows]


def label_in_the_browser(browser: WebDriver, base: str, item_id: int) -> None:
    sign_in(browser, base)
    card = browser.find_element(By.CSS_SELECTOR, f'li.inbox-item[data-item="{item_id}"]')
    assert MESSAGE in card.text
    assert "the patient said it misunderstood" in card.text
    screenshots(browser, "authoring_inbox")
    click_and_wait(browser, browser.find_element(
        By.CSS_SELECTOR, f'li.inbox-item[data-item="{item_id}"] a.label-link'))
    predicted = [o.get_attribute("value") for o in browser.find_elements(
        By.CSS_SELECTOR, "#intent-choice optgroup:first-of-type option")]
    assert predicted and predicted[0] != MEANT    # the assistant's own reading comes first
    screenshots(browser, "authoring_item")
    choices = Select(browser.find_element(By.ID, "intent-choice"))
    choices.select_by_value(MEANT)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#label-form button"))
    flash = browser.find_element(By.ID, "flash").text
    assert "Label saved" in flash and MEANT in flash
    screenshots(browser, "authoring_labelled")


def export_into(url: str, data: Path) -> Path:
    result = export_labelled(lambda: db.session_scope(url), data_dir=data,
                             target_dir=data / "nlu" / "conversations",
                             domain_path=PROJECT_ROOT / "domain.yml",
                             validate=lambda folder: data_problems(folder)[0],
                             now=datetime.now(timezone.utc))
    [written] = result.written
    assert written.intent == MEANT and written.examples == (MESSAGE,)
    assert f"- {MESSAGE}" in written.path.read_text(encoding="utf-8")
    return written.path


def train(settings, data: Path, out: Path) -> Path:
    """`rasa train` as `aftercare train` runs it, on the copy, into out."""
    result = subprocess.run(
        [str(VENV_BIN / "rasa"), "train", "--data", str(data), "--domain", "domain.yml",
         "--config", "config.yml", "--out", str(out), "--fixed-model-name", "retrained"],
        cwd=PROJECT_ROOT, env=service_env(settings), capture_output=True, text=True,
        timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / "retrained.tar.gz"


# --------------------------------------------------------------------------- the test

def test_a_misread_message_is_labelled_exported_and_then_understood(tmp_path, browser):
    work = tmp_path / "work"
    work.mkdir()
    with running_assistant(work) as settings:
        read_as, _ = parse(settings.rasa_url, MESSAGE)
        assert read_as != MEANT, f"the shipped model reads {MESSAGE!r} right: choose another"
        with FakeTelegramServer(token="123456:TEST-token") as telegram:
            asyncio.run(patient_is_misunderstood(settings, telegram))
    url = settings.database_url
    [item_id] = inbox_ids(url)
    with db.session_scope(url) as session:
        item = session.get(InboxItem, item_id)
        assert (item.text, item.intent) == (MESSAGE, read_as)
        assert [r.reason for r in item.reasons] == ["misunderstood"]
        accounts.add_staff(session, AUTHOR, PASSWORD, roles=("author",))

    quality = tmp_path / "quality"
    quality.mkdir()
    with serving(review_settings(url, quality_dir=quality), OffsetClock()) as base:
        label_in_the_browser(browser, base, item_id)
        browser.get(base + "/authoring/quality")   # no history yet: how to record one
        assert "No model's quality has been recorded yet" in browser.page_source
        screenshots(browser, "authoring_quality_empty")
        # Then a copy of the project's own history, if it has one (make evaluate writes it).
        for report in (PROJECT_ROOT / "results" / "quality").glob("*.json"):
            shutil.copy(report, quality / report.name)
        browser.get(base + "/authoring/quality")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Model quality"
        screenshots(browser, "authoring_quality")

    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "data", data, ignore=shutil.ignore_patterns("__pycache__"))
    export_into(url, data)
    with db.session_scope(url) as session:
        assert session.get(InboxItem, item_id).status == "exported"
    assert not any(MESSAGE in path.read_text(encoding="utf-8")
                   for path in (PROJECT_ROOT / "data").rglob("*.yml"))   # only the copy

    model = train(settings, data, tmp_path / "models")
    retrained = replace(settings, rasa_url=f"http://127.0.0.1:{free_port()}")
    server = start_rasa_server(retrained, work / "log", model=model)
    try:
        wait_until_healthy([server], timeout=300)
        assert parse(retrained.rasa_url, MESSAGE)[0] == MEANT
    finally:
        server.stop()
