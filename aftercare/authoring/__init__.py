"""The content authors' inbox: patient messages worth a look, de-identified,
labelled by the authors and exported as training examples.

- capture.py: which messages go in and why (fallback, low confidence, the
  patient said it misunderstood, a nurse flagged it, the red-flag net and the
  intent disagreed); only for patients who agreed; masked text only.
- inbox.py: listing with filters and counts, labels, "not useful", consent.
- export.py: labelled examples into data/nlu/conversations/, checked first.

Like the store modules, functions take an open Session and the caller
commits (the export opens its own sessions: it must not hold a write lock
while Rasa validates the data).
"""
from aftercare.authoring.capture import (
    CaptureResult, MisunderstoodPhrases, Reading, capture_turn, load_misunderstood, reasons_for,
)
from aftercare.authoring.export import ExportError, ExportResult, export_labelled
from aftercare.authoring.inbox import (
    STATUS_FILTERS, Flagged, InboxError, InboxFilter, InboxPage, InboxRow, flag_misread,
    get_item, intent_choices, label, list_inbox, mark_not_useful, set_improve_consent,
)

__all__ = [
    "STATUS_FILTERS", "CaptureResult", "ExportError", "ExportResult", "Flagged", "InboxError",
    "InboxFilter", "InboxPage", "InboxRow", "MisunderstoodPhrases", "Reading", "capture_turn",
    "export_labelled", "flag_misread", "get_item", "intent_choices", "label", "list_inbox",
    "load_misunderstood", "mark_not_useful", "reasons_for", "set_improve_consent",
]
