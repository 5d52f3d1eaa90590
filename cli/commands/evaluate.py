"""`aftercare evaluate FILE.tsv...`: intent and red-flag figures for content authors and CI.

With --record the report of the model (the sets given, plus a cross-validation
on the training data) is kept in the quality history; --history prints the
figures of the last models side by side (aftercare/quality/).
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

from aftercare.services import ServiceError, model_path
from aftercare.settings import PROJECT_ROOT, get_settings
from cli.main import CommandError

TRAINING_DATA = PROJECT_ROOT / "data" / "nlu"


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1, got {text!r}")
    return int(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="measure intents and red flags on labelled TSV files; keep and compare "
                         "the figures of each model",
        description="Columns: text, intent, red_flag (yes/no), day (blank or a whole number); "
                    "other columns are ignored. The bars apply to every file given.")
    parser.add_argument("file", type=Path, nargs="*", metavar="FILE",
                        help="tab-separated file with a header line")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (one per line for several files; the "
                             "report itself with --record)")
    parser.add_argument("--model", type=Path, help="model archive (default: models/aftercare.tar.gz)")
    parser.add_argument("--min-intent-accuracy", type=float, help="fail below this accuracy")
    parser.add_argument("--min-red-flag-recall", type=float, help="fail below this recall")
    parser.add_argument("--min-red-flag-precision", type=float, help="fail below this precision")
    parser.add_argument("--record", action="store_true",
                        help="also cross-validate the intent classifier on the training data and "
                             "keep the model's report in the quality history (results/quality/)")
    parser.add_argument("--training-data", type=Path, default=None, metavar="DIR",
                        help="training data to cross-validate on with --record (default: data/nlu, "
                             "what the model is trained on)")
    parser.add_argument("--history", action="store_true",
                        help="print the figures of the last recorded models side by side")
    parser.add_argument("--last", type=_positive_int, default=None, metavar="N",
                        help="with --history: how many models (default 5)")
    parser.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    if args.last is not None and not args.history:
        raise CommandError("--last goes with --history")
    if args.training_data is not None and not args.record:
        raise CommandError("--training-data goes with --record")
    if args.record and not args.file:
        raise CommandError("--record needs the measuring sets (TSV files) to record")
    if not args.file and not args.history:
        raise CommandError("give a TSV file to measure, or --history to see the recorded figures")
    status = 0
    if args.file:
        status = _record(args) if args.record else _measure(args)
    if args.history:
        _print_history(get_settings().quality_dir, args.last or _default_last())
    return status


def _default_last() -> int:
    from aftercare.quality.history import DEFAULT_LAST

    return DEFAULT_LAST


def _measure(args: argparse.Namespace) -> int:
    from aftercare.evaluation import (
        EvaluationInputError, evaluate, load_rasa_classifier, load_red_flag_assessor,
        read_examples,
    )

    try:
        sets = [(path, read_examples(path)) for path in args.file]
        model = args.model or model_path()
    except (EvaluationInputError, ServiceError) as exc:
        raise CommandError(str(exc)) from None
    assess_level = load_red_flag_assessor(get_settings())
    classify = load_rasa_classifier(model)
    failures = []
    for path, examples in sets:
        report = evaluate(examples, classify, assess_level)
        if args.json:
            print(json.dumps(report.as_json(), indent=None, ensure_ascii=False))
        else:
            if len(sets) > 1:
                print(f"\n== {path} ==")
            _print_report(report)
        prefix = f"{path}: " if len(sets) > 1 else ""
        failures += [prefix + failure for failure in _check_bars(report, args)]
    for failure in failures:
        print(f"evaluate: FAILED: {failure}")
    return 1 if failures else 0


def _record(args: argparse.Namespace) -> int:
    from aftercare.evaluation import (
        EvaluationInputError, load_rasa_classifier, load_red_flag_assessor,
    )
    from aftercare.quality import history
    from aftercare.quality.archive import ArchiveError
    from aftercare.quality.crossval import CrossValidationError
    from aftercare.quality.report import QualityInputError, build_report
    from aftercare.quality.training import TrainingDataError

    settings = get_settings()
    try:
        model = args.model or model_path()
        run = build_report(model, args.file, args.training_data or TRAINING_DATA,
                           load_rasa_classifier, load_red_flag_assessor(settings),
                           now=datetime.now(timezone.utc),
                           earlier_run=lambda key: history.cross_validation_for(
                               settings.quality_dir, key))
        saved = history.save(run.record, settings.quality_dir)
    except (EvaluationInputError, ServiceError, QualityInputError, TrainingDataError,
            ArchiveError, CrossValidationError) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot write the quality history in "
                           f"{settings.quality_dir}: {exc.strerror}") from None
    for warning in run.warnings:
        print(f"evaluate: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(run.record, ensure_ascii=False))
    else:
        _print_recorded(run.record, saved)
    failures = [f"{name}: {failure}" for name, report in run.reports.items()
                for failure in _check_bars(report, args)]
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


# --------------------------------------------------------------------------- printing the history

HEADLINE = (("n", "n", 5, "d"), ("intent_accuracy", "accuracy", 9, ".3f"),
            ("intent_macro_f1", "macro F1", 9, ".3f"), ("red_flag_recall", "RF recall", 10, ".3f"),
            ("red_flag_precision", "RF precision", 13, ".3f"))


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"


def _number(value: Optional[float], width: int, spec: str = ".3f") -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def _change(value: Optional[float]) -> str:
    return "" if value is None else f"{value:+.3f}"


def _print_recorded(record: dict, saved: Path) -> None:
    model, cv = record["model"], record["cross_validation"]
    trained = _when(datetime.fromisoformat(model["trained_at"]))
    print(f"recorded model {model['id']} (trained {trained}) in {saved}, {record['seconds']:.1f} s")
    _print_headline_header(f"  {'set':<20}")
    for name, figures in record["sets"].items():
        print(f"  {name:<20}" + "".join(_number(figures[key], width, spec)
                                        for key, _, width, spec in HEADLINE))
    print(f"cross-validation ({cv['folds']}-fold, {cv['n']} training examples, "
          f"{cv['seconds']:.1f} s, {cv['cpu_seconds']:.1f} s of processor time): "
          f"accuracy {cv['accuracy']:.3f}, macro F1 {cv['macro_f1']:.3f}")
    if cv["reused_from"] and cv["reused_from"] != model["id"]:
        print(f"  (the run recorded for model {cv['reused_from']}: the same training data, "
              "classifier settings and code give the same figures)")
    _print_thin(record["thin_intents"])


def _print_headline_header(first: str) -> None:
    print(first + "".join(f"{title:>{width}}" for _, title, width, _ in HEADLINE))


def _print_thin(thin: dict) -> None:
    intents = thin["intents"]
    listed = ", ".join(f"{name} ({count})" for name, count in intents.items()) or "none"
    print(f"intents with fewer than {thin['threshold']} training examples: {listed}")


def _print_history(directory: Path, last: int) -> None:
    from aftercare.quality import history

    loaded = history.load(directory)
    for warning in loaded.warnings:
        print(f"evaluate: warning: {warning}", file=sys.stderr)
    entries = loaded.last(last)
    if not entries:
        print(f"evaluate: no quality history yet in {directory}: record one with "
              "`aftercare evaluate FILE... --record` (make evaluate does)")
        return
    print(f"Quality history in {directory}: the last {len(entries)} of {len(loaded.entries)} "
          "models, oldest first")
    for number, entry in enumerate(entries, start=1):
        model = entry.record.model
        print(f"  #{number}  {model.id}  trained {_when(model.trained_at)}  "
              f"recorded {_when(entry.record.recorded_at)}")
    _print_headlines(entries)
    _print_cross_validation(entries)
    for name in history.set_names(entries):
        _print_intent_table(f"per-intent F1 on {name}", history.per_intent_f1(entries, name),
                            len(entries))
    newest = entries[-1].record
    print(f"\nMost confused intent pairs in the cross-validation of #{len(entries)} "
          "(in all, a read as b, b read as a):")
    for pair in newest.cross_validation.confused_pairs:
        print(f"  {pair.total:>4}  {pair.a_as_b:>3} {pair.b_as_a:>3}  {pair.a} / {pair.b}")
    if not newest.cross_validation.confused_pairs:
        print("  none")
    print()
    _print_thin(newest.thin_intents.dict())


def _print_headlines(entries: Sequence) -> None:
    from aftercare.quality import history

    for name in history.set_names(entries):
        measured = history.figures(entries, name)
        changed = history.set_changed(entries, name)
        paths = sorted({f.path for f in measured if f is not None})
        print(f"\n{name} ({', '.join(paths)})")
        _print_headline_header("  model")
        for number, (figures, moved) in enumerate(zip(measured, changed), start=1):
            values = "".join(
                _number(None if figures is None else getattr(figures, key), width, spec)
                for key, _, width, spec in HEADLINE)
            print(f"  #{number:<4}{values}" + ("  * the set's file changed" if moved else ""))


def _print_cross_validation(entries: Sequence) -> None:
    print("\ncross-validation of the intent classifier on the training data")
    print(f"  model{'examples':>10}{'folds':>7}{'accuracy':>10}{'macro F1':>10}{'seconds':>9}"
          f"{'CPU s':>8}")
    for number, entry in enumerate(entries, start=1):
        cv = entry.record.cross_validation
        note = ("  ! the model was not trained on this data"
                if cv.model_trained_on_it is False else "")
        if cv.reused_from and cv.reused_from != entry.record.model.id:
            note += f"  (as run for {cv.reused_from})"
        print(f"  #{number:<4}{cv.n:>10}{cv.folds:>7}{cv.accuracy:>10.3f}{cv.macro_f1:>10.3f}"
              f"{cv.seconds:>9.1f}{cv.cpu_seconds:>8.1f}{note}")


def _print_intent_table(title: str, rows: Sequence, models: int) -> None:
    width = max([len(row.intent) for row in rows] + [6])
    print(f"\n{title} (worst first; n: messages of the intent in #{models}"
          + (f"; change: #{models} minus #{models - 1})" if models > 1 else ")"))
    columns = "".join(f"{'#' + str(n):>7}" for n in range(1, models + 1))
    print(f"  {'intent':<{width}}{'n':>5}{columns}" + ("  change" if models > 1 else ""))
    for row in rows:
        print(f"  {row.intent:<{width}}{'-' if row.support is None else row.support:>5}"
              + "".join(_number(v, 7, ".2f") for v in row.f1)
              + (f"  {_change(row.change)}" if models > 1 else ""))
