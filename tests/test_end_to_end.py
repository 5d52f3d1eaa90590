"""The real product end to end: the trained model in the real Rasa server, the
real action server, a real SQLite store, over the REST channel."""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from aftercare.rasa_client import RasaClient
from aftercare.recovery import describe_moment
from aftercare.services import MODEL_DIR, running_services
from aftercare.settings import get_settings
from aftercare.store import db, repository

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                 reason="no trained model: run `make model` first")]
LONDON = ZoneInfo("Europe/London")
SECRET_WORDS = "zebra-striped puss"  # patient text that must never reach a log
DEMO_DAYS = (1, 3, 9)                # the demo patients' days; day 0 is "Early"


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{work / 'aftercare.db'}"
    settings = replace(get_settings(), database_url=url, rasa_url="http://127.0.0.1:5205",
                       action_server_url="http://127.0.0.1:5255/webhook")
    db.migrate(url)
    # Treatment times chosen so each patient's day is the same whatever the time
    # of day the tests run: "Early" earlier today, "Long" just after midnight
    # eight local days ago.
    now = datetime.now(LONDON).replace(second=0, microsecond=0)
    midnight = now.replace(hour=0, minute=0)
    early = now - min(timedelta(hours=5), (now - midnight) / 2)
    # Wall-clock arithmetic on a zoned datetime: 00:01 local, eight days back.
    eight_days_ago = midnight - timedelta(days=8) + timedelta(minutes=1)
    with db.session_scope(url) as session:
        repository.add_patient(session, name="Early", treated_at=early,
                               timezone="Europe/London", sender_id="e2e-early")
        repository.add_patient(session, name="Later", treated_at=now - timedelta(hours=60),
                               timezone="Europe/London", sender_id="e2e-later")
        repository.add_patient(session, name="Long", treated_at=eight_days_ago,
                               timezone="Europe/London", sender_id="e2e-day8")
        for day in DEMO_DAYS:    # 00:01 local, `day` days back: that day all day long
            repository.add_patient(session, name=f"Demo{day}",
                                   treated_at=midnight - timedelta(days=day, minutes=-1),
                                   timezone="Europe/London", sender_id=f"e2e-demo-day{day}")
    with running_services(settings, log_dir=work / "log", timeout=300,
                          include_review=False) as services:
        yield settings, RasaClient(settings.rasa_url), services, work / "log"


def escalations(settings):
    with db.session_scope(settings.database_url) as session:
        return [(e.sender_id, e.level, e.day) for e in repository.list_escalations(session)]


def test_makeup_not_yet_on_day_0_names_when(product):
    settings, client, _, _ = product
    replies = client.send("e2e-early", "when can i wear makeup?")
    with db.session_scope(settings.database_url) as session:
        patient = repository.find_patient_by_sender(session, "e2e-early")
        allowed = repository.current_treatment(patient).treated_at + timedelta(hours=24)
    when = describe_moment(allowed, datetime.now(timezone.utc), LONDON)
    assert replies[0].startswith("Not yet")
    assert when in replies[0] and "24 hours after your treatment" in replies[0]
    assert "mineral" in replies[1]


def test_makeup_allowed_later(product):
    _, client, _, _ = product
    assert client.send("e2e-later", "when can i wear makeup?")[0].startswith("Yes, from now on")


def test_redness_on_day_8_is_escalated(product):
    settings, client, _, _ = product
    replies = client.send("e2e-day8", "my face is still really red, is that normal?")
    assert "clinic will follow up" in replies[0]
    assert ("e2e-day8", "routine", 8) in escalations(settings)


def test_emergency_message_comes_first(product):
    settings, client, _, _ = product
    replies = client.send("e2e-early", "my lips have swollen right up and i can't breathe properly")
    assert replies[0].startswith("⚠️ Please call 999 now")
    assert ("e2e-early", "emergency", 0) in escalations(settings)


def test_unknown_patient_is_asked_for_the_date_then_answered(product):
    _, client, _, _ = product
    replies = client.send("e2e-stranger", "can i go swimming")
    assert "when was your treatment" in replies[-1]
    replies = client.send("e2e-stranger", "the treatment is next tuesday")
    assert "couldn't work that out" in replies[0]
    replies = client.send("e2e-stranger", "2 days ago")
    assert "today is day 2 of your recovery" in replies[0]
    assert any("swim" in r for r in replies[1:])


@pytest.mark.parametrize("text", ["", " ", "🙂🙂🙂", "x" * 4000, "'; DROP TABLE patients; --",
                                  "<script>alert(1)</script>", "¿Puedo maquillarme mañana?"])
