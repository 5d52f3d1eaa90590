"""The symptom chart as real headless Chromium draws it: with the browser's own
font metrics, every dot inside the plot, no two dots on each other, one label
per dot, and no label on another label or on its own dot."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from aftercare.store import db, repository
from tests.checkin_scene import add_checkin_scene
from tests.review_harness import (
    PASSWORD, STAFF_EMAIL, OffsetClock, add_staff, review_settings, serving,
)

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Several things at once on day 0, something most days, an urgent one: a usual chart.
EXTRA = [(0, "report_swelling", None), (0, "report_pain_burning", None),
         (2, "report_dryness_peeling", None), (3, "fine", None),
         (3, "report_breakout_bumps", "routine"), (1, "report_infection_signs", "urgent"),
         (7, "fine", None)]
MEASURE = """
const box = e => { const b = e.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; };
const svg = document.querySelector('#symptom-chart svg');
return {plot: box(svg.querySelector('rect.plot')),
        dots: [...svg.querySelectorAll('circle.point')].map(box),
        labels: [...svg.querySelectorAll('text.point-label')].map(
            e => ({box: box(e), text: e.textContent}))};
"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"the browser tests need {' and '.join(missing)} "
                    "(apt-get install -y chromium chromium-driver)", pytrace=False)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--window-size=1280,1200", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def overlap(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) + 0.5 and min(a[3], b[3]) > max(a[1], b[1]) + 0.5


def test_the_drawn_chart_keeps_dots_apart_and_labels_readable(browser, database_url):
    db.migrate(database_url)
    scene = add_checkin_scene(database_url)
    with db.session_scope(database_url) as session:
        treatment = repository.current_treatment(repository.get_patient(session,
                                                                        scene.patient_id))
        for day, symptom, level in EXTRA:
            repository.record_symptom_report(
                session, patient_id=scene.patient_id, treatment_id=treatment.id, day=day,
                checkin_id=None, symptom=symptom, level=level, text="words")
    add_staff(database_url)
    with serving(review_settings(database_url), OffsetClock()) as base:
        browser.get(f"{base}/login")
        browser.find_element(By.ID, "email").send_keys(STAFF_EMAIL)
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
        WebDriverWait(browser, 30).until(lambda b: "/login" not in b.current_url)
        browser.get(f"{base}/patients/{scene.patient_id}")
        drawn = browser.execute_script(MEASURE)
    plot, dots, labels = drawn["plot"], drawn["dots"], drawn["labels"]
    assert len(dots) == len(EXTRA) + 2 and len(labels) == len(dots)
    assert sorted(label["text"] for label in labels) == sorted(
        ["redness", "redness", "swelling", "pain burning", "dryness peeling", "all good",
         "breakout bumps", "infection signs", "all good"])
    for dot in dots:
        assert plot[0] <= dot[0] and dot[2] <= plot[2] and plot[1] <= dot[1] \
            and dot[3] <= plot[3], dot
    for i, dot in enumerate(dots):
        for other in dots[i + 1:]:
            assert not overlap(dot, other), (dot, other)
    for i, label in enumerate(labels):
        box = label["box"]
        assert plot[0] <= box[0] and box[2] <= plot[2], label
        assert plot[1] <= box[1] and box[3] <= plot[3], label
        assert not overlap(box, dots[i]), label   # the i-th label belongs to the i-th dot
        for other in labels[i + 1:]:
            assert not overlap(box, other["box"]), (label, other)
