"""De-identification of patients' messages (aftercare/privacy) and `aftercare privacy`.

tests/deidentify_cases.tsv is the measuring set: every planted identifier must be
masked and every kept look-alike must stay as written, each row a pytest case.
The unit tests below pin the tricky rules one by one. The two generalisation
sets at the end were written after the rules: set 2 first gave recall 70/74
(0.946; one miss was a case of ours planting "hope" where "I hope" had to stay),
set 3 gave 43/45 (0.956), both with no kept item masked. The four real misses
("31 Kingsway, Hove", "Ms Van der Berg", "Friday 13th to ...", "aunt Folasade")
were fixed by general rules (a street before a postcode, surname particles, range
words, bare kin words), and the sets now guard against regressions.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from aftercare.privacy import KINDS, Deidentifier, LexiconError, deidentify
from aftercare.privacy.measure import Case, CaseFileError, measure, read_cases, split_items
from cli.main import main

ROOT = Path(__file__).resolve().parent.parent
CASES_PATH = Path(__file__).resolve().parent / "deidentify_cases.tsv"
CASES = read_cases(CASES_PATH)


def _ids(cases) -> list[str]:
    return [f"{case.line:03d}-{case.text[:40]}" for case in cases]


def _masked(result, text: str, item: str) -> bool:
    start = text.index(item)
    return all(text[i].isspace() or any(s.start <= i < s.end for s in result.spans)
               for i in range(start, start + len(item)))


def _touched(result, text: str, item: str) -> bool:
    start = text.index(item)
    return any(s.start < start + len(item) and start < s.end for s in result.spans)


def _check(case) -> None:
    result = deidentify(case.text, case.known_names)
    for item in case.planted:
        assert _masked(result, case.text, item), f"{item!r} not masked: {result.text!r}"
    for item in case.keep:
        assert not _touched(result, case.text, item), f"{item!r} masked: {result.text!r}"
        assert item in result.text


# --- the measuring set ---------------------------------------------------------

def test_measuring_set_has_the_size_the_issue_asks_for():
    with_planted = [c for c in CASES if c.planted]
    without = [c for c in CASES if not c.planted]
    assert len(with_planted) >= 150
    assert len(without) >= 40
    assert all(c.keep for c in without)
    assert sum(1 for c in CASES if c.known_names) >= 20


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_measuring_set_case(case):
    _check(case)


def test_spans_rebuild_the_masked_text_and_leave_everything_else_as_written():
    for case in CASES:
        result = deidentify(case.text, case.known_names)
        rebuilt, position = [], 0
        for span in result.spans:
            assert span.kind in KINDS
            assert position <= span.start < span.end <= len(case.text)
            rebuilt += [case.text[position:span.start], f"<{span.kind}>"]
            position = span.end
        rebuilt.append(case.text[position:])
        assert "".join(rebuilt) == result.text


def test_placeholders_are_plain_text_in_rasa_training_data():
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    masked = [deidentify(c.text, c.known_names).text for c in CASES
              if c.planted and not set("[]{}") & set(c.text) and "\n" not in c.text]
    examples = "".join(f"    - {text}\n" for text in masked)
    data = RasaYAMLReader().reads(
        f'version: "3.1"\nnlu:\n- intent: inbox\n  examples: |\n{examples}')
    assert [m.get("text") for m in data.training_examples] == masked
    assert all(not m.get("entities") for m in data.training_examples)


def test_nothing_is_logged(caplog):
    caplog.set_level(logging.DEBUG)
    deidentify("my name is Anna Kowalski, 07700 900123, anna@example.com", ["Anna"])
    assert caplog.records == []


# --- rules, one by one ---------------------------------------------------------

def _text(message: str, *names: str) -> str:
    return deidentify(message, names).text


@pytest.mark.parametrize("message, expected", [
    ("I hope it heals, thanks Hope", "I hope it heals, thanks <name>"),
    ("will it peel? my husband Will asked", "will it peel? my husband <name> asked"),
    ("can I swim in may? May from the clinic said no", "can I swim in may? <name> from the clinic said no"),
    ("Is June in today? I'd like to book in June", "Is <name> in today? I'd like to book in June"),
    ("Mark on my cheek, the nurse Mark said it's fine", "Mark on my cheek, the nurse <name> said it's fine"),
    ("Bill paid the bill", "<name> paid the bill"),
    ("Grace period for makeup is 24h?", "Grace period for makeup is 24h?"),
    ("my friend priya and my husband will drive", "my friend <name> and my husband will drive"),
])
def test_names_that_are_everyday_words_only_in_a_name_position(message, expected):
    assert _text(message) == expected


@pytest.mark.parametrize("message, expected", [
    ("my name is Zanele Mthembu", "my name is <name>"),
    ("Dr Okonkwo-Smith did mine", "Dr <name> did mine"),
    ("dr adeyemi said so", "dr <name> said so"),
    ("Ms Van der Berg here", "Ms <name> here"),
    ("Mrs P. Sharma", "Mrs <name>"),
    ("let me talk to a nurse pls", "let me talk to a nurse pls"),
    ("the dr said to use vaseline", "the dr said to use vaseline"),
    ("It's St Patrick's day on Friday", "It's St Patrick's day on Friday"),
])
def test_titles_and_cues(message, expected):
    assert _text(message) == expected


@pytest.mark.parametrize("message, expected", [
    ("is this ok? thanks, Jo", "is this ok? thanks, <name>"),
    ("all good x Jo x", "all good x <name> x"),
    ("fine now - Oksana", "fine now - <name>"),
    ("ok thanks\nNiamh", "ok thanks\n<name>"),
    ("thanks, grace", "thanks, <name>"),
    ("Cheers, will do", "Cheers, will do"),
    ("cheers mate", "cheers mate"),
    ("thanks so much, that helps", "thanks so much, that helps"),
])
def test_sign_offs(message, expected):
    assert _text(message) == expected


def test_the_patients_own_name_in_any_case_and_possessive():
    assert _text("ANNA's cream, anna again, Kowalski here", "Anna Kowalski") == \
        "<name>'s cream, <name> again, <name> here"
    assert _text("hey it's june, day 3", "June Okoro") == "hey it's <name>, day 3"
    assert _text("it's sunny today - Sunny", "Sunny Patel") == "it's sunny today - <name>"
    assert _text("Tomasz Wiśniewski", "Tomasz Wisniewski") == "<name>"


def test_products_symptoms_and_brands_are_never_names():
    assert _text("nurse Vera said aloe vera is fine") == "nurse <name> said aloe vera is fine"
    assert _text("is witch hazel ok, or the Charlotte Tilbury one") == \
        "is witch hazel ok, or the Charlotte Tilbury one"
    assert _text("my tung is tingly, I'm Fitzpatrick type 5") == \
        "my tung is tingly, I'm Fitzpatrick type 5"


@pytest.mark.parametrize("number", [
    "07700 900123", "+44 7700 900123", "0161 496 0000", "(020) 7946 0000", "(555) 010-1234",
    "555-010-1234", "+1 555 010 1234", "+353 86 123 4567", "07911123456",
    "+44 (0)7700 900876",
])
def test_phone_numbers(number):
    assert _text(f"call me on {number} please") == "call me on <phone> please"


def test_numbers_that_are_not_phone_numbers_stay():
    message = ("day 3, 2-3 days, spf 50, 50ml, 10 am, 24 hours, 0.5mm, 7/10 pain, 24/7, "
               "1/2 a pump, 3 weeks, 37.8 degrees, 2 drops")
    assert deidentify(message).spans == ()


def test_identifying_numbers():
    assert _text("NHS number 485 777 3456") == "NHS number <number>"
    assert _text("policy no. HX-44829117") == "policy no. <number>"
    assert _text("card ending 4421") == "card ending <number>"


@pytest.mark.parametrize("date", [
    "12/03/2026", "2026-03-12", "12 March", "March 12th", "12th of march", "monday 14th",
    "14.03.26", "march 12, 2026", "the twelfth of March", "12-Mar-2026", "Sept 30th",
])
def test_exact_dates(date):
    assert _text(f"treated {date} and still red") == "treated <date> and still red"


def test_on_the_ordinal_and_dates_of_birth():
    assert _text("i had it on the 3rd, it's my 3rd session on the 3rd day") == \
        "i had it <date>, it's my 3rd session on the 3rd day"
    assert _text("DOB 04/07/1988, born in 1991") == "DOB <date>, born in <date>"


def test_relative_times_stay():
    message = ("day 3, yesterday, on monday, 3 days ago, last week, tonight, in may, "
               "since sunday, next Tuesday, 6 weeks after, the weekend")
    assert deidentify(message).spans == ()


@pytest.mark.parametrize("message, expected", [
    ("post it to 12 Acacia Avenue, Leeds LS6 2AB please", "post it to <address> please"),
    ("flat 3, 22 high street, sw1a 1aa", "<address>"),
    ("apartment 4b, 350 Fifth Avenue, New York NY 10118", "<address>"),
    ("I'm on Rosemary Crescent near the park", "I'm on <address> near the park"),
    ("31 Kingsway, Hove BN3 4FA", "<address>"),
    ("I live in Harrogate so it's far", "I live in <place> so it's far"),
    ("i'm from leeds", "i'm from <place>"),
    ("on the high street, 3 days close to healing", "on the high street, 3 days close to healing"),
])
def test_addresses_and_towns(message, expected):
    assert _text(message) == expected


def test_emails_urls_and_handles():
    assert _text("anna.k88@gmail.com or tom dot jones at gmail dot com") == "<email> or <email>"
    assert _text("see www.example.com/a?b=1, https://t.me/x and @glow_by_jo.") == \
        "see <url>, <url> and <name>."


def test_text_that_is_not_a_string_is_refused_clearly():
    with pytest.raises(TypeError, match="needs the message as text"):
        deidentify(None)  # type: ignore[arg-type]


# --- the data files are what content authors extend ---------------------------

@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    target = tmp_path / "privacy"
    shutil.copytree(ROOT / "data" / "privacy", target)
    return target


def test_a_name_added_to_the_list_is_masked(data_copy: Path):
    message = "i asked zorblatt about the gel"
    assert Deidentifier(data_copy)(message).text == message
    with (data_copy / "given_names.txt").open("a", encoding="utf-8") as handle:
        handle.write("Zorblatt\n")
    assert Deidentifier(data_copy)(message).text == "i asked <name> about the gel"


def test_a_word_added_to_word_names_is_masked_only_in_a_name_position(data_copy: Path):
    with (data_copy / "given_names.txt").open("a", encoding="utf-8") as handle:
        handle.write("Zorblatt\n")
    with (data_copy / "word_names.txt").open("a", encoding="utf-8") as handle:
        handle.write("zorblatt\n")
    deidentifier = Deidentifier(data_copy)
    assert deidentifier("the zorblatt is red").text == "the zorblatt is red"
    assert deidentifier("my name is zorblatt").text == "my name is <name>"


def test_a_broken_cues_file_is_named(data_copy: Path):
    (data_copy / "cues.yml").write_text("titles: [dr\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="cues.yml"):
        Deidentifier(data_copy)
    (data_copy / "cues.yml").write_text("titles: dr\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="strong_name_cues"):
        Deidentifier(data_copy)


# --- the measuring command ---------------------------------------------------------

def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("text\tplanted\tknown_names\tkeep\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")
    return path


def test_measure_prints_the_figures_and_fails_below_full_recall(tmp_path, capsys):
    good = _write(tmp_path / "good.tsv", ["thanks, Anna\tAnna\t\tthanks",
                                          "call 07700 900123 on day 3\t07700 900123\t\tday 3"])
    assert main(["privacy", "measure", str(good)]) == 0
    out = capsys.readouterr().out
    assert "recall:              1.000" in out
    assert "name         1/1" in out and "phone        1/1" in out
    assert "over-masking rate 0.000" in out
    assert "messages/s" in out and "ms per message" in out

    missed = _write(tmp_path / "missed.tsv", ["the gel is from zorblatt\tzorblatt\t\tgel"])
    assert main(["privacy", "measure", str(missed)]) == 1
    out = capsys.readouterr().out
    assert "recall:              0.000" in out and "FAILED" in out and "line 2" in out


def test_measure_counts_over_masking(tmp_path):
    path = _write(tmp_path / "over.tsv", ["my name is Hope\tHope\t\tmy name is"])
    report = measure(read_cases(path), deidentify)
    assert report.recall == 1.0 and report.kept_masked == 0
    path = _write(tmp_path / "over2.tsv", ["thanks, Anna\tAnna\t\tthanks, Anna"])
    report = measure(read_cases(path), deidentify)
    assert report.kept_masked == 1 and report.overmasking_rate == 1.0


def test_measure_names_a_bad_file_and_line(tmp_path, capsys):
    bad = _write(tmp_path / "bad.tsv", ["hello Anna\tBob\t\t"])
    with pytest.raises(CaseFileError, match=r"bad.tsv:2: 'Bob' is not in the text"):
        read_cases(bad)
    assert main(["privacy", "measure", str(bad)]) == 2
    assert "bad.tsv:2" in capsys.readouterr().err
    assert main(["privacy", "measure", str(tmp_path / "none.tsv")]) == 2


def test_mask_command_prints_the_masked_text_only(capsys):
    assert main(["privacy", "mask", "thanks, Hope - 07700 900123", "--name", "Hope Murray"]) == 0
    assert capsys.readouterr().out == "thanks, <name> - <phone>\n"


# --- generalisation: written after the rules were done ------------------------------

def _rows(block: str):
    rows = []
    for number, line in enumerate(block.strip().splitlines(), start=1):
        text, planted, known, keep = (part.strip() for part in line.split("||"))
        rows.append(Case(number, text.replace("\\n", "\n"), split_items(planted),
                         split_items(known), split_items(keep)))
    return rows


# text || planted || known_names || keep
GENERALISATION_SET_2 = _rows(r"""
hiya its becky from tuesdays appointment, face still blotchy || becky ||  || blotchy
My name is Agnieszka and I am on day two || Agnieszka ||  || day two
hello, Rahul Mehta here, my wife Deepa had the treatment, she has bumps || Rahul Mehta | Deepa ||  || bumps
Can I speak to nurse Bernadette please || Bernadette ||  ||
is this Dr Hughes's number? my forehead is burning || Hughes ||  || burning
ring my daughter on 07723 456789 if I don't pick up || 07723 456789 ||  ||
Contact: 020 8123 4567 (home) || 020 8123 4567 ||  ||
my new mobile is 07400-123-456 || 07400-123-456 ||  ||
the US office number is (212) 555-0147 i think || (212) 555-0147 ||  ||
call +49 151 2345 6789 I'm in Germany || +49 151 2345 6789 ||  ||
you can reach me on 0044 20 7123 4567 after 6 || 0044 20 7123 4567 ||  ||
email: s.mcgregor@btinternet.com || s.mcgregor@btinternet.com ||  ||
pics uploaded to https://drive.google.com/file/d/1AbC/view || https://drive.google.com/file/d/1AbC/view ||  ||
i had it done 4th feb and it's the 9th now, still peeling || 4th feb | the 9th ||  || still peeling
Appointment: 03/10/2025 at 2pm || 03/10/2025 ||  || 2pm
my DOB is 19.08.1975 || 19.08.1975 ||  ||
I was born on the 2nd of January 1968 if that matters || 2nd of January 1968 ||  ||
next session Wednesday 5th November, still ok to use retinol? || Wednesday 5th November ||  || retinol
can you post it to 31 Kingsway, Hove BN3 4FA || 31 Kingsway | Hove | BN3 4FA ||  ||
I'm at 16 Bramble Drive, Solihull B91 3QT || 16 Bramble Drive | Solihull | B91 3QT ||  ||
flat 2a, 5 Regent Terrace, Edinburgh EH7 5BN || flat 2a | 5 Regent Terrace | Edinburgh | EH7 5BN ||  ||
our house is 88 Maple Street, Portland OR 97205 || 88 Maple Street | Portland | OR 97205 ||  ||
I live in Swindon and work in Bristol || Swindon ||  ||
NHS no 401 023 2137 || 401 023 2137 ||  ||
my policy number is AV-2291834 || AV-2291834 ||  ||
thank you! Lots of love, Marguerite || Marguerite ||  ||
Fine now, no more itching. - Oksana || Oksana ||  || itching
That's great, cheers\nDev || Dev ||  ||
Thanks Dr Obi, will keep an eye on it || Obi ||  || will keep an eye
Ms Van der Berg, patient since 2023, is dryness normal || Van der Berg ||  || dryness
My son Mateo (14) wants microneedling, what age is ok || Mateo ||  ||
Hi this is Rosa, I came in with my sister Lucia on friday || Rosa | Lucia ||  || on friday
Shanice here!! Can I use my fake tan yet || Shanice ||  || fake tan
it's Grace again, still a bit pink || Grace || Grace Adeyemi || a bit pink
grace adeyemi, booked for the 30th, can i exfoliate before || grace adeyemi | the 30th || Grace Adeyemi ||
Will Harrington asking - will I need a second session? || Will Harrington || Will Harrington || will I need
hi it's hope, I'm hoping the redness calms down || hope || Hope Daniels || I'm hoping the redness
Kayode said his skin peeled for a week, will mine? || Kayode ||  || will mine
Precious from the clinic told me to message || Precious ||  ||
Jun Wei Tan, day 3 report: mild redness, no pain || Jun Wei Tan || Tan Jun Wei || day 3 | mild redness
my instagram @lashesbyleah has the before pics || @lashesbyleah ||  ||
sent the photo to clinic@skinclinic.co.uk, did you get it || clinic@skinclinic.co.uk ||  ||
My husband Mark and I both had it done, he's fine and I'm red || Mark ||  ||
Dear Sunita, the cream you gave me stings || Sunita ||  || stings
booked 12th Dec, hoping it's calmed down by christmas || 12th Dec ||  || christmas
i'm Eilidh, treatment at 9am today || Eilidh ||  || 9am today
My address changed to 7 Heron Way, Norwich NR4 6TJ || 7 Heron Way | Norwich | NR4 6TJ ||  ||
could Mr Abiodun Fashola call me back? 07956 112233 || Abiodun Fashola | 07956 112233 ||  ||
Reference number 55321, is my next session confirmed? || 55321 ||  ||
I'm from Limerick originally but live in London now || Limerick | London ||  ||
my GP is Dr Nkemelu at the Castle Street surgery || Nkemelu | Castle Street ||  ||
sorry for the late reply, it's Bogdan, red but ok || Bogdan ||  ||
Patience told me to wait 48 hours for makeup || Patience ||  || 48 hours
ok x\nHolly || Holly ||  ||
Miss Chowdhury, 0208 765 4321, I think I'm reacting to the serum || Chowdhury | 0208 765 4321 ||  || serum
day 5 now, the flaking is on my chin ||  ||  || day 5 | flaking | chin
I hope it's ok to use spf 15 under makeup ||  ||  || I hope | spf 15
will I peel more on day 3 or day 4? ||  ||  || will I peel | day 3 | day 4
may be a silly question but can I swim next week ||  ||  || may be a silly question | next week
2 to 3 hours after, it started stinging ||  ||  || 2 to 3 hours
I use a 1% hydrocortisone, is that ok ||  ||  || 1% hydrocortisone
my skin is as red as a rose lol ||  ||  || a rose
grace period for the gym is how long? ||  ||  || grace period
on thursday I'll be at a wedding, 5 days after ||  ||  || on thursday | 5 days after
the mark on my jaw is still there after 10 days ||  ||  || the mark | 10 days
can I use the ordinary niacinamide 10% ||  ||  || niacinamide 10%
it's 3am and I can't sleep because of the itch ||  ||  || 3am
since sunday the redness has gone down loads ||  ||  || since sunday
I put on 2 pumps of serum and 1 layer of spf ||  ||  || 2 pumps | 1 layer
the pen went 1.0 mm deep on my scars ||  ||  || 1.0 mm
Sunny weather all week, should I stay in? ||  ||  || Sunny weather
Bill me for another tube of gel please ||  ||  || Bill me
in august I'm getting married, is one session enough ||  ||  || in august
I feel like it's only 50/50 better ||  ||  || 50/50
my temperature is 37.8, is that a fever ||  ||  || 37.8
""")

GENERALISATION_SET_3 = _rows(r"""
Morning! Tamsin Lloyd here, is a tingling feeling ok? || Tamsin Lloyd ||  || tingling
my fiancé Mateusz wants to try it too, can he book || Mateusz ||  ||
hi im kirsty, the clinic gave me this chat || kirsty ||  ||
I'm Bongani, day 2, bit of swelling round my eyes || Bongani ||  || day 2 | swelling
please tell Dr. Achebe I'm feeling better || Achebe ||  || feeling better
The nurse (Lorraine I think?) said no gym for 48h || Lorraine ||  || 48h
mum says hi - Rhiannon || Rhiannon ||  ||
Ta very much x Siân || Siân ||  ||
this is dylan's partner, he's too shy to message || dylan ||  ||
Yasmin and I were both treated today, we're sisters || Yasmin ||  || today
Hi Dr Baptiste-Mensah, the peeling has stopped || Baptiste-Mensah ||  || peeling
Sorry to bother you, it's Marcus Whitley again, 07812 334455 || Marcus Whitley | 07812 334455 || Marcus Whitley ||
whitley, marcus - dob 11/09/1982 || whitley | marcus | 11/09/1982 || Marcus Whitley ||
Can the nurse ring me on 01904 612345 tomorrow morning || 01904 612345 ||  || tomorrow morning
my other number is 075 1234 5678 || 075 1234 5678 ||  ||
WhatsApp me +44 7987 654321 || +44 7987 654321 ||  ||
If you need to reach me I'm on +1 (646) 555-0199 || +1 (646) 555-0199 ||  ||
my work email is r.oconnell@acme-corp.com || r.oconnell@acme-corp.com ||  ||
I wrote about it here: medium.com/@skinjourney/week-one || medium.com/@skinjourney/week-one ||  ||
treatment date 2025-11-28, I'm still a bit red || 2025-11-28 ||  || a bit red
my second session is on 8th January || 8th January ||  ||
I had my first one on Sept 30th and second on 28 October || Sept 30th | 28 October ||  ||
my date of birth is 1/6/1990 || 1/6/1990 ||  ||
Can I move Friday 13th to the following week || Friday 13th ||  || the following week
post to: 2 Willow Court, Harlow CM20 1AA || 2 Willow Court | Harlow | CM20 1AA ||  ||
I live at 47 Queen's Road, just off the high street || 47 Queen's Road ||  || the high street
Apartment 12, 400 Ocean Drive, Miami FL 33139 || Apartment 12 | 400 Ocean Drive | Miami | FL 33139 ||  ||
I'm based in Chelmsford || Chelmsford ||  ||
we live in Galway so travel is hard || Galway ||  ||
nhs number: 999 123 4560 || 999 123 4560 ||  ||
My Simplyhealth membership no is SH7744120 || SH7744120 ||  ||
Dear nurse Priti, thank you so much, from Elaine || Priti | Elaine ||  ||
My husband Hamish thinks I look great already || Hamish ||  ||
aunt Folasade had this done in Lagos || Folasade ||  ||
Kind regards,\nDr. Julia Brennan-Hart || Julia Brennan-Hart ||  ||
Will my skin be smooth after three sessions? ||  ||  || Will my skin | three sessions
i may have overdone the scrub on day 6 ||  ||  || i may have | day 6
Can I use 0.025% tretinoin after 5 days ||  ||  || 0.025% | 5 days
sunny in march? can I have my session then ||  ||  || sunny in march
still pink on the 4th day, hope that's ok ||  ||  || the 4th day | hope that's ok
it's 10:30pm, is it too late to put the gel on ||  ||  || 10:30pm
about 2-4 mm of peeling around my nose ||  ||  || 2-4 mm
did 3x a day like the leaflet said ||  ||  || 3x a day
my skin type is fitzpatrick 4, is that ok for summer ||  ||  || fitzpatrick 4 | summer
Using CeraVe and La Roche-Posay only ||  ||  || CeraVe | La Roche-Posay
Grace and peace, thanks for the help ||  ||  ||
booked for next Tuesday, 6 weeks after the first ||  ||  || next Tuesday | 6 weeks
I'm 29 and this was my first time ||  ||  || I'm 29
the redness was 8/10 yesterday, 4/10 today ||  ||  || 8/10 | 4/10
Mark my words, I'm never skipping spf again ||  ||  || Mark my words
""")


@pytest.mark.parametrize("case", GENERALISATION_SET_2, ids=_ids(GENERALISATION_SET_2))
def test_generalisation_set_2(case):
    _check(case)


@pytest.mark.parametrize("case", GENERALISATION_SET_3, ids=_ids(GENERALISATION_SET_3))
def test_generalisation_set_3(case):
    _check(case)
