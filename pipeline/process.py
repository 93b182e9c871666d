"""page → article → duplicate → topics → storage: decide first, then write once.

Each page is one transaction of three steps: storage says what it knows about the page
(`storage.page_path.load_known`: its page row, the articles at its URL and with its
text, the near-copy candidates sharing one of its LSH bands, their roots and stories),
`decide` — a pure function — turns that into an outcome and a plan of writes, and
storage applies the plan (`apply_plan`). Re-processing the same page changes nothing
(idempotent): the stored content hash short-circuits it.

The duplicate index lives in the database (`storage.duplicates`: LSH bands of the
originals first seen in the last INDEX_DAYS), so a crawl reads the candidates of the
pages it stores, never the whole window, and workers sharing a database see each
other's articles as soon as they commit.

Originals are stored with their story features but no story: `settle` places them
when the crawl ends (`pipeline.settle`), so stories do not depend on the order pages
arrived in. A copy of an article already placed joins its story at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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
from veille.storage import duplicates as dup_store
from veille.storage import pages as page_store
from veille.storage import story_pass as pass_store
from veille.storage import templates as tq
from veille.storage.db import Database
from veille.storage.page_path import (
    NEW,
    ArticleChange,
    Known,
    NewArticle,
    PageRecord,
    Plan,
    StoredArticle,
    StoryTouch,
    apply_plan,
    load_known,
)
from veille.storage.timestamps import as_utc, offset_minutes, utcnow

if TYPE_CHECKING:  # imported when the first article is stored: numpy, datasketch
    from veille.pipeline.prepare import Prepared

log = logging.getLogger(__name__)

OutcomeKind = Literal["new", "updated", "duplicate", "unchanged", "skipped"]
INDEX_DAYS = 30  # how far back (first seen) a stored original can be found as a copy's original
RETRIES = 3
RESTRIP_CHUNK = 500  # articles read (and written back) per transaction when stripping again
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
class Decision:
    """What to do with a page (`decide`): its outcome (`article_id` NEW for the article
    the plan inserts), the writes, and the original whose story may change (its words or
    date changed, or NEW: it takes over a copy's story; the story pass matches it again)."""

    outcome: Outcome
    plan: Plan = field(default_factory=Plan)
    changed: int | None = None


def _matches_json(matches: Sequence[TopicMatch]) -> list[tuple[str, float, list[dict[str, object]]]]:
    return [
        (m.topic, m.score, [{"term": h.term, "field": h.field, "count": h.count} for h in m.matched])
        for m in matches
    ]


def original_of(mine_republishes: bool, art: Article, root: StoredArticle, theirs_republishes: bool) -> bool:
    """Whether this page, a copy of another outlet's stored article, is its original.

    An aggregator (`republishes`) never is, and always yields to the outlet it copied;
    otherwise the newcomer must be dated more than a day earlier (dates without a time
    of day read as midnight, so a smaller gap proves nothing).
    """
    if mine_republishes != theirs_republishes:
        return theirs_republishes
    mine, theirs = as_utc(art.published), as_utc(root.published)
    return mine is not None and theirs is not None and theirs - mine > timedelta(days=1)


def decide(page: RawPage, prep: Prepared, known: Known, outlet_id: int, near: int | None,
           republishers: frozenset[str] | set[str]) -> Decision:
    """The outcome of storing `prep` (extracted from `page`) given what storage knows,
    and the writes it takes; `near` is the best near-copy among the candidates
    (`pipeline.dedup.best_copy`). Pure: the same inputs, the same decision."""
    from veille.pipeline.dedup import band_keys

    art, digest, topics = prep.article, prep.content_hash, prep.topics
    url = page.url

    if known.page_hash == digest and known.page_article is not None:  # this very page, processed before
        row = known.articles.get(known.page_article)
        return Decision(Outcome("unchanged", url, known.page_article, row.story_id if row else None, topics=topics))

    existing = known.by_url
    if existing is not None:  # the same URL again
        if existing.content_hash == digest and existing.title == art.title:
            plan = Plan(pages=[PageRecord(url, outlet_id, "article", existing.id, content_hash=digest)])
            return Decision(Outcome("unchanged", url, existing.id, existing.story_id, topics=topics), plan)
        d = Decision(Outcome("updated", url, existing.id, existing.story_id, topics=topics))
        _update(d, existing, prep, known)
        return d

    original = known.by_hash or (known.articles[near] if near is not None else None)
    if original is not None:
        root = known.articles[original.duplicate_of_id] if original.duplicate_of_id else original
        if root.outlet_id == outlet_id:  # the outlet's own update under another URL
            if root.content_hash == digest:
                plan = Plan(pages=[PageRecord(url, outlet_id, "duplicate", root.id, "same text", digest)])
                return Decision(Outcome("unchanged", url, root.id, root.story_id, topics=topics), plan)
            return _fold_update(page, prep, root, outlet_id, known)
        if original_of(page.outlet in republishers, art, root, root.outlet in republishers):
            # the original arrives after its copy: it becomes the article the story pass
            # reads, and the stored copy (with any copies of it) points to it
            plan = Plan(insert=_new_article(page, prep, outlet_id, root.story_id, None), copies_of=root.id,
                        topics=(NEW, _matches_json(prep.matches)),
                        pages=[PageRecord(url, outlet_id, "article", NEW, content_hash=digest)],
                        bands=(NEW, band_keys(prep.signature)), touch=_touch(known, root.story_id, art))
            return Decision(Outcome("new", url, NEW, root.story_id, "original of a copy stored earlier", topics),
                            plan, changed=NEW)  # placed in the copy's story: matched again
        plan = Plan(insert=_new_article(page, prep, outlet_id, root.story_id, root.id),
                    topics=(NEW, _matches_json(prep.matches)), pages=[PageRecord(url, outlet_id, "article", NEW, content_hash=digest)],
                    touch=_touch(known, root.story_id, art))
        return Decision(Outcome("duplicate", url, NEW, root.story_id, "copy of another outlet's article", topics), plan)

    plan = Plan(insert=_new_article(page, prep, outlet_id, None, None),
                topics=(NEW, _matches_json(prep.matches)), pages=[PageRecord(url, outlet_id, "article", NEW, content_hash=digest)],
                bands=(NEW, band_keys(prep.signature)))
    return Decision(Outcome("new", url, NEW, None, topics=topics), plan)


def _new_article(page: RawPage, prep: Prepared, outlet_id: int, story_id: int | None,
                 duplicate_of: int | None) -> NewArticle:
    art = prep.article
    return NewArticle(
        url=page.url, final_url=page.final_url, outlet_id=outlet_id, story_id=story_id,
        duplicate_of_id=duplicate_of, title=art.title, text=art.text, published=as_utc(art.published),
        published_offset=offset_minutes(art.published), author=art.author, site_name=art.site_name,
        language=art.language, content_hash=prep.content_hash, minhash=prep.signature_bytes,
        features=None if duplicate_of else list(prep.features),  # copies follow their original
    )


def _touch(known: Known, story_id: int | None, art: Article) -> StoryTouch | None:
    """Keep the story's title from its earliest article, and its last-seen time fresh."""
    if story_id is None or story_id not in known.stories:
        return None
    published, current = as_utc(art.published), as_utc(known.stories[story_id])
    if published is not None and (current is None or published < current):
        return StoryTouch(story_id, published, offset_minutes(art.published), art.title)
    return StoryTouch(story_id)


def _update(d: Decision, row: StoredArticle, prep: Prepared, known: Known) -> None:
    """The newest copy wins: text, title and date follow the latest version."""
    from veille.pipeline.dedup import band_keys

    art = prep.article
    values: dict[str, object] = {"title": art.title, "text": art.text, "content_hash": prep.content_hash,
                                 "minhash": prep.signature_bytes, "author": art.author or row.author,
                                 "updated_at": utcnow()}
    new, old = as_utc(art.published), as_utc(row.published)
    if new is not None and (old is None or new <= old):  # first publication, as the page states it
        values.update(published=new, published_offset=offset_minutes(art.published))
    if row.duplicate_of_id is None:  # its story may change with its words
        values["features"] = list(prep.features)
        d.changed = row.id
    d.plan.change = ArticleChange(row.id, values)
    d.plan.topics = (row.id, _matches_json(prep.matches))
    d.plan.bands = (row.id, band_keys(prep.signature))
    d.plan.touch = _touch(known, row.story_id, art)


def _fold_update(page: RawPage, prep: Prepared, root: StoredArticle, outlet_id: int, known: Known) -> Decision:
    """Two versions of one outlet's article under two URLs, met in either order.

    The newest text wins; the earliest-published URL stays the article's identity
    (the other becomes an alias page), so the result does not depend on crawl order.
    """
    art, digest = prep.article, prep.content_hash
    mine, theirs = as_utc(art.published), as_utc(root.published)
    if mine is not None and (theirs is None or mine < theirs):  # we are the original
        change = ArticleChange(root.id, {"url": page.url, "final_url": page.final_url, "published": mine,
                                         "published_offset": offset_minutes(art.published)}, new_version=False)
        plan = Plan(change=change, pages=[
            PageRecord(root.url, outlet_id, "duplicate", root.id, "later version of this article"),
            PageRecord(page.url, outlet_id, "article", root.id, content_hash=digest)])
        return Decision(Outcome("updated", page.url, root.id, root.story_id, "earlier URL of a stored article",
                                prep.topics), plan, changed=root.id)
    if mine and theirs and mine != theirs:
        newer = mine > theirs
    else:  # same day or undated: the longer version is the update
        newer = len(art.text) > root.text_length
    d = Decision(Outcome("updated", page.url, root.id, root.story_id, "same article, new URL", prep.topics))
    if newer:
        _update(d, root, prep, known)
    d.plan.pages.append(PageRecord(page.url, outlet_id, "duplicate", root.id, "update of an earlier URL", digest))
    return d


class Processor:
    """Stores what the crawler fetched. One per crawl process; not thread-safe."""

    def __init__(self, db: Database, cfg: Config, *, index_days: int = INDEX_DAYS) -> None:
        self.db = db
        self.topics: Sequence[TopicConfig] = cfg.topics
        self.language_hints = {o.name: o.language for o in cfg.outlets}
        self.outlet_urls = {o.name: o.url for o in cfg.outlets}
        self.republishers = frozenset(o.name for o in cfg.outlets if o.republishes)
        self._outlet_ids: dict[str, int] = {}
        self.index_since = datetime.now(UTC) - timedelta(days=index_days)  # the duplicate index's reach
        self._indexed = False  # the index checked for a database from before it existed
        self.changed: set[int] = set()  # originals whose text or date changed: their story may change
        self._last_settle = time.monotonic()
        self._stored_since_settle = 0  # articles stored (new or changed) since the last pass
        self._templates: dict[str, Evidence] = {}  # per outlet, loaded when first met (pipeline.learn)
        self._learnt: list[tuple[str, int]] = []  # (outlet, article id) stored since the last restrip

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
        from veille.pipeline.dedup import band_keys, best_copy

        with self.db.transaction() as s:
            outlet_id = self._outlet_id(s, page.outlet)
            if isinstance(extracted, Skipped):
                page_store.record_page(s, page.url, outlet_id, "skipped", reason=extracted.reason[:200])
                return Outcome("skipped", page.url, reason=extracted.reason)
            article_store.serialise_writers(s)
            if not self._indexed:
                self._index_window(s)
            bands = band_keys(extracted.signature)
            known = load_known(s, page.url, extracted.content_hash, bands, self.index_since)
            decision = decide(page, extracted, known, outlet_id, best_copy(extracted.signature, known.near),
                              self.republishers)
            new_id = apply_plan(s, decision.plan)
            outcome = decision.outcome
            if outcome.article_id == NEW:
                outcome = Outcome(outcome.kind, outcome.url, new_id, outcome.story_id, outcome.reason, outcome.topics)
            learnt = lines is not None and outcome.kind in {"new", "duplicate"}  # a page not counted yet
            if learnt and lines is not None:
                tq.record_lines(s, outlet_id, lines, utcnow())
        changed = new_id if decision.changed == NEW else decision.changed
        if changed is not None:
            self.changed.add(changed)
        if learnt and lines is not None and page.outlet in self._templates:
            self._templates[page.outlet].learn(lines, extracted.article.title)
            if outcome.article_id is not None:
                self._learnt.append((page.outlet, outcome.article_id))
        if outcome.kind in {"new", "updated"}:
            self._stored_since_settle += 1
        return outcome

    def _index_window(self, s: Session) -> None:
        """Index, once, the originals of the window that a database from before the
        duplicate index kept in storage has (schema 0007): a no-op ever after."""
        from veille.pipeline.dedup import band_keys, signature_from_bytes

        dup_store.replace_bands(s, {i: band_keys(signature_from_bytes(m))
                                    for i, m in dup_store.unindexed(s, self.index_since)})
        self._indexed = True

    def restrip(self) -> int:
        """Strip again, with all the run has taught, the articles stored before their
        outlet's evidence was complete, so what is stored does not depend on which pages
        came first; topics, features and signature follow. Returns the articles changed."""
        from veille.pipeline.dedup import band_keys
        from veille.pipeline.prepare import prepare

        learnt, self._learnt = self._learnt, []
        changed = 0
        for start in range(0, len(learnt), RESTRIP_CHUNK):
            chunk = learnt[start : start + RESTRIP_CHUNK]
            # before the transaction: a snapshot may read (or first load) the outlet's evidence
            templates = {outlet: self.template(outlet) for outlet, _ in chunk}
            with self.db.transaction() as s:
                rows = article_store.stored_texts(s, [i for _, i in chunk])
                for outlet, article_id in chunk:
                    row = rows.get(article_id)
                    if row is None or row.outlet != outlet:
                        continue
                    text, dropped = strip(row.title, row.text, templates[outlet])
                    if not dropped:
                        continue
                    prep = prepare(Article(row.url, outlet, row.title, text, row.published, row.author,
                                           row.site_name, row.language, row.final_url), self.topics)
                    original = row.duplicate_of_id is None
                    article_store.set_text(s, row.id, text, prep.content_hash, prep.signature_bytes,
                                           list(prep.features) if original else None, _matches_json(prep.matches))
                    dup_store.replace_bands(s, {row.id: band_keys(prep.signature)})
                    if original:
                        self.changed.add(row.id)
                    rows[article_id] = replace(row, text=text)  # met again: strip what is stored now
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
        (after stripping again what the run's evidence now shows to be template); the
        duplicate index drops what aged out of its window."""
        self.restrip()
        report = settle_stories(self.db, changed=self.changed)
        self.changed = set()
        self._last_settle = time.monotonic()
        self._stored_since_settle = 0
        with self.db.transaction() as s:
            dup_store.prune_bands(s, self.index_since)
        return report

    def settle_if_due(self, now: float | None = None) -> SettleReport | None:
        """During a long crawl, a story pass every SETTLE_EVERY seconds of storing, so
        stories show up while it runs (the pass at its end is the one that counts)."""
        now = time.monotonic() if now is None else now
        if self._stored_since_settle and now - self._last_settle >= SETTLE_EVERY:
            return self.settle()
        return None

    def _outlet_id(self, s: Session, name: str) -> int:
        if name not in self._outlet_ids:
            self._outlet_ids[name] = page_store.ensure_outlet(
                s, name, self.outlet_urls.get(name, ""), self.language_hints.get(name)
            )
        return self._outlet_ids[name]
