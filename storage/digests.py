"""Digests: what was mailed to which recipient list, and the stories not yet mailed.

Callers own the transaction (`Database.transaction()`); nothing here commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, aliased

from veille.storage.models import Article, Digest, DigestArticle, DigestItem, Story, TopicMatchRow
from veille.storage.timestamps import as_utc, utcnow

_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True)
class Unmailed:
    """A story mailed to a recipient list, and its articles that list has not had."""

    story_id: int
    first_mailed: datetime  # when the story was first mailed to the list
    article_ids: tuple[int, ...]


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    items = sorted(set(ids))
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _flagged(topics: Sequence[str], story_id: Any) -> Any:
    """Whether the story `story_id` (a column) has an article flagged for one of `topics`:
    tested per story (`ix_articles_story_id`, the unique (article_id, topic)), where a
    list of every flagged story read each topic match of the archive."""
    member = aliased(Article)  # its own FROM, also where the outer query reads articles
    return (
        select(member.id)
        .join(TopicMatchRow, TopicMatchRow.article_id == member.id)
        .where(member.story_id == story_id, TopicMatchRow.topic.in_(list(topics)))
        .correlate_except(member, TopicMatchRow)
        .exists()
    )


def recipients_key(recipients: Iterable[str]) -> str:
    joined = ",".join(sorted({r.strip().lower() for r in recipients}))
    return hashlib.sha256(joined.encode()).hexdigest()


def unsent_story_ids(
    session: Session,
    topics: Sequence[str],
    recipients: Sequence[str],
    since: datetime | None,
    *,
    active_since: datetime | None = None,
    among: Collection[int] | None = None,
) -> list[int]:
    """Tracked stories never in a sent digest for this recipient list, first seen since
    `since`; with `active_since`, only those with an article stored or updated since then
    (`ix_articles_updated_at`: the stories a digest can have missed are those that changed
    since the last one); with `among`, only these ids. Give one of `since`/`active_since`
    a recent time, or `among`: none of them reads every story of the archive."""
    key = recipients_key(recipients)
    # NOT EXISTS per story reads the unique (story_id, recipients_key) index; NOT IN over
    # the list's items made SQLite build a temporary index of them on every digest.
    sent = (select(DigestItem.id)
            .where(DigestItem.story_id == Story.id, DigestItem.recipients_key == key)
            .exists())
    stmt = select(Story.id).where(_flagged(topics, Story.id), ~sent)
    if since is not None:
        stmt = stmt.where(Story.first_seen >= since)
    if active_since is not None:
        stmt = stmt.where(Story.id.in_(select(Article.story_id).where(Article.updated_at >= active_since)))
    if among is None:
        return list(session.scalars(stmt))
    return [i for chunk in _chunks(among) for i in session.scalars(stmt.where(Story.id.in_(chunk)))]


def unmailed_articles(
    session: Session, topics: Sequence[str], recipients: Sequence[str], mailed_since: datetime
) -> list[Unmailed]:
    """Developing stories: mailed to this recipient list since `mailed_since` (first
    mailed, sent or unconfirmed), still flagged for one of `topics`, with the articles,
    copies included, that list was never mailed; stories with none are left out."""
    key = recipients_key(recipients)
    first_mailed = func.coalesce(Digest.sent_at, Digest.created_at)
    mailed = (
        select(DigestItem.story_id, first_mailed.label("first_mailed"))
        .join(Digest, Digest.id == DigestItem.digest_id)
        # from the list's digests (`ix_digests_key_status_sent`, `ix_digest_items_digest_id`):
        # the stories mailed lately, not every article of the archive
        .where(Digest.recipients_key == key, DigestItem.recipients_key == key, first_mailed >= mailed_since)
        .subquery()
    )
    had = (
        select(DigestArticle.id)
        .where(DigestArticle.article_id == Article.id, DigestArticle.recipients_key == key)
        .exists()
    )
    stmt = (
        select(Article.story_id, mailed.c.first_mailed, Article.id)
        .join(mailed, mailed.c.story_id == Article.story_id)
        .where(_flagged(topics, mailed.c.story_id), ~had)
        .order_by(Article.story_id, Article.id)
    )
    found: dict[int, tuple[datetime, list[int]]] = {}
    for story_id, when, article_id in session.execute(stmt):
        found.setdefault(story_id, (as_utc(when), []))[1].append(article_id)
    return [Unmailed(sid, when, tuple(ids)) for sid, (when, ids) in found.items()]


def mailed_articles(session: Session, recipients: Sequence[str], article_ids: Iterable[int]) -> set[int]:
    """Those of `article_ids` already mailed to this recipient list."""
    return _mailed(session, recipients_key(recipients), article_ids)


def _mailed(session: Session, key: str, article_ids: Iterable[int]) -> set[int]:
    out: set[int] = set()
    for chunk in _chunks(article_ids):
        stmt = select(DigestArticle.article_id).where(
            DigestArticle.recipients_key == key, DigestArticle.article_id.in_(chunk)
        )
        out.update(session.scalars(stmt))
    return out


def _record_articles(
    session: Session, d: Digest, story_ids: Iterable[int], carried: Mapping[int, Collection[int]] | None
) -> None:
    """One row per article the digest carried (story id → article ids; by default every
    article `story_ids` hold now) that its list was not mailed before: an article mailed
    in a story since merged into another, or recorded at the handover, is not added twice."""
    if carried is None:
        held: dict[int, list[int]] = {sid: [] for sid in story_ids}
        for chunk in _chunks(held):
            rows = session.execute(select(Article.story_id, Article.id).where(Article.story_id.in_(chunk)))
            for sid, aid in rows:
                if sid is not None:  # never: the rows are those of `held`'s stories
                    held[sid].append(aid)
        carried = held
    story_of = {aid: sid for sid, aids in carried.items() for aid in aids}
    had = _mailed(session, d.recipients_key, story_of)
    for aid in sorted(set(story_of) - had):
        session.add(DigestArticle(digest_id=d.id, article_id=aid, story_id=story_of[aid],
                                  recipients_key=d.recipients_key))


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
    session: Session,
    digest_id: int,
    story_ids: Iterable[int],
    message_id: str | None,
    carried: Mapping[int, Collection[int]] | None = None,
) -> None:
    """Record delivery, its new stories and the articles it carried in one go (`carried`:
    story id → article ids, developing stories included; by default every article of
    `story_ids`): nothing is marked sent unless this commits."""
    d = session.get(Digest, digest_id)
    if d is None:
        raise LookupError(f"digest {digest_id} not found")
    d.status, d.sent_at, d.message_id = "sent", utcnow(), message_id
    held = {i.story_id for i in d.items}  # recorded when the message was handed over
    story_ids = list(story_ids)
    for sid in story_ids:
        if sid not in held:
            d.items.append(DigestItem(story_id=sid, recipients_key=d.recipients_key))
    _record_articles(session, d, story_ids, carried)


def mark_digest_unconfirmed(
    session: Session,
    digest_id: int,
    story_ids: Iterable[int],
    message_id: str | None,
    carried: Mapping[int, Collection[int]] | None = None,
) -> bool:
    """The message's last line is about to go: from now on it may be delivered, so its
    stories and the articles it carried (as in `mark_digest_sent`) count as sent (never
    mailed twice) until the server's reply says otherwise.
    False if the digest is no longer pending (another process took it for abandoned)."""
    d = session.get(Digest, digest_id)
    if d is None or d.status != "pending":
        return False
    d.status, d.message_id = "unconfirmed", message_id
    story_ids = list(story_ids)
    for sid in story_ids:
        d.items.append(DigestItem(story_id=sid, recipients_key=d.recipients_key))
    _record_articles(session, d, story_ids, carried)
    return True


def note_digest_error(session: Session, digest_id: int, error: str) -> None:
    d = session.get(Digest, digest_id)
    if d is not None:
        d.error = error


def mark_digest_failed(session: Session, digest_id: int, error: str) -> None:
    """Not delivered: its stories and articles (if the handover had recorded them) are
    unsent again."""
    d = session.get(Digest, digest_id)
    if d is not None:
        d.status, d.error = "failed", error
        d.items.clear()
        session.execute(delete(DigestArticle).where(DigestArticle.digest_id == digest_id))


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
    """A digest written to a file: recorded for history; neither its stories nor its
    articles are marked sent (a file is not a delivery: the next digest mails them)."""
    d = session.get(Digest, digest_id)
    if d is not None:
        d.status, d.message_id = "written", message_id

