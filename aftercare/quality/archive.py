"""Which model a report is about: a hash of the archive and its training time,
and the intent classifier inside it."""
from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from aftercare.understanding.intent_model import SentenceAwareIntentModel

ID_LENGTH = 12
CLASSIFIER_FILE = "sentence_aware_intent_model.joblib"  # components/sentence_aware_classifier.py


class ArchiveError(ValueError):
    """The model archive is missing or unreadable."""


@dataclass(frozen=True)
class ModelIdentity:
    id: str                # the first ID_LENGTH hex digits of sha256
    sha256: str
    trained_at: datetime   # UTC
    path: Path

    def as_json(self) -> dict:
        return {"id": self.id, "sha256": self.sha256,
                "trained_at": self.trained_at.isoformat(), "path": str(self.path)}


def identify(path: Path) -> ModelIdentity:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot read the model: {exc.strerror}") from None
    trained_at = _metadata_trained_at(path) or datetime.fromtimestamp(mtime, timezone.utc)
    sha = digest.hexdigest()
    return ModelIdentity(id=sha[:ID_LENGTH], sha256=sha, trained_at=trained_at, path=path)


def _metadata_trained_at(path: Path) -> Optional[datetime]:
    """Rasa writes `trained_at` (naive UTC, from datetime.utcnow()) in metadata.json."""
    try:
        with tarfile.open(path) as tar:
            member = _first_file(tar, lambda inside: inside == "metadata.json")
            if member is None:
                return None
            metadata = json.load(tar.extractfile(member))  # type: ignore[arg-type]
        stamp = datetime.fromisoformat(str(metadata["trained_at"]))
    except (tarfile.TarError, OSError, ValueError, KeyError, TypeError):
        return None
    return stamp.replace(tzinfo=timezone.utc) if stamp.tzinfo is None else stamp


def intent_classifier(path: Path) -> Optional[SentenceAwareIntentModel]:
    """The trained sentence-aware classifier in the archive, or None when the
    pipeline in config.yml has another classifier."""
    import joblib

    try:
        with tarfile.open(path) as tar:
            member = _first_file(tar, lambda inside: inside.endswith("/" + CLASSIFIER_FILE))
            if member is None:
                return None
            model = joblib.load(tar.extractfile(member))
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{path}: cannot read the model: {exc}") from None
    return model if isinstance(model, SentenceAwareIntentModel) else None


def _first_file(tar: tarfile.TarFile, wanted: Callable[[str], bool]) -> Optional[tarfile.TarInfo]:
    """Rasa's archives name their files with a leading '/'."""
    for member in tar.getmembers():
        if member.isfile() and wanted(member.name.lstrip("/")):
            return member
    return None
