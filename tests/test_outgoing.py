"""Replies turned into Telegram messages: merging, splitting, buttons."""
from __future__ import annotations

from bot.outgoing import MAX_MESSAGE_CHARS, compose, keyboard, split_text
from bot.responses import Button


def test_short_text_is_one_piece() -> None:
    assert split_text("  Hello there.  ") == ["Hello there."]
    assert split_text("") == []


def test_long_text_splits_at_paragraphs_then_words_within_the_limit() -> None:
    paragraph = ("Redness is expected for two to three days. " * 40).strip()
    text = "\n\n".join([paragraph] * 5)
    pieces = split_text(text)
    assert len(pieces) > 1
    assert all(len(p) <= MAX_MESSAGE_CHARS for p in pieces)
    assert " ".join(pieces).split() == text.split()  # nothing lost or cut mid-word
    assert all(p.endswith(".") for p in pieces)


def test_no_word_is_broken_even_without_punctuation() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    pieces = split_text(text, limit=100)
    assert all(len(p) <= 100 for p in pieces)
    assert " ".join(pieces).split() == text.split()


def test_a_single_overlong_word_is_cut_as_a_last_resort() -> None:
    pieces = split_text("x" * 250, limit=100)
    assert pieces == ["x" * 100, "x" * 100, "x" * 50]


def test_consecutive_replies_merge_and_buttons_end_a_message() -> None:
    yes = Button("All good", "/report_feeling_fine")
    messages = compose([("Safety first.", ()), ("How are you?", (yes,)), ("Also this.", ())])
    assert [m.text for m in messages] == ["Safety first.\n\nHow are you?", "Also this."]
    assert messages[0].keyboard.inline_keyboard[0][0].callback_data == "/report_feeling_fine"
    assert messages[1].keyboard is None


def test_buttons_with_overlong_payloads_are_left_out() -> None:
    markup = keyboard([Button("ok", "/ok"), Button("bad", "/" + "x" * 80)])
    assert [row[0].text for row in markup.inline_keyboard] == ["ok"]
    assert keyboard([Button("bad", "/" + "x" * 80)]) is None


def test_a_heading_is_not_left_alone_in_a_message_of_its_own():
    body = " ".join(f"Sentence {i} of the answer." for i in range(400))
    pieces = split_text("Message from the clinic:\n\n" + body)
    assert pieces[0].startswith("Message from the clinic:") and len(pieces[0]) > 2000
    assert all(len(p) <= 4096 for p in pieces)
