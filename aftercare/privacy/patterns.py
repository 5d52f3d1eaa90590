"""Identifiers with a shape: e-mail addresses, web addresses, dates, phone and
other long numbers, street addresses and postcodes. Regular expressions over
the raw text; names are found by aftercare/privacy/names.py.

Each finder returns (kind, start, end) character spans. What must stay as
written (relative days, doses, durations, times) is kept out by the shapes
themselves and by the unit words of data/privacy/cues.yml.
"""
from __future__ import annotations

import re
from typing import Iterable, NamedTuple

from aftercare.privacy.lexicon import Lexicon


class Found(NamedTuple):
    kind: str
    start: int
    end: int


_I = re.IGNORECASE

# --- e-mail and web addresses -------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+'’-])[\w.+'’-]+@[\w-]+(?:\.[\w-]+)+", _I)
# Written out: "tom dot jones at gmail dot com", "anna at hotmail.co.uk".
_MAILBOXES = (r"(?:gmail|googlemail|hotmail|yahoo|outlook|icloud|live|aol|btinternet|sky"
              r"|proton(?:mail)?|me|mail)")
_SPOKEN_EMAIL = re.compile(
    r"\b(?:[\w+-]+\s+(?:dot|underscore)\s+)*[\w.+-]+\s+(?:at|@)\s+"
    r"(?:[\w-]+\s+dot\s+(?:[\w-]+\s+dot\s+)*|" + _MAILBOXES + r"\.(?:[a-z]{2,3}\.)?)"
    r"(?:com|net|org|ie|uk|au|us|ca|co\s+dot\s+uk|co\.uk)\b", _I)
_TLD = (r"(?:com|co\.uk|org\.uk|nhs\.uk|org|net|io|ie|uk|au|us|ca|nz|me|info|app|ly|be|gl"
        r"|health|clinic)")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", _I)
_DOMAIN = re.compile(rf"(?<![@\w.-])(?:[a-z0-9-]+\.)+{_TLD}\b(?:/[^\s<>\"']*)?", _I)
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z0-9_](?:[A-Za-z0-9_.]*[A-Za-z0-9_])?")
_TRAILING = ".,;:!?)]}'\""


