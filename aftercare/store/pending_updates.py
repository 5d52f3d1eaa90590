"""Updates fetched from Telegram and not yet handled (PendingUpdate): kept
before Telegram is told they arrived, deleted once handled."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from aftercare.store.models import PendingUpdate


def keep(session: Session, updates: Iterable[tuple[int, str]], now: datetime) -> None:
    """Keep (update id, JSON) pairs; one already kept stays as it is."""
    wanted = dict(updates)
    if not wanted:
        return
    kept = set(session.execute(select(PendingUpdate.update_id).where(
        PendingUpdate.update_id.in_(wanted))).scalars())
    session.add_all(PendingUpdate(update_id=update_id, content=content, received_at=now)
                    for update_id, content in wanted.items() if update_id not in kept)


def handled(session: Session, update_id: int) -> None:
    session.execute(delete(PendingUpdate).where(PendingUpdate.update_id == update_id))


def left(session: Session) -> list[tuple[int, str]]:
    """Every update kept and not handled, oldest first: (update id, JSON)."""
    return [(row.update_id, row.content) for row in session.execute(
        select(PendingUpdate.update_id, PendingUpdate.content)
        .order_by(PendingUpdate.update_id))]
