"""Measure the red-flag net on labelled messages.

    .venv/bin/python benchmarks/measure_red_flag_net.py FILE.tsv [FILE.tsv ...]
        [--patterns data/safety/red_flags.yml] [--protocol clinic/protocol.yml]
        [--with-intent] [--show-false-positives] [--show-under-level]

A TSV file has a header row and either
  text, day, expected_level (emergency|urgent|routine|none), note    (tests/red_flag_cases.tsv)
or
  text, intent, red_flag (yes|no), day, level                        (evaluation sets)

By default the net runs alone, through triage with intent=None. --with-intent
passes the file's intent column (when there is one) to triage as well.

Prints red-flag recall (flag expected -> any flag raised), precision (flag
raised -> flag expected), how many flags reached at least the expected level,
and every miss. Exit status 1 when any expected red flag was missed.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aftercare.protocol import load_protocol  # noqa: E402
from aftercare.safety.net import RedFlagNet  # noqa: E402
from aftercare.safety.triage import LEVEL_ORDER, triage  # noqa: E402


def _day(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value else None


def _expected(row: dict) -> str | None:
    if "expected_level" in row:
        level = (row["expected_level"] or "").strip().lower()
    else:
        flag = (row.get("red_flag") or "").strip().lower()
        level = (row.get("level") or "").strip().lower() if flag == "yes" else "none"
        if flag == "yes" and level not in LEVEL_ORDER:
            level = "routine"      # a flag without a level: any flag counts
    if level in ("", "none", "no"):
        return None
    if level not in LEVEL_ORDER:
        raise ValueError(f"unknown level {level!r} in row {row!r}")
    return level


def read_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row for row in reader if (row.get("text") or "").strip()
                and not row["text"].lstrip().startswith("#")]


def measure(path: Path, net: RedFlagNet, protocol, with_intent: bool,
            show_fp: bool, show_under: bool) -> int:
    rows = read_rows(path)
    tp = fp = fn = tn = at_least = 0
    misses, false_positives, under = [], [], []
    for row in rows:
        day = _day(row.get("day"))
        expected = _expected(row)
        intent = (row.get("intent") or None) if with_intent else None
        result = triage(row["text"], intent, 1.0, day, net, protocol)
        got = result.level
        if expected is not None:
            if got is None:
                fn += 1
                misses.append((row["text"], day, expected, got))
            else:
                tp += 1
                if LEVEL_ORDER[got] >= LEVEL_ORDER[expected]:
                    at_least += 1
                else:
                    under.append((row["text"], day, expected, got, result.reason))
        else:
            if got is None:
                tn += 1
            else:
                fp += 1
                false_positives.append((row["text"], day, got, result.reason))
    recall = tp / (tp + fn) if tp + fn else 1.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    print(f"== {path} ({len(rows)} messages, {tp + fn} red flags, intent "
          f"{'used' if with_intent else 'not used'})")
    print(f"red-flag recall    {recall:.3f}  ({tp}/{tp + fn})")
    print(f"red-flag precision {precision:.3f}  ({tp}/{tp + fp})")
    print(f"at least the expected level: {at_least}/{tp + fn}")
    print(f"misses: {len(misses)}")
    for text, day, expected, got in misses:
        print(f"  MISS  day={day} expected={expected}: {text}")
    if under:
        print(f"flagged below the expected level: {len(under)}")
        if show_under:
            for text, day, expected, got, reason in under:
                print(f"  UNDER day={day} expected={expected} got={got} ({reason}): {text}")
    print(f"false positives: {len(false_positives)}")
    if show_fp:
        for text, day, got, reason in false_positives:
            print(f"  FP    day={day} got={got} ({reason}): {text}")
    return len(misses)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--patterns", type=Path, default=ROOT / "data" / "safety" / "red_flags.yml")
    parser.add_argument("--protocol", type=Path, default=ROOT / "clinic" / "protocol.yml")
    parser.add_argument("--with-intent", action="store_true")
    parser.add_argument("--show-false-positives", action="store_true")
    parser.add_argument("--show-under-level", action="store_true")
    args = parser.parse_args(argv)
    protocol = load_protocol(args.protocol)
    net = RedFlagNet.from_file(args.patterns, protocol)
    missed = 0
    for path in args.files:
        missed += measure(path, net, protocol, args.with_intent,
                          args.show_false_positives, args.show_under_level)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