def test_bad_input_gets_an_answer_and_keeps_the_store(product, text):
    settings, client, _, _ = product
    replies = client.send("e2e-later", text)
    assert isinstance(replies, list)
    with db.session_scope(settings.database_url) as session:
        assert len(repository.list_patients(session)) >= 3


def test_logs_never_carry_patient_words(product):
    _, client, services, log_dir = product
    client.send("e2e-later", f"my cheek has {SECRET_WORDS} on it")
    for service in services:
        assert service.process.poll() is None, f"{service.name} died"
    for log in log_dir.glob("*.log"):
        text = log.read_text(errors="ignore")
        assert SECRET_WORDS not in text, f"patient text in {log.name}"
        assert "Early" not in text and "Later" not in text


# --- The questions a new user asked in the demo (issue 9), each answered rightly

def symptom_reports(settings, sender_id):
    with db.session_scope(settings.database_url) as session:
        patient = repository.find_patient_by_sender(session, sender_id)
        return [r.symptom for r in repository.list_symptom_reports(session, patient.id)]


def test_demo_is_this_redness_normal_on_day_0(product):
    _, client, _, _ = product
    replies = client.send("e2e-early", "is this redness normal?")
    assert replies[0].startswith("On day 0 that's expected"), replies
    assert not any("not sure I understood" in r for r in replies)


def test_demo_wedding_on_saturday_on_day_1(product):
    _, client, _, _ = product
    replies = client.send("e2e-demo-day1",
                          "I'm going to a wedding on saturday, will I look ok by then?")
    assert replies[0].startswith("Most people look like themselves again once the redness "
                                 "settles, usually by the end of"), replies
    assert not any("sunscreen" in r.lower() for r in replies)


def test_demo_redness_back_on_day_3_gets_one_coherent_reply(product):
    settings, client, _, _ = product
    replies = client.send("e2e-demo-day3", "the redness was almost gone yesterday but today "
                                           "it's redder again and warm to touch")
    assert replies[0].startswith("What you describe needs a nurse to look at it"), replies
    assert not any("expected" in r for r in replies), replies
    assert ("e2e-demo-day3", "urgent", 3) in escalations(settings)


def test_demo_still_red_on_day_9_in_plain_words(product):
    settings, client, _, _ = product
    replies = client.send("e2e-demo-day9", "my face is still a bit red, over a week now")
    assert replies[0].startswith("Thanks for telling me: that's something the clinic would "
                                 "like to see"), replies
    assert ("e2e-demo-day9", "routine", 9) in escalations(settings)
    with db.session_scope(settings.database_url) as session:
        reason = [e.reason for e in repository.list_escalations(session)
                  if e.sender_id == "e2e-demo-day9"][-1]
    text = " ".join(replies)
    assert reason and not any(part in text for part in reason.split("; ")), (reason, text)
    assert "day 3" not in text          # one normal-course number, not two


def test_demo_still_red_but_not_sore_is_recorded_as_redness(product):
    settings, client, _, _ = product
    client.send("e2e-demo-day1", "still quite red but not sore")
    assert symptom_reports(settings, "e2e-demo-day1")[-1] == "report_redness"


def test_terminal_chat_shows_the_clarify_buttons_and_a_number_presses_one(
        product, monkeypatch, capsys):
    """An unclear message gets numbered buttons in the terminal chat; typing the
    last number ("Talk to a person") sends its payload, as Telegram would."""
    from cli.commands.chat import chat_loop

    _, client, _, _ = product
    screens: list[str] = []

    def patient_types(prompt: str = "") -> str:
        screens.append(capsys.readouterr().out)
        if len(screens) == 1:
            return "face weird"
        if len(screens) == 2:
            numbers = re.findall(r"^    \[(\d+)\] ", screens[-1], flags=re.MULTILINE)
            return numbers[-1] if numbers else "no buttons were shown"
        raise EOFError

    monkeypatch.setattr("builtins.input", patient_types)
    assert chat_loop(client, "e2e-demo-day1") == 0
    asked, answered = screens[1], screens[2]
    numbers = [int(n) for n in re.findall(r"^    \[(\d+)\] ", asked, flags=re.MULTILINE)]
    assert numbers and numbers == list(range(1, len(numbers) + 1)), asked
    assert re.search(rf"^    \[{numbers[-1]}\] Talk to a person$", asked, flags=re.MULTILINE)
    assert asked.rstrip().endswith("(type a number to choose, or write your answer)")
    assert "I've asked the clinic to get in touch with you" in answered, answered
