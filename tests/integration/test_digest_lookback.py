"""The digest's look-back once a digest was sent: the stories that changed since it.

After a sent digest, the next reads only the stories with an article stored or updated
since it (less `digest.developing_days`), not every story since the list's first digest
(app.digest, storage.digests.unsent_story_ids): an old story that a flagged article joins
later still comes; one untouched since before that window is not read at all. SQLite and
PostgreSQL (the `db` fixture); digests recorded through storage, no SMTP.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from tests.integration.test_digest import TO, TOPIC, TRACKED, add_story, make_config
from veille.digest import build_digest
from veille.storage import digests as digest_store
from veille.storage import pages as page_store
from veille.storage.db import Database
from veille.storage.models import Article, Digest, TopicMatchRow


def _age(db: Database, story_id: int, when: datetime) -> None:
    """The story's articles were stored, and last updated, at `when`."""
    with db.transaction() as s:
        s.execute(update(Article).where(Article.story_id == story_id)
                  .values(first_seen=when, updated_at=when))


def test_after_a_sent_digest_only_the_stories_that_changed_since_are_read(db: Database) -> None:
    now = datetime.now(UTC)
    cfg = make_config(db.url, 25)  # never sends: build_digest only
    joined = add_story(db, dict(TRACKED[0], articles=TRACKED[0]["articles"][:1]), topic=None,
                       first_seen=now - timedelta(days=20))
    untouched = add_story(db, dict(TRACKED[1], articles=TRACKED[1]["articles"][:1]),
                          first_seen=now - timedelta(days=20))
    _age(db, joined, now - timedelta(days=20))
    _age(db, untouched, now - timedelta(days=20))
    with db.transaction() as s:  # the list's first digest, a month ago; the last, ten days ago
        first = digest_store.create_digest(s, TO, "il y a un mois")
        digest_store.mark_digest_sent(s, first, [], "<first@example.org>")
        last = digest_store.create_digest(s, TO, "il y a dix jours")
        digest_store.mark_digest_sent(s, last, [], "<last@example.org>")
        s.execute(update(Digest).where(Digest.id == first)
                  .values(created_at=now - timedelta(days=30), sent_at=now - timedelta(days=30)))
        s.execute(update(Digest).where(Digest.id == last)
                  .values(created_at=now - timedelta(days=10), sent_at=now - timedelta(days=10)))
    with db.transaction() as s:  # a flagged article joins the old, untracked story now
        oid = page_store.ensure_outlet(s, "bladi", "https://bladi.example/", "fr")
        s.add(Article(url="https://www.bladi.net/suite,1.html", outlet_id=oid, story_id=joined,
                      title="La suite", text=TRACKED[0]["text"], language="fr", content_hash="suite",
                      published=now, topics=[TopicMatchRow(topic=TOPIC, score=5.0, matched=[])]))
    fresh = add_story(db, TRACKED[2])  # first seen hours ago

    draft = build_digest(db, cfg, now=now)
    assert sorted(draft.story_ids) == sorted([joined, fresh])

    # the untouched story is tracked and unsent: `--since` reaches it, as before
    assert untouched in build_digest(db, cfg, since=now - timedelta(days=25), now=now).story_ids
    # and without a sent digest, the look-back is the list's first digest's, as before
    with db.transaction() as s:
        s.execute(update(Digest).values(status="written"))
    assert untouched in build_digest(db, cfg, now=now).story_ids
