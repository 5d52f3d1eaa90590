"""`aftercare evaluate`: reading the TSV, the figures, and clear errors for bad files."""
from __future__ import annotations

import re

import pytest

from aftercare.evaluation import (
    EvaluationInputError, Example, Prediction, classifier_intent, read_examples, score,
)
from cli.main import main

HEADER = "text\tintent\tred_flag\tday\tlevel\n"


def test_reads_rows_and_ignores_extra_columns(tmp_path):
    path = tmp_path / "set.tsv"
    path.write_text(HEADER + "hi there\tgreet\tno\t\t\npus on my cheek\treport_infection_signs\tyes\t3\turgent\n")
    examples = read_examples(path)
    assert [(e.text, e.intent, e.red_flag, e.day) for e in examples] == [
        ("hi there", "greet", False, None), ("pus on my cheek", "report_infection_signs", True, 3)]


@pytest.mark.parametrize("content, message", [
    ("text\tintent\n", "missing column(s): red_flag, day"),
    (HEADER + "hi\tgreet\tmaybe\t\t\n", ":2: red_flag must be yes or no"),
    (HEADER + "hi\tgreet\tno\tthree\t\n", ":2: day must be blank or a whole number"),
    (HEADER, "no rows to evaluate"),
])
def test_bad_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(EvaluationInputError, match=re.escape(message)):
        read_examples(path)


def test_missing_file_is_a_clear_cli_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.tsv")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_figures():
    examples = [Example("a", "greet", False, None, 2), Example("b", "report_cold_sore", True, 1, 3),
                Example("c", "report_redness", True, 9, 4), Example("d", "thank", False, None, 5)]
    predictions = [Prediction("greet", 0.9, None), Prediction("report_cold_sore", 0.8, "urgent"),
                   Prediction("report_redness", 0.7, None), Prediction("greet", 0.4, "routine")]
    report = score(examples, predictions)
    assert report.n == 4
    assert report.intent_accuracy == 0.75
    assert report.red_flag_recall == 0.5
    assert report.red_flag_precision == 0.5
    assert [row["line"] for row in report.missed_red_flags] == [4]
    assert [row["line"] for row in report.false_red_flags] == [5]
    assert report.per_intent_f1["thank"] == 0.0
    assert set(report.as_json()) >= {"intent_accuracy", "intent_macro_f1", "red_flag_recall",
                                     "red_flag_precision", "n"}


def test_the_fallback_decision_is_not_an_intent():
    parse = {"intent": {"name": "nlu_fallback", "confidence": 0.15},
             "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.15},
                                {"name": "out_of_scope", "confidence": 0.12}]}
    assert classifier_intent(parse) == ("out_of_scope", 0.12)
