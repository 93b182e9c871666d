"""Digests: what was mailed to which recipient list, and the stories not yet mailed.

Callers own the transaction (`Database.transaction()`); nothing here commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from veille.storage.models import (
    Article,
    Digest,
    DigestItem,
    Story,
    TopicMatchRow,
    utcnow,
)


def recipients_key(recipients: Iterable[str]) -> str:
    joined = ",".join(sorted({r.strip().lower() for r in recipients}))
    return hashlib.sha256(joined.encode()).hexdigest()


def unsent_story_ids(
    session: Session, topics: Sequence[str], recipients: Sequence[str], since: datetime | None
) -> list[int]:
    """Tracked stories never in a sent digest for this recipient list."""
    key = recipients_key(recipients)
    sent = select(DigestItem.story_id).where(DigestItem.recipients_key == key)
    flagged = (
        select(Article.story_id)
        .join(TopicMatchRow, TopicMatchRow.article_id == Article.id)
        .where(TopicMatchRow.topic.in_(list(topics)))
    )
    stmt = select(Story.id).where(Story.id.in_(flagged), Story.id.not_in(sent))
    if since is not None:
        stmt = stmt.where(Story.first_seen >= since)
    return list(session.scalars(stmt))


def last_sent_digest(session: Session, recipients: Sequence[str]) -> Digest | None:
    stmt = (
        select(Digest)
        .where(Digest.recipients_key == recipients_key(recipients), Digest.status == "sent")
        .order_by(Digest.sent_at.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def create_digest(session: Session, recipients: Sequence[str], subject: str) -> int:
    d = Digest(
        recipients=",".join(sorted(recipients)),
        recipients_key=recipients_key(recipients),
        subject=subject,
        status="pending",
    )
    session.add(d)
    session.flush()
    return d.id


def mark_digest_sent(
    session: Session, digest_id: int, story_ids: Iterable[int], message_id: str | None
) -> None:
    """Record delivery and its stories in one go: nothing is marked sent unless this commits."""
    d = session.get(Digest, digest_id)
    if d is None:
        raise LookupError(f"digest {digest_id} not found")
    d.status, d.sent_at, d.message_id = "sent", utcnow(), message_id
    held = {i.story_id for i in d.items}  # recorded when the message was handed over
    for sid in story_ids:
        if sid not in held:
            d.items.append(DigestItem(story_id=sid, recipients_key=d.recipients_key))


def mark_digest_unconfirmed(
    session: Session, digest_id: int, story_ids: Iterable[int], message_id: str | None
) -> bool:
    """The message's last line is about to go: from now on it may be delivered, so its
    stories count as sent (never mailed twice) until the server's reply says otherwise.
    False if the digest is no longer pending (another process took it for abandoned)."""
    d = session.get(Digest, digest_id)
    if d is None or d.status != "pending":
        return False
    d.status, d.message_id = "unconfirmed", message_id
    for sid in story_ids:
        d.items.append(DigestItem(story_id=sid, recipients_key=d.recipients_key))
    return True


def note_digest_error(session: Session, digest_id: int, error: str) -> None:
    d = session.get(Digest, digest_id)
    if d is not None:
        d.error = error


def mark_digest_failed(session: Session, digest_id: int, error: str) -> None:
    """Not delivered: its stories (if the handover had recorded them) are unsent again."""
    d = session.get(Digest, digest_id)
    if d is not None:
        d.status, d.error = "failed", error
        d.items.clear()


def first_digest_at(session: Session, recipients: Sequence[str]) -> datetime | None:
    """When the first digest (any status) for this recipient list was created."""
    stmt = select(func.min(Digest.created_at)).where(
        Digest.recipients_key == recipients_key(recipients)
    )
    return session.scalar(stmt)


def pending_digests(session: Session, recipients: Sequence[str]) -> list[Digest]:
    """Digests to this list not yet handed to the server (being sent, or abandoned)."""
    stmt = select(Digest).where(
        Digest.recipients_key == recipients_key(recipients), Digest.status == "pending"
    )
    return list(session.scalars(stmt.order_by(Digest.created_at)))


def mark_digest_written(session: Session, digest_id: int, message_id: str | None) -> None:
    """A digest written to a file: recorded for history, its stories not marked sent."""
    d = session.get(Digest, digest_id)
    if d is not None:
        d.status, d.message_id = "written", message_id

