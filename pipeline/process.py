"""page → article → duplicate → topics → storage, one transaction per article.

The only stateful part of the pipeline: an in-memory index of near-duplicates rebuilt
from storage when a Processor starts, and updated only after a transaction commits, so
it never points at rows that were rolled back. Re-processing the same page changes
nothing (idempotent): the stored content hash short-circuits it.

Originals are stored with their story features but no story: `settle` places them
when the crawl ends (`pipeline.settle`), so stories do not depend on the order pages
arrived in. A copy of an article already placed joins its story at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from veille.pipeline.config import Config, TopicConfig
from veille.pipeline.learn import Evidence
from veille.pipeline.learn import load as load_evidence
from veille.pipeline.settle import SettleReport, settle_stories
from veille.pipeline.template import Template, line_fingerprints, strip, strip_article
from veille.pipeline.types import Article, RawPage, Skipped, TopicMatch
from veille.storage import articles as article_store
from veille.storage import pages as page_store
from veille.storage import story_pass as pass_store
from veille.storage import templates as tq
from veille.storage.db import Database
from veille.storage.models import Article as ArticleRow
from veille.storage.models import Story, as_utc, offset_minutes, utcnow

if TYPE_CHECKING:  # imported when the first article is stored: numpy, datasketch
    from veille.pipeline.dedup import DuplicateIndex, Signature
    from veille.pipeline.prepare import Prepared

log = logging.getLogger(__name__)

OutcomeKind = Literal["new", "updated", "duplicate", "unchanged", "skipped"]
INDEX_DAYS = 30  # how far back the duplicate index reaches when built
RETRIES = 3
SETTLE_EVERY = 300.0  # seconds between story passes while a crawl stores (pipeline.settle)


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    url: str
    article_id: int | None = None
    story_id: int | None = None
    reason: str | None = None
    topics: tuple[str, ...] = ()


@dataclass
class _IndexUpdates:
    """What to add to the in-memory indexes once the transaction has committed."""

    signatures: list[tuple[str, Signature]] = field(default_factory=list)
    learnt: tuple[frozenset[str], str] | None = None  # a page's lines and title, for its outlet's Evidence


def _matches_json(matches: Sequence[TopicMatch]) -> list[tuple[str, float, list[dict[str, object]]]]:
    return [
        (m.topic, m.score, [{"term": h.term, "field": h.field, "count": h.count} for h in m.matched])
        for m in matches
    ]




class Processor:
    """Stores what the crawler fetched. One per crawl process; not thread-safe."""

    def __init__(self, db: Database, cfg: Config, *, index_days: int = INDEX_DAYS) -> None:
        self.db = db
        self.topics: Sequence[TopicConfig] = cfg.topics
        self.language_hints = {o.name: o.language for o in cfg.outlets}
        self.outlet_urls = {o.name: o.url for o in cfg.outlets}
        self.republishers = {o.name for o in cfg.outlets if o.republishes}
        self._outlet_ids: dict[str, int] = {}
        self.index_days = index_days
        self.changed_since: datetime | None = None  # earliest date of a stored article whose story may change
        self._duplicates: DuplicateIndex | None = None  # built by the first article stored
        self._seen_article = 0
        self._last_settle = time.monotonic()
        self._stored_since_settle = 0  # articles stored (new or changed) since the last pass
        self._templates: dict[str, Evidence] = {}  # per outlet, loaded when first met (pipeline.learn)
        self._learnt: list[tuple[str, int]] = []  # (outlet, article id) stored since the last restrip
        # other processes may write the same database (workers, PostgreSQL); a SQLite
        # crawl holds the database's lock, so what it indexed itself is all there is
        self.shared = cfg.crawl.queue is not None or db.backend != "sqlite"

    @property
    def duplicates(self) -> DuplicateIndex:
        if self._duplicates is None:
            raise RuntimeError("the duplicate index is built by the first article stored")
        return self._duplicates

    def _refresh(self, s: Session) -> None:
        """Index what was stored since we last looked (cheap: by article id).

        The first call builds the index from the last `index_days` (a re-crawl that finds
        nothing new never pays for it). Runs under the writers' lock: a copy of another
        worker's article is recognised.
        """
        if self._duplicates is None:
            from veille.pipeline.dedup import DuplicateIndex

            self._duplicates = DuplicateIndex()
            since = datetime.now(UTC) - timedelta(days=self.index_days)
            self._seen_article = article_store.max_article_id(s)
            self._duplicates.add_many((str(i), sig) for i, sig in article_store.recent_signatures(s, since))
            return
        if not self.shared:
            return
        for i, sig in article_store.signatures_after(s, self._seen_article):
            self._duplicates.add(str(i), sig)
        self._seen_article = max(self._seen_article, article_store.max_article_id(s))

    # ------------------------------------------------------------ entry points

    def template(self, outlet: str) -> Template:
        """The outlet's template as its stored and stored-this-run pages tell it."""
        if outlet not in self._templates:
            self._templates[outlet] = load_evidence(self.db, outlet)
        return self._templates[outlet].snapshot()

    def process(self, page: RawPage) -> Outcome:
        """Extract and store one page (extraction in this process)."""
        from veille.pipeline.extract import (
            extract,  # trafilatura: only where pages are extracted here
        )

        return self.store(page, extract(page))

    def store(self, page: RawPage, extracted: Prepared | Article | Skipped,
              lines: frozenset[str] | None = None) -> Outcome:
        """Store an extraction made elsewhere (e.g. in a worker process), best prepared
        there too (`pipeline.prepare`), its outlet's template lines stripped before, and
        `lines` the fingerprints of its text as extracted (`pipeline.template`). An
        `Article` is stripped and prepared here.

        A unique-constraint race with another worker (same URL, same outlet) rolls the
        transaction back; the retry then finds the other worker's rows.
        """
        if isinstance(extracted, Article):
            from veille.pipeline.prepare import prepare

            lines = line_fingerprints(extracted.text)
            stripped, _ = strip_article(extracted, self.template(page.outlet))
            extracted = prepare(stripped, self.topics)
        if not isinstance(extracted, Skipped) and extracted.cut:  # by pipeline.limits
            log.warning("%s: %s", page.url, "; ".join(extracted.cut),
                        extra={"outlet": page.outlet, "url": page.url})
        for attempt in range(RETRIES):
            try:
                return self._store_once(page, extracted, lines)
            except IntegrityError:
                self._outlet_ids.clear()  # may name a row that was rolled back
                if attempt == RETRIES - 1:
                    raise
                log.info("write race on %s, retrying", page.url)
            except BaseException:
                self._outlet_ids.clear()
                raise
        raise AssertionError("unreachable")

    def _store_once(self, page: RawPage, extracted: Prepared | Skipped,
                    lines: frozenset[str] | None = None) -> Outcome:
        after = _IndexUpdates()
        with self.db.transaction() as s:
            outlet_id = self._outlet_id(s, page.outlet)
            if not isinstance(extracted, Skipped):
                article_store.serialise_writers(s)
                self._refresh(s)
            if isinstance(extracted, Skipped):
                page_store.record_page(s, page.url, outlet_id, "skipped", reason=extracted.reason[:200])
                outcome = Outcome("skipped", page.url, reason=extracted.reason)
            else:
                outcome = self._store_article(s, page, extracted, outlet_id, after)
                if lines is not None and outcome.kind in {"new", "duplicate"}:  # a page not counted yet
                    tq.record_lines(s, outlet_id, lines, utcnow())
                    after.learnt = (lines, extracted.article.title)
        for key, sig in after.signatures:  # only once committed
            self.duplicates.add(key, sig)
        if after.learnt is not None and page.outlet in self._templates:
            self._templates[page.outlet].learn(*after.learnt)
            if outcome.article_id is not None:
                self._learnt.append((page.outlet, outcome.article_id))
        if outcome.kind in {"new", "updated"}:
            self._stored_since_settle += 1
        return outcome

    def restrip(self) -> int:
        """Strip again, with all the run has taught, the articles stored before their
        outlet's evidence was complete, so what is stored does not depend on which pages
        came first; topics, features and signature follow. Returns the articles changed."""
        from veille.pipeline.prepare import prepare

        learnt, self._learnt = self._learnt, []
        changed = 0
        for outlet, article_id in learnt:
            template = self.template(outlet)
            after = _IndexUpdates()
            with self.db.transaction() as s:
                row = s.get(ArticleRow, article_id)
                if row is None or row.outlet.name != outlet:
                    continue
                text, dropped = strip(row.title, row.text, template)
                if not dropped:
                    continue
                prep = prepare(Article(row.url, outlet, row.title, text, row.published_stated, row.author,
                                       row.site_name, row.language, row.final_url), self.topics)
                row.text, row.content_hash, row.minhash = text, prep.content_hash, prep.signature_bytes
                if row.duplicate_of_id is None:
                    row.features = list(prep.features)
                    self._changed(row.published)
                article_store.replace_topic_matches(s, row, _matches_json(prep.matches))
                after.signatures.append((str(row.id), prep.signature))
            if self._duplicates is not None:  # not built when nothing was stored (CLI settle)
                for key, sig in after.signatures:
                    self._duplicates.add(key, sig)
            changed += 1
        return changed

    def restrip_unplaced(self) -> int:
        """Strip again every article still without a story, with its outlet's evidence as
        stored: what a crawl killed before its pass would have done (`veille stories
        --settle`). Returns the articles changed."""
        with self.db.transaction() as s:
            self._learnt.extend(pass_store.unplaced_articles(s))
        return self.restrip()

    def settle(self) -> SettleReport:
        """Place the articles stored without a story, and re-place those that changed
        (after stripping again what the run's evidence now shows to be template)."""
        self.restrip()
        report = settle_stories(self.db, self.changed_since)
        self.changed_since = None
        self._last_settle = time.monotonic()
        self._stored_since_settle = 0
        return report

    def settle_if_due(self, now: float | None = None) -> SettleReport | None:
        """During a long crawl, a story pass every SETTLE_EVERY seconds of storing, so
        stories show up while it runs (the pass at its end is the one that counts)."""
        now = time.monotonic() if now is None else now
        if self._stored_since_settle and now - self._last_settle >= SETTLE_EVERY:
            return self.settle()
        return None

    def _changed(self, published: datetime | None) -> None:
        when = as_utc(published)
        if when is not None and (self.changed_since is None or when < self.changed_since):
            self.changed_since = when

    # ------------------------------------------------------------ the steps

    def _outlet_id(self, s: Session, name: str) -> int:
        if name not in self._outlet_ids:
            self._outlet_ids[name] = page_store.ensure_outlet(
                s, name, self.outlet_urls.get(name, ""), self.language_hints.get(name)
            )
        return self._outlet_ids[name]

    def _store_article(
        self,
        s: Session,
        page: RawPage,
        prep: Prepared,
        outlet_id: int,
        after: _IndexUpdates,
    ) -> Outcome:
        art, digest, sig, topics = prep.article, prep.content_hash, prep.signature, prep.topics

        seen_hash, seen_article = page_store.page_content_hash(s, page.url)
        if seen_hash == digest and seen_article is not None:  # this very page, processed before
            row = s.get(ArticleRow, seen_article)
            return Outcome("unchanged", page.url, seen_article, row.story_id if row else None, topics=topics)

        existing = article_store.article_by_url(s, page.url)
        if existing is not None:  # the same URL again
            if existing.content_hash == digest and existing.title == art.title:
                page_store.record_page(s, page.url, outlet_id, "article", existing.id, content_hash=digest)
                return Outcome("unchanged", page.url, existing.id, existing.story_id, topics=topics)
            self._update(s, existing, prep, after)
            return Outcome("updated", page.url, existing.id, existing.story_id, topics=topics)

        original = article_store.article_by_hash(s, digest)
        if original is None:
            near = self.duplicates.find(sig)
            original = s.get(ArticleRow, int(near)) if near else None
        if original is not None:
            root = s.get(ArticleRow, original.duplicate_of_id) if original.duplicate_of_id else original
            assert root is not None
            if root.outlet_id == outlet_id:  # the outlet's own update under another URL
                if root.content_hash == digest:
                    page_store.record_page(s, page.url, outlet_id, "duplicate", root.id, "same text", content_hash=digest)
                    return Outcome("unchanged", page.url, root.id, root.story_id, topics=topics)
                return self._fold_update(s, page, prep, root, outlet_id, after)
            if self._original_of(page.outlet, art, root):
                return self._take_over(s, page, prep, root, outlet_id, after)
            row = self._insert(s, page, prep, outlet_id, root.story_id, root.id)
            page_store.record_page(s, page.url, outlet_id, "article", row.id, content_hash=digest)
            if root.story_id is not None:
                self._touch_story(s, root.story_id, art)
            return Outcome("duplicate", page.url, row.id, root.story_id, "copy of another outlet's article", topics)

        row = self._insert(s, page, prep, outlet_id, None, None)
        page_store.record_page(s, page.url, outlet_id, "article", row.id, content_hash=digest)
        after.signatures.append((str(row.id), sig))
        return Outcome("new", page.url, row.id, None, topics=topics)

    def _original_of(self, outlet: str, art: Article, root: ArticleRow) -> bool:
        """Whether this page, a copy of another outlet's stored article, is its original.

        An aggregator (`republishes`) never is, and always yields to the outlet it copied;
        otherwise the newcomer must be dated more than a day earlier (dates without a time
        of day read as midnight, so a smaller gap proves nothing).
        """
        mine_rep, theirs_rep = outlet in self.republishers, root.outlet.name in self.republishers
        if mine_rep != theirs_rep:
            return theirs_rep
        mine, theirs = as_utc(art.published), as_utc(root.published)
        return mine is not None and theirs is not None and theirs - mine > timedelta(days=1)

    def _take_over(
        self,
        s: Session,
        page: RawPage,
        prep: Prepared,
        root: ArticleRow,
        outlet_id: int,
        after: _IndexUpdates,
    ) -> Outcome:
        """The original arrives after its copy: it becomes the article the story pass
        reads, and the stored copy (with any copies of it) points to it."""
        row = self._insert(s, page, prep, outlet_id, root.story_id, None)
        article_store.make_copies_of(s, root.id, row.id)
        page_store.record_page(s, page.url, outlet_id, "article", row.id, content_hash=prep.content_hash)
        after.signatures.append((str(row.id), prep.signature))
        self._changed(row.published)
        if root.story_id is not None:
            self._touch_story(s, root.story_id, prep.article)
        return Outcome("new", page.url, row.id, root.story_id, "original of a copy stored earlier", prep.topics)

    def _fold_update(
        self,
        s: Session,
        page: RawPage,
        prep: Prepared,
        root: ArticleRow,
        outlet_id: int,
        after: _IndexUpdates,
    ) -> Outcome:
        """Two versions of one outlet's article under two URLs, met in either order.

        The newest text wins; the earliest-published URL stays the article's identity
        (the other becomes an alias page), so the result does not depend on crawl order.
        """
        art, digest = prep.article, prep.content_hash
        mine, theirs = as_utc(art.published), as_utc(root.published)
        if mine is not None and (theirs is None or mine < theirs):  # we are the original
            page_store.record_page(s, root.url, outlet_id, "duplicate", root.id, "later version of this article")
            self._changed(mine)
            root.url, root.final_url = page.url, page.final_url
            root.published, root.published_offset = mine, offset_minutes(art.published)
            s.flush()
            page_store.record_page(s, page.url, outlet_id, "article", root.id, content_hash=digest)
            return Outcome("updated", page.url, root.id, root.story_id, "earlier URL of a stored article", prep.topics)
        if mine and theirs and mine != theirs:
            newer = mine > theirs
        else:  # same day or undated: the longer version is the update
            newer = len(art.text) > len(root.text)
        if newer:
            self._update(s, root, prep, after)
        page_store.record_page(s, page.url, outlet_id, "duplicate", root.id, "update of an earlier URL", content_hash=digest)
        return Outcome("updated", page.url, root.id, root.story_id, "same article, new URL", prep.topics)

    def _insert(
        self,
        s: Session,
        page: RawPage,
        prep: Prepared,
        outlet_id: int,
        story_id: int | None,
        duplicate_of: int | None,
    ) -> ArticleRow:
        art = prep.article
        row = ArticleRow(
            url=page.url,
            final_url=page.final_url,
            outlet_id=outlet_id,
            story_id=story_id,
            duplicate_of_id=duplicate_of,
            title=art.title,
            text=art.text,
            published=as_utc(art.published),
            published_offset=offset_minutes(art.published),
            author=art.author,
            site_name=art.site_name,
            language=art.language,
            content_hash=prep.content_hash,
            minhash=prep.signature_bytes,
            features=None if duplicate_of else list(prep.features),  # copies follow their original
            topics=article_store.topic_match_rows(_matches_json(prep.matches)),  # a new row: nothing to replace
        )
        s.add(row)
        s.flush()
        return row

    def _update(
        self,
        s: Session,
        row: ArticleRow,
        prep: Prepared,
        after: _IndexUpdates,
    ) -> None:
        """The newest copy wins: text, title and date follow the latest version."""
        art = prep.article
        row.title, row.text, row.content_hash = art.title, art.text, prep.content_hash
        row.minhash = prep.signature_bytes
        new, old = as_utc(art.published), as_utc(row.published)
        if new is not None and (old is None or new <= old):  # first publication, as the page states it
            row.published, row.published_offset = new, offset_minutes(art.published)
        row.author = art.author or row.author
        row.updated_at = utcnow()
        row.versions += 1
        if row.duplicate_of_id is None:  # its story may change with its words
            row.features = list(prep.features)
            self._changed(row.published)
        article_store.replace_topic_matches(s, row, _matches_json(prep.matches))
        after.signatures.append((str(row.id), prep.signature))
        if row.story_id is not None:
            self._touch_story(s, row.story_id, art)

    @staticmethod
    def _touch_story(s: Session, story_id: int, art: Article) -> None:
        """Keep the story's title from its earliest article, and its last-seen time fresh."""
        story = s.get(Story, story_id)
        if story is None:
            return
        story.last_seen = utcnow()
        published = as_utc(art.published)
        if published is not None and (story.published is None or published < as_utc(story.published)):
            story.published, story.published_offset = published, offset_minutes(art.published)
            story.title = art.title
