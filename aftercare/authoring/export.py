"""`aftercare inbox export`: labelled inbox items into the training data.

Each labelled item becomes one example in data/nlu/conversations/<intent>.yml
(one file per intent, appended to, with a comment naming the inbox items and
the date), which Rasa reads with the rest of data/. Before anything is
written:

- an example whose words (normalised: case, punctuation and spacing do not
  count) are already an example of its intent anywhere under data/ is not
  written again; its item is marked exported;
- one that is an example of another intent, or labelled with two intents in
  this export, is refused: it would put one example under two intents; its
  item stays labelled for the author to look at again;
- a label whose intent is no longer in the domain is refused the same way;
- the whole of data/ with the new examples in place (a copy) must pass the
  same validation as `aftercare validate`; if not, nothing is written.

Items are marked exported only after their files are written, under the
database's write lock, so an item that changed or whose patient was erased
while the data was being checked is left out (and reported).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aftercare.rasa_data import (
    RasaDataError, examples_by_text, normalise_example, trainable_intents, training_examples,
)
from aftercare.store.models import InboxItem

OpenSession = Callable[[], AbstractContextManager]     # db.session_scope(url), bound
Validate = Callable[[Path], Sequence[str]]             # a data folder -> its problems
FILE_HEADER = """version: "3.1"
# Examples of the intent {intent} from patients' own messages, de-identified
# (<name>, <phone>, <date>, ... stand for what was taken out), labelled by the
# content authors in the authoring inbox and appended by `aftercare inbox
# export`. Review the diff before you commit; to drop an example, delete its
# line (the inbox will not write it again).
nlu:
"""


class ExportError(Exception):
    """The export was refused; nothing was written or marked exported."""


@dataclass(frozen=True)
class _Labelled:
    id: int
    intent: str
    example: str
    key: str                      # normalise_example(example)
    stamp: tuple                  # what must not change before it is marked exported


@dataclass(frozen=True)
class Written:
    path: Path
    intent: str
    examples: tuple[str, ...]
    item_ids: tuple[int, ...]


@dataclass
class ExportResult:
    written: list[Written] = field(default_factory=list)
    already_there: list[tuple[int, str]] = field(default_factory=list)     # (item, intent)
    conflicts: list[tuple[int, str, tuple[str, ...]]] = field(default_factory=list)
    unknown_intents: list[tuple[int, str]] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)     # nothing left once cleaned
    changed: list[int] = field(default_factory=list)   # changed or removed meanwhile

    @property
    def exported_ids(self) -> list[int]:
        return sorted([i for w in self.written for i in w.item_ids]
                      + [i for i, _ in self.already_there])


def example_text(text: str) -> str:
    """An item's text as one line of Rasa training data: spaces collapsed, no
    brackets or braces (Rasa would read them as entity annotations), no leading dash."""
    text = " ".join(text.split())
    text = text.translate(str.maketrans("[]{}", "()()"))
    return text.lstrip("- ").strip()


def _stamp(item: InboxItem) -> tuple:
    return (item.status, item.label_intent, item.label_text, item.labelled_at)


def _labelled(session: Session, ids: Optional[Sequence[int]] = None) -> list[_Labelled]:
    query = select(InboxItem).where(InboxItem.status == "labelled")
    if ids is not None:
        query = query.where(InboxItem.id.in_(list(ids))).with_for_update()
    found = []
    for item in session.execute(query.order_by(InboxItem.id)).scalars():
        example = example_text(item.label_text or item.text)
        found.append(_Labelled(item.id, item.label_intent or "", example,
                               normalise_example(example), _stamp(item)))
    return found


@dataclass
class _Plan:
    new: dict[str, list[_Labelled]] = field(default_factory=dict)   # intent -> examples
    result: ExportResult = field(default_factory=ExportResult)


def _plan(items: list[_Labelled], existing: dict[str, set[str]], intents: set[str]) -> _Plan:
    plan = _Plan()
    batch: dict[str, _Labelled] = {}
    refused_keys: set[str] = set()
    for item in items:
        if not item.key:
            plan.result.empty.append(item.id)
            continue
        if item.intent not in intents:
            plan.result.unknown_intents.append((item.id, item.intent))
            continue
        there = existing.get(item.key, set())
        if there - {item.intent}:
            plan.result.conflicts.append((item.id, item.intent,
                                          tuple(sorted(there - {item.intent}))))
            continue
        if item.intent in there:
            plan.result.already_there.append((item.id, item.intent))
            continue
        if item.key in refused_keys:
            plan.result.conflicts.append((item.id, item.intent, ("another item",)))
            continue
        earlier = batch.get(item.key)
        if earlier is not None and earlier.intent != item.intent:
            plan.new[earlier.intent].remove(earlier)
            del batch[item.key]
            refused_keys.add(item.key)
            plan.result.conflicts += [(earlier.id, earlier.intent, (item.intent,)),
                                      (item.id, item.intent, (earlier.intent,))]
            continue
        if earlier is not None:
            plan.result.already_there.append((item.id, item.intent))
            continue
        batch[item.key] = item
        plan.new.setdefault(item.intent, []).append(item)
    plan.new = {intent: examples for intent, examples in plan.new.items() if examples}
    return plan


def _block(intent: str, items: list[_Labelled], now: datetime) -> str:
    ids = ", ".join(str(item.id) for item in items)
    lines = [f"# {now:%Y-%m-%d}: inbox item(s) {ids}, in this order",
             f"- intent: {intent}", "  examples: |"]
    lines += [f"    - {item.example}" for item in items]
    return "\n".join(lines) + "\n"


def _new_content(path: Path, intent: str, items: list[_Labelled], now: datetime) -> str:
    current = path.read_text(encoding="utf-8") if path.exists() else FILE_HEADER.format(
        intent=intent)
    if current and not current.endswith("\n"):
        current += "\n"
    return current + _block(intent, items, now)


def _write(path: Path, content: str) -> None:
    """Whole file or nothing: a temporary file in the same folder, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _check_on_copy(plan: _Plan, data_dir: Path, target_dir: Path, validate: Validate,
                   now: datetime) -> None:
    with tempfile.TemporaryDirectory(prefix="aftercare-export-") as work:
        staged = Path(work) / "data"
        shutil.copytree(data_dir, staged, ignore=shutil.ignore_patterns("__pycache__"))
        staged_target = staged / target_dir.relative_to(data_dir)
        for intent, items in plan.new.items():
            real = target_dir / f"{intent}.yml"
            _write(staged_target / real.name, _new_content(real, intent, items, now))
        problems = [str(p).replace(str(staged), str(data_dir)) for p in validate(staged)]
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ExportError(f"the training data does not pass validation (aftercare validate), "
                          f"so nothing was written or marked exported:\n{listed}")