def _trim(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in _TRAILING:
        end -= 1
    return end


def find_emails_urls(text: str) -> list[Found]:
    found = [Found("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
    found += [Found("email", m.start(), m.end()) for m in _SPOKEN_EMAIL.finditer(text)]
    for pattern in (_URL, _DOMAIN):
        for m in pattern.finditer(text):
            end = _trim(text, m.start(), m.end())
            if end > m.start() and not _inside(found, m.start(), end):
                found.append(Found("url", m.start(), end))
    for m in _HANDLE.finditer(text):
        if len(m.group()) > 2 and not _inside(found, m.start(), m.end()):
            found.append(Found("name", m.start(), m.end()))
    return found


def _inside(spans: Iterable[Found], start: int, end: int) -> bool:
    return any(s.start < end and start < s.end for s in spans)


# --- dates -------------------------------------------------------------------

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_WEEKDAY = (r"(?:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?"
            r"|fri(?:day)?|sat(?:urday)?|sun(?:day)?)")
_DAY = r"(?:3[01]|[12]\d|0?[1-9])"
_ORD = r"(?:st|nd|rd|th)"
# A two-digit year only where it cannot be a count or a time ("12 March 26", not "26 days").
_YEAR = (r"(?:(?:19|20)\d{2}|'\d{2}|\d{2}(?![\d:.%]|\s*(?:am|pm|x|h|hrs?|hours?|mins?|days?|"
         r"weeks?|months?|years?|ml|mm|mg)\b))")
_ORDINAL_WORD = (r"(?:(?:twenty|thirty)[\s-]?)?(?:first|second|third|fourth|fifth|sixth|seventh|"
                 r"eighth|ninth)|tenth|eleventh|twelfth"
                 r"|(?:thir|four|fif|six|seven|eigh|nine)teenth|twentieth|thirtieth")
_WEEKDAY_PREFIX = rf"(?:{_WEEKDAY}\.?,?\s+(?:the\s+)?)?"

_NUMERIC_DATE = re.compile(
    r"(?<![\d/.\-])(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?![\d/]|[.\-]\d)")
_ISO_DATE = re.compile(
    r"(?<![\d/.\-])(?:19|20)\d{2}([/.\-])(?:1[0-2]|0?[1-9])\1(?:3[01]|[12]\d|0?[1-9])(?!\d)")
_DAY_MONTH = re.compile(
    rf"\b{_WEEKDAY_PREFIX}(?:the\s+)?(?:{_DAY}{_ORD}?|{_ORDINAL_WORD})(?:\s+of\s+|\s+|-)"
    rf"({_MONTH})\b\.?(?:(?:,?\s+|-){_YEAR}\b)?", _I)
_MONTH_DAY = re.compile(
    rf"\b{_WEEKDAY_PREFIX}({_MONTH})\.?\s+(?:the\s+)?(?:{_DAY}{_ORD}?|{_ORDINAL_WORD})\b"
    rf"(?:,?\s+{_YEAR}\b)?", _I)
_MONTH_YEAR = re.compile(rf"\b({_MONTH})\.?,?\s+(?:of\s+)?(?:19|20)\d{{2}}\b", _I)
_WEEKDAY_DAY = re.compile(rf"\b{_WEEKDAY}\.?,?\s+(?:the\s+)?{_DAY}{_ORD}?\b", _I)
_THE_ORDINAL = re.compile(
    rf"\b(?:(?:on|since|from|until|till|by|before|after|for)\s+)?the\s+{_DAY}{_ORD}\b", _I)
_ON_ORDINAL = re.compile(rf"\b(?:on|since|from|until|till|by)\s+{_DAY}{_ORD}\b", _I)
_DAY_SLASH_MONTH = re.compile(r"(?<![\d/.\-])(\d{1,2})/(\d{1,2})(?![\d/])")
_DATE_WORDS_BEFORE = re.compile(
    rf"\b(?:on|since|from|until|till|by|before|after|dated?|appt|appointment|booked(?:\s+for)?"
    rf"|due|born|dob|{_WEEKDAY})\s*:?\s*$", _I)
_BIRTH_YEAR = re.compile(
    r"\b(?:born(?:\s+(?:on|in))?|dob|d\.o\.b\.?|date\s+of\s+birth|year\s+of\s+birth)"
    r"\s*(?:is|was)?\s*[:\-]?\s*((?:19|20)\d{2})\b", _I)
# After "the 3rd", "on 14th": these make it a count of days or sessions, not a date.
_ORDINAL_NOUNS = frozenset(
    "day days night nights week weeks month months year years time times session sessions "
    "treatment treatments one ones go dose doses application applications layer layers coat "
    "coats pass passes round rounds attempt attempts visit visits appointment appointments "
    "birthday anniversary floor child baby kid hour hours morning evening try lot batch tube "
    "bottle pot pack photo photos pic pics picture message text question reply check checkin "
    "point option step stage degree place person lady nurse doctor".split())
# After "2 may": the modal verb, not the month.
_MAY_VERBS = frozenset(
    "be have need not just also still well take get want help cause look feel happen peel itch "
    "sting burn make seem start stop go come i we you it this that as".split())


def _next_word(text: str, end: int) -> str:
    m = re.match(r"\s*([A-Za-z']+)", text[end:])
    return m.group(1).lower() if m else ""


def _followed_by_number_unit(text: str, end: int, units: frozenset[str]) -> bool:
    return _next_word(text, end) in units or bool(re.match(r"\s*[:.]\d|\d|\s*(?:-|to|or)\s*\d",
                                                           text[end:]))


def _valid_day_month(a: int, b: int) -> bool:
    return 1 <= a <= 31 and 1 <= b <= 31 and (a <= 12 or b <= 12)


def find_dates(text: str, units: frozenset[str]) -> list[Found]:
    found: list[Found] = []

    def add(start: int, end: int) -> None:
        found.append(Found("date", start, end))

    for m in _NUMERIC_DATE.finditer(text):
        if _valid_day_month(int(m.group(1)), int(m.group(3))):
            add(m.start(), m.end())
    for m in _ISO_DATE.finditer(text):
        add(m.start(), m.end())
    for m in _DAY_MONTH.finditer(text):
        if m.group(1).lower() == "may" and _next_word(text, m.end()) in _MAY_VERBS:
            continue
        add(m.start(), m.end())
    for pattern in (_MONTH_DAY, _WEEKDAY_DAY):
        for m in pattern.finditer(text):
            if not _followed_by_number_unit(text, m.end(), units):
                add(m.start(), m.end())
    for m in _MONTH_YEAR.finditer(text):
        if _next_word(text, m.end()) not in units:
            add(m.start(), m.end())
    for pattern in (_THE_ORDINAL, _ON_ORDINAL):
        for m in pattern.finditer(text):
            if _next_word(text, m.end()) not in _ORDINAL_NOUNS and not re.match(
                    r"[-/]", text[m.end():m.end() + 1]):
                add(m.start(), m.end())
    for m in _DAY_SLASH_MONTH.finditer(text):
        day, month = int(m.group(1)), int(m.group(2))
        if not (1 <= day <= 31 and 1 <= month <= 12) or m.group() == "24/7":
            continue
        introduced = bool(_DATE_WORDS_BEFORE.search(text[:m.start()]))
        both_padded = len(m.group(1)) == 2 and len(m.group(2)) == 2
        rating = month == 10 and day <= 10
        if introduced or (both_padded and not rating and _next_word(text, m.end()) not in units):
            add(m.start(), m.end())
    for m in _BIRTH_YEAR.finditer(text):
        add(m.start(1), m.end(1))
    return found


# --- phone numbers and other long numbers ------------------------------------

_DIGIT_RUN = re.compile(
    r"(?<![\w+/.\-])(?:(?:\+|00)\s?\d{1,3}[ .\-]?)?(?:\(0\)[ .\-]?)?(?:\(\d{2,5}\)[ .\-]?)?"
    r"\d+(?:(?:[ .\-]|\s-\s)\d+){0,6}(?![\w/]|[.\-]\d)")
_ID_CODE = re.compile(r"(?<![\w@/.-])(?=[A-Za-z0-9-]*\d[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])"
                      r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![\w@/]|[.\-]\w)")
_PHONE_WORDS = re.compile(
    r"\b(?:call|ring|phone|tel|telephone|mobile|mob|cell|text|whatsapp|number|no\.?|contact|"
    r"reach me|on)\s*[:\-]?\s*$", _I)


def find_numbers(text: str, id_keywords: tuple[str, ...], taken: list[Found]) -> list[Found]:
    """Phone numbers (<phone>) and identifying numbers (<number>: NHS, insurance, card)."""
    keyword = _keyword_pattern(id_keywords)
    found: list[Found] = []
    for m in _DIGIT_RUN.finditer(text):
        start, end = m.start(), m.end()
        if _inside(taken, start, end):
            continue
        digits = sum(ch.isdigit() for ch in m.group())
        before = text[max(0, start - 40):start]
        after_id_word = bool(keyword.search(before))
        phone_word = bool(_PHONE_WORDS.search(before))
        shaped = m.group()[0] in "+(0" or digits == 10
        if after_id_word and digits >= 4:
            found.append(Found("number", start, end))
        elif 9 <= digits <= 13 and (shaped or phone_word):
            found.append(Found("phone", start, end))
        elif digits >= 7 and phone_word and digits <= 13:
            found.append(Found("phone", start, end))
        elif digits >= 7:
            found.append(Found("number", start, end))
    for m in _ID_CODE.finditer(text):
        start, end = m.start(), m.end()
        if _inside(taken, start, end) or _inside(found, start, end):
            continue
        digits = sum(ch.isdigit() for ch in m.group())
        if digits >= 5 or (digits >= 3 and keyword.search(text[max(0, start - 40):start])):
            found.append(Found("number", start, end))
    return found


def _keyword_pattern(id_keywords: tuple[str, ...]) -> re.Pattern[str]:
    words = "|".join(re.escape(k).replace(r"\ ", r"\s+") for k in
                     sorted(id_keywords, key=len, reverse=True))
    return re.compile(rf"\b(?:{words})\b(?:\s+(?:number|no\.?|num|ending(?:\s+in)?|is|was|"
                      rf"code|ref|reference|id))*\s*[:#\-]?\s*#?\s*$", _I)


# --- addresses -----------------------------------------------------------------

_POSTCODE = re.compile(
    r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR)\s?\d(?!st\b|nd\b|rd\b|th\b)[ABD-HJLNP-UW-Z]{2}\b", _I)
_US_STATES = ("AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE "
              "NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC").split()
_STATE_NAMES = (r"alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|"
                r"florida|georgia|hawaii|idaho|illinois|indiana|iowa|kansas|kentucky|louisiana|"
                r"maine|maryland|massachusetts|michigan|minnesota|mississippi|missouri|montana|"
                r"nebraska|nevada|new hampshire|new jersey|new mexico|new york|north carolina|"
                r"north dakota|ohio|oklahoma|oregon|pennsylvania|rhode island|south carolina|"
                r"south dakota|tennessee|texas|utah|vermont|virginia|washington|west virginia|"
                r"wisconsin|wyoming")
_ZIP = re.compile(rf"(?:\b(?:{'|'.join(_US_STATES)})|(?i:\b(?:{_STATE_NAMES})))\.?,?\s+"
                  rf"(\d{{5}}(?:-\d{{4}})?)\b")
# Australian states with their postcode; Irish Eircodes (capitals only: "D02 X285").
_AU_POSTCODE = re.compile(r"\b(?:NSW|VIC|QLD|WA|SA|TAS|ACT|NT)\s+\d{4}\b")
_EIRCODE = re.compile(r"\b[AC-FHKNPRTV-Y]\d{2}\s?[AC-FHKNPRTV-Y0-9]{4}\b")
_ZIP_WORD = re.compile(r"\bzip(?:\s*code)?\s*(?:is)?\s*[:#]?\s*(\d{5}(?:-\d{4})?)\b", _I)
_UNIT = re.compile(r"\b(?:flat|apartment|apt|unit|suite|ste)\.?\s*(?:no\.?\s*)?#?\d+[a-z]?\b", _I)
_PO_BOX = re.compile(r"\bp\.?\s?o\.?\s+box\s+\d+\b", _I)
_WORD = re.compile(r"[A-Za-z][\w'’]*(?:-[A-Za-z][\w'’]*)*\.?")


def find_addresses(text: str, lexicon: Lexicon, taken: list[Found]) -> list[Found]:
    suffixes = set(lexicon.cues["street_suffixes"])
    ambiguous = set(lexicon.cues["ambiguous_street_suffixes"])
    units = set(lexicon.cues["units"])
    found = [Found("address", m.start(), m.end()) for m in _POSTCODE.finditer(text)
             if not _inside(taken, m.start(), m.end())]
    found += [Found("address", m.start(), m.end()) for m in _ZIP.finditer(text)]
    found += [Found("address", m.start(1), m.end(1)) for m in _ZIP_WORD.finditer(text)]
    for pattern in (_AU_POSTCODE, _EIRCODE):
        found += [Found("address", m.start(), m.end()) for m in pattern.finditer(text)
                  if sum(ch.isdigit() for ch in m.group()) >= 2]
    found += [Found("address", m.start(), m.end()) for m in _UNIT.finditer(text)]
    found += [Found("address", m.start(), m.end()) for m in _PO_BOX.finditer(text)]
    found += _streets(text, suffixes, ambiguous, units, lexicon)
    return _with_towns(text, found)


# A town between two parts of an address, or after one at the end of a phrase:
# "12 Acacia Avenue, Leeds LS1 4AB", "22 High Street, Cork."
_TOWN = r"[A-Z][a-z'’]+(?:[ \-](?:upon|on|le|[A-Z][a-z'’]+)){0,3}"
_TOWN_BETWEEN = re.compile(rf"\s*,?\s*{_TOWN}\s*,?\s*")
_TOWN_AFTER = re.compile(rf"\s*,\s*{_TOWN}(?=\s*(?:[.,!?;:)\n]|$))")


# Before a postcode: "31 Kingsway, Hove BN3 4FA" (a street without a suffix word).
_STREET_BEFORE_POSTCODE = re.compile(
    rf"\b\d{{1,5}}[a-z]?,?\s+(?:[A-Z][\w'’-]*\s+){{0,3}}[A-Z][\w'’-]*\s*,\s*"
    rf"(?:{_TOWN}\s*,?\s*)?$")


def _with_towns(text: str, found: list[Found]) -> list[Found]:
    for span in list(found):
        street = _STREET_BEFORE_POSTCODE.search(text, 0, span.start)
        if street and street.end() == span.start and not _STOP_ISH.intersection(
                re.findall(r"[a-z]+", street.group().lower())):
            found.append(Found("address", street.start(), span.start))
    spans = sorted(found, key=lambda s: s.start)
    result: list[Found] = []
    for span in spans:
        if result and _TOWN_BETWEEN.fullmatch(text, result[-1].end, span.start) \
                and result[-1].end <= span.start:
            result[-1] = Found("address", result[-1].start, max(span.end, result[-1].end))
            continue
        result.append(span)
    extended = []
    for span in result:
        town = _TOWN_AFTER.match(text, span.end)
        if town and not _STOP_ISH.intersection(re.findall(r"[a-z]+", town.group().lower())):
            span = Found("address", span.start, town.end())
        extended.append(span)
    return extended


def _streets(text: str, suffixes: set[str], ambiguous: set[str], units: set[str],
             lexicon: Lexicon) -> list[Found]:
    """'12 Acacia Avenue', '22 high street', 'Baker Street' (capitalised, without a number)."""
    found = []
    words = [(m.start(), m.end(), m.group().rstrip(".")) for m in _WORD.finditer(text)]
    for index, (_start, end, word) in enumerate(words):
        lower = word.lower()
        if lower not in suffixes:
            continue
        if lower in ("dr", "st") and _next_is_capitalised(words, index, text):
            continue  # "Dr Patel", "St Thomas'": a title or a saint, not a street
        name_words: list[tuple[int, str]] = []
        j = index - 1
        while j >= 0 and len(name_words) < 3:
            w_start, w_end, w = words[j]
            gap = text[w_end:words[j + 1][0]]
            if gap.strip() not in ("", "-") or "\n" in gap:
                break
            if w.lower() in units or w.lower() in _STOP_ISH:
                break
            name_words.insert(0, (w_start, w))
            j -= 1
        if not name_words:
            continue
        titled = word[0].isupper() and all(w[0].isupper() for _, w in name_words)
        if lower in ambiguous and not titled:
            continue
        first_start = name_words[0][0]
        number = re.search(r"\b\d{1,5}[a-z]?\s*,?\s*$", text[:first_start], _I)
        if number:
            found.append(Found("address", number.start(), end))
        elif titled:
            found.append(Found("address", first_start, end))
    return found


def _next_is_capitalised(words: list[tuple[int, int, str]], index: int, text: str) -> bool:
    if index + 1 >= len(words):
        return False
    gap = text[words[index][1]:words[index + 1][0]]
    return gap.strip(" .") == "" and words[index + 1][2][0].isupper()


# Words that never belong to a street's name ("on the high street", "I", "my").
_STOP_ISH = frozenset(
    "the a an my your our his her their this that i it is was on in at to of for and or but "
    "with from by near off up down round so just only next last every each some any no yes "
    "hi hello thanks please".split())
