"""`aftercare privacy`: de-identification of patients' messages, for content authors.

    aftercare privacy mask "thanks, Anna - 07700 900123" [--name "Anna Smith"]
    aftercare privacy measure [FILE]    # recall per kind, over-masking, speed; exit 1 below 1.0
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cli.main import CommandError

DEFAULT_CASES = Path(__file__).resolve().parent.parent.parent / "tests" / "deidentify_cases.tsv"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "privacy", help="de-identify patients' messages (names, phones, dates, addresses ...)")
    actions = parser.add_subparsers(dest="privacy_command", metavar="ACTION", required=True)
    mask = actions.add_parser(
        "mask", help="print a message with its identifiers replaced by placeholders",
        description="Prints the masked text only. TEXT '-' reads one message per line "
                    "from standard input.")
    mask.add_argument("text", help="the message, in quotes (or - for standard input)")
    mask.add_argument("--name", action="append", default=[], metavar="NAME",
                      help="the patient's own name (repeat for several)")
    mask.set_defaults(handler=_mask)
    measure = actions.add_parser(
        "measure", help="recall and over-masking on a measuring set",
        description="Columns: text, planted, known_names, keep (items separated by ' | '). "
                    "Exit status 1 when recall is below 1.0.")
    measure.add_argument("file", nargs="?", type=Path, default=DEFAULT_CASES,
                         help=f"tab-separated file (default: {DEFAULT_CASES.name} in tests/)")
    measure.add_argument("--quiet", action="store_true", help="figures only, no list of misses")
    measure.set_defaults(handler=_measure)


def _deidentifier():
    from aftercare.privacy import LexiconError, default_deidentifier
    try:
        return default_deidentifier()
    except LexiconError as exc:
        raise CommandError(str(exc)) from None


def _mask(args: argparse.Namespace) -> int:
    deidentify = _deidentifier()
    lines = sys.stdin.read().splitlines() if args.text == "-" else [args.text]
    for line in lines:
        print(deidentify(line, args.name).text)
    return 0


def _measure(args: argparse.Namespace) -> int:
    from aftercare.privacy.measure import CaseFileError, measure, read_cases
    try:
        cases = read_cases(args.file)
    except CaseFileError as exc:
        raise CommandError(str(exc)) from None
    started = time.perf_counter()
    deidentify = _deidentifier()
    deidentify("warm up, Anna, 07700 900123", ())
    built = time.perf_counter() - started
    report = measure(cases, deidentify)
    print(f"measuring set:       {args.file}")
    print(f"messages:            {report.messages} ({report.messages_with_planted} with planted "
          f"identifiers, {report.messages - report.messages_with_planted} without)")
    print(f"planted items:       {report.planted}")
    print(f"masked:              {report.masked}")
    print(f"recall:              {report.recall:.3f}")
    for kind, (masked, planted) in sorted(report.by_kind.items()):
        print(f"  {kind:<9} {masked:>4}/{planted:<4} {masked / planted:.3f}")
    print(f"kept items:          {report.kept}")
    print(f"wrongly masked:      {report.kept_masked} (over-masking rate "
          f"{report.overmasking_rate:.3f})")
    print(f"speed:               {report.messages_per_second:.0f} messages/s, "
          f"{report.ms_per_message:.2f} ms per message (pipeline built once in {built:.1f} s)")
    if not args.quiet:
        for title, findings in (("missed", report.misses), ("wrongly masked", report.overmasked)):
            if findings:
                print(f"\n{title} ({len(findings)}):")
            for finding in findings:
                print(f"  line {finding.line}: {finding.kind}: {finding.item!r}\n"
                      f"      -> {finding.masked_text!r}")
    if report.recall < 1.0:
        print(f"privacy measure: FAILED: recall {report.recall:.3f} is below 1.0")
        return 1
    return 0