def export_labelled(open_session: OpenSession, *, data_dir: Path, target_dir: Path,
                    domain_path: Path, validate: Validate, now: datetime) -> ExportResult:
    """Write the labelled items as training examples (module doc); what was
    written, skipped and refused. ExportError: nothing was written."""
    data_dir, target_dir = Path(data_dir).resolve(), Path(target_dir).resolve()
    if not target_dir.is_relative_to(data_dir):
        raise ExportError(f"the export folder {target_dir} must be inside the training data "
                          f"folder {data_dir}, or Rasa would not read it")
    with open_session() as session:
        items = _labelled(session)
    if not items:
        return ExportResult()
    try:
        intents = set(trainable_intents(domain_path))
        existing = dict(examples_by_text(training_examples(data_dir)))
    except RasaDataError as exc:
        raise ExportError(f"cannot read the assistant's data: {exc}") from None
    plan = _plan(items, existing, intents)
    if plan.new:
        _check_on_copy(plan, data_dir, target_dir, validate, now)
    marked = [item.id for examples in plan.new.values() for item in examples]
    marked += [item_id for item_id, _ in plan.result.already_there]
    if not marked:
        return plan.result
    with open_session() as session:
        return _write_and_mark(session, plan, items, marked, target_dir, now)


def _write_and_mark(session: Session, plan: _Plan, items: list[_Labelled], marked: list[int],
                    target_dir: Path, now: datetime) -> ExportResult:
    # Taking the write lock first (a no-op UPDATE): an erasure or a new label
    # waits until the files are written and the items marked, or comes before.
    session.execute(update(InboxItem).where(InboxItem.id.in_(marked))
                    .values(status=InboxItem.status).execution_options(synchronize_session=False))
    now_stamps = {item.id: item.stamp for item in _labelled(session, marked)}
    before = {item.id: item.stamp for item in items}
    unchanged = {i for i in marked if now_stamps.get(i) == before[i]}
    result = plan.result
    result.changed = sorted(set(marked) - unchanged)
    result.already_there = [(i, intent) for i, intent in result.already_there if i in unchanged]
    for intent, examples in sorted(plan.new.items()):
        examples = [item for item in examples if item.id in unchanged]
        if not examples:
            continue
        path = target_dir / f"{intent}.yml"
        _write(path, _new_content(path, intent, examples, now))
        result.written.append(Written(path, intent, tuple(item.example for item in examples),
                                      tuple(item.id for item in examples)))
    exported = result.exported_ids
    if exported:
        session.execute(update(InboxItem).where(InboxItem.id.in_(exported))
                        .values(status="exported", exported_at=now)
                        .execution_options(synchronize_session=False))
    return result
