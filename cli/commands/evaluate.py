"""`aftercare evaluate FILE.tsv`: intent and red-flag figures for content authors and CI."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from aftercare.protocol import load_protocol
from aftercare.services import ServiceError, model_path
from aftercare.settings import get_settings
from cli.main import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="measure intents and red flags on a labelled TSV file",
        description="Columns: text, intent, red_flag (yes/no), day (blank or a whole number); "
                    "other columns are ignored.")
    parser.add_argument("file", type=Path, help="tab-separated file with a header line")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--model", type=Path, help="model archive (default: models/aftercare.tar.gz)")
    parser.add_argument("--min-intent-accuracy", type=float, help="fail below this accuracy")
    parser.add_argument("--min-red-flag-recall", type=float, help="fail below this recall")
    parser.add_argument("--min-red-flag-precision", type=float, help="fail below this precision")
    parser.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from aftercare.evaluation import (
        EvaluationInputError, evaluate, load_rasa_classifier, read_examples,
    )

    settings = get_settings()
    try:
        examples = read_examples(args.file)
        model = args.model or model_path()
    except (EvaluationInputError, ServiceError) as exc:
        raise CommandError(str(exc)) from None
    from aftercare.safety import RedFlagNet
    from aftercare.safety.triage import triage

    protocol = load_protocol(settings.protocol_path)
    net = RedFlagNet.from_file(settings.red_flag_patterns_path, protocol)

    def assess_level(text, intent, confidence, day):
        return triage(text, intent, confidence, day, net, protocol).level

    report = evaluate(examples, load_rasa_classifier(model), assess_level)
    if args.json:
        print(json.dumps(report.as_json(), indent=None, ensure_ascii=False))
    else:
        _print_report(report)
    failures = _check_bars(report, args)
    for failure in failures:
        print(f"evaluate: FAILED: {failure}")
    return 1 if failures else 0


def _check_bars(report, args) -> list[str]:
    bars = [("intent accuracy", report.intent_accuracy, args.min_intent_accuracy),
            ("red-flag recall", report.red_flag_recall, args.min_red_flag_recall),
            ("red-flag precision", report.red_flag_precision, args.min_red_flag_precision)]
    return [f"{name} {value:.3f} is below {bar}" for name, value, bar in bars
            if bar is not None and value < bar]


def _print_report(report) -> None:
    print(f"messages:            {report.n}")
    print(f"intent accuracy:     {report.intent_accuracy:.3f}")
    print(f"intent macro F1:     {report.intent_macro_f1:.3f}")
    print(f"red-flag recall:     {report.red_flag_recall:.3f}")
    print(f"red-flag precision:  {report.red_flag_precision:.3f}")
    print("\nper-intent F1:")
    for intent, f1 in sorted(report.per_intent_f1.items(), key=lambda kv: kv[1]):
        print(f"  {f1:.2f}  {intent}")
    sections = [("misclassified", report.misclassified),
                ("missed red flags", report.missed_red_flags),
                ("false red flags", report.false_red_flags)]
    for title, rows in sections:
        print(f"\n{title} ({len(rows)}):")
        for row in rows:
            print(f"  line {row['line']} day={row['day']}: expected {row['expected']}, got "
                  f"{row['predicted']} ({row['confidence']}), level={row['level']}: {row['text']}")
