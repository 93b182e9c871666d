"""The story pass: which story each stored article belongs to.

Articles are stored without a story (`pipeline.process`); this pass places them, at the
end of every crawl and of every worker (`Processor.settle`; every SETTLE_EVERY seconds
too while a long crawl stores), or by hand (`veille
stories --settle`). It reads every original published since the earliest one not
yet placed (or changed), with the stories born in the `DF_DAYS` before as
context, and runs `pipeline.stories.assign_stories` over them in (published, URL)
order. Assignment is therefore a function of the articles, not of the order they
were fetched in nor of which worker fetched them: two workers sharing a queue end with
the stories one process would have made.

Of the articles an earlier pass placed, only those a change can reach are matched
again (`Placed.kept`): whose story changed in this pass, or that a changed story
would now accept. The others keep their story, so a routine crawl's pass costs its
new articles and what they touch, not the days of archive since the oldest of them.
The one thing this does not follow is the IDF's drift: a late report counts one more
story in the 30 days after it, which could tip a close decision it does not otherwise
touch. So a pass whose new articles are many next to the stories the IDF counts (more
than DRIFT_SHARE of them: a young archive, a first crawl of many outlets) matches
everything since its start again, as a pass with `since` does; a routine pass over a
settled archive moves the IDF by a fraction of that, and leaves such a decision as it
was (`--settle-since` matches everything again). Drift that builds up over many small
passes (the stories counted grow through an archive's first month) is not followed:
that needs the IDF base each decision was made with, which is not stored. With the
IDF held still, routine passes group articles exactly as passes matching everything
again (tests/integration/test_story_context.py).

What was mailed stays put: articles of a story already in a sent digest keep it (new
articles can still join it). Other stories may gain, lose or exchange articles as
earlier-published reports arrive; a story keeps its id while it keeps its first
article, and a story left empty is deleted. Copies (duplicate_of) follow their original.

Runs in one transaction under the writers' lock (PostgreSQL), so concurrent workers'
stores wait for it and then see its result.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from veille.pipeline.stories import (
    DF_DAYS,
    MAX_STORY_FEATURES,
    MIN_IDF_STORIES,
    NEW,
    WINDOW_DAYS,
    Placed,
    article_features,
    assign_stories,
)
from veille.pipeline.story_rules import pin_moves, stories_to_delete, story_fields
from veille.storage import articles as article_store
from veille.storage import story_pass as pass_store
from veille.storage.db import Database
from veille.storage.timestamps import as_utc

log = logging.getLogger(__name__)

REOPEN_MAX = 20_000  # placed articles one pass may re-examine (~40 s of matching)
DRIFT_SHARE = 0.05  # new articles beyond this share of the stories counted: match all again


@dataclass
class SettleReport:
    """What one pass did, for the log and `veille stories --settle` (counted as it goes)."""

    start: datetime | None  # earliest publication re-examined (None: nothing to place)
    examined: int = 0  # articles the pass could move
    rematched: int = 0  # of which it matched again (the others kept their story untouched)
    placed: int = 0  # of which had no story yet
    drifted: bool = False  # the new articles moved the IDF enough to match everything again
    moved: int = 0  # of which changed story
    created: int = 0
    removed: int = 0

    def __str__(self) -> str:
        if self.start is None:
            return "stories: nothing to place"
        return (f"stories: {self.examined} articles published since {self.start:%Y-%m-%d} "
                f"examined, {self.rematched} matched again, {self.placed} placed, {self.moved - self.placed} moved, "
                f"{self.created} stories opened, {self.removed} removed"
                + (" (all matched again: many new articles for the stories known)" if self.drifted else ""))


def settle_stories(db: Database, since: datetime | None = None, *, changed: Collection[int] = (),
                   reopen_max: int = REOPEN_MAX) -> SettleReport:
    """Place every article not in a story yet, and match again the `changed` ones (ids
    of originals whose text or date changed) and every one published since `since`.
    One transaction.

    At most `reopen_max` placed articles are re-examined: an article that turns up with
    an old date (an evergreen page in a feed) is placed among the stories of its own
    days, which stay as they are, instead of reopening every story since then.
    """
    with db.transaction() as s:
        article_store.serialise_writers(s)
        return _settle(s, since, set(changed), reopen_max)


def _settle(s: Session, since: datetime | None, changed: set[int], reopen_max: int) -> SettleReport:
    report = SettleReport(None)
    lone = pass_store.unplaced_undated(s)  # no date, no window: a story each
    undated = {row.id: pass_store.new_story(s) for row in lone}
    pass_store.move_articles(s, undated)
    _compute_features(s, [row.id for row in lone if row.features is None])
    report.placed = report.moved = report.created = len(undated)
    touched = set(undated.values())
    starts = [as_utc(d) for d in (since, pass_store.earliest_unplaced(s), pass_store.earliest_of(s, changed))
              if d is not None]
    start = min(starts) if starts else None
    if start is not None:
        cap = pass_store.reopen_horizon(s, start, reopen_max)
        if cap is not None:  # too much to reopen: the late old articles on their own first
            old = pass_store.unplaced_before(s, cap)
            window = timedelta(days=DF_DAYS)
            reach = timedelta(days=WINDOW_DAYS + 1)
            rows = pass_store.rows_around(s, [(as_utc(d) - window, as_utc(d) + reach) for d in old])
            touched |= _place(s, rows, lambda r: r.story_id is not None, report)
            start = cap
        rows, counted = _context(s, start, touched)
        sent = pass_store.sent_story_ids(s, {r.story_id for r in rows if r.story_id is not None})
        report.drifted = idf_drifts(rows, counted, changed)
        first, again = start, (start if report.drifted else as_utc(since))

        def fixed(r: pass_store.PassRow) -> bool:
            assert r.published is not None
            return r.story_id is not None and (as_utc(r.published) < first or r.story_id in sent)

        def kept(r: pass_store.PassRow) -> bool:
            assert r.published is not None
            return (r.story_id is not None and r.id not in changed
                    and (again is None or as_utc(r.published) < again))

        touched |= _place(s, rows, fixed, report, counted, kept)
    report.removed = refresh_stories(s, touched, MAX_STORY_FEATURES)
    report.start = start
    if start is not None:
        log.info("%s", report)
    return report


def idf_drifts(rows: list[pass_store.PassRow], counted: list[tuple[str, list[str], datetime]],
               changed: Collection[int]) -> bool:
    """Whether the articles a pass places or changes are more than DRIFT_SHARE of the
    stories its IDF counts (at least MIN_IDF_STORIES, as the IDF itself): then every
    weight moves by about that share, enough to tip a decision no change reaches."""
    known = len(counted) + len({r.story_id for r in rows if r.story_id is not None})
    new = sum(1 for r in rows if r.story_id is None) + len(changed)
    return new > DRIFT_SHARE * max(known, MIN_IDF_STORIES)


def _context(s: Session, start: datetime, changed: set[int]) -> tuple[
        list[pass_store.PassRow], list[tuple[str, list[str], datetime]]]:
    """What a pass from `start` reads: the originals published since (free, unless
    mailed) and the context before, as `assign_stories` needs it.

    The context is the stories born in the DF_DAYS before `start` (an older one is out
    of the IDF and, as before, not read). Only those that can still be matched — an
    original published within the window before `start`, or one among the free
    articles — are read article by article; the others weigh in the IDF only, read
    from the story rows the last pass wrote (their articles cannot have changed since:
    any change sets the pass's start at or before the article changed; `changed` are
    the stories this pass moved articles in already, read from their articles too). So
    a pass reads the days it can change and one row per older story, not 30 days of
    articles.
    """
    context_from = start - timedelta(days=DF_DAYS)
    free = pass_store.dated_since(s, start)
    near = pass_store.stories_published_between(s, start - timedelta(days=WINDOW_DAYS + 1), start)
    near |= {r.story_id for r in free if r.story_id is not None} | changed
    recent = [i for i, born in pass_store.births(s, near).items()
              if born is not None and as_utc(born) >= context_from]
    rows = free + pass_store.story_rows(s, recent, context_from, start)
    counted = [(str(i), features, as_utc(born)) for i, features, born
               in pass_store.stories_born_between(s, context_from, start) if i not in near]
    return rows, counted


def refresh_stories(s: Session, story_ids: Iterable[int], max_features: int) -> int:
    """Recompute title, dates and features of stories from their articles
    (`story_rules.story_fields`); delete the ones left empty, never a mailed one.
    Returns how many were deleted."""
    members = pass_store.story_members(s, story_ids)
    pass_store.write_story_fields(s, {i: story_fields(rows, max_features) for i, rows in members.items() if rows})
    empty = [i for i, rows in members.items() if not rows]
    gone = stories_to_delete(empty, pass_store.sent_story_ids(s, empty))
    pass_store.delete_stories(s, gone)
    return len(gone)


def pin_mailed(s: Session, mailed: dict[int, list[str]], max_features: int) -> int:
    """Put back in its mailed story every article (by URL) a story pass moved out of it
    while the digest was being sent: what is recorded as sent is what was mailed.
    A story the pass deleted meanwhile comes back under its id. Returns the articles moved."""
    placed: dict[int, list[tuple[int, int | None]]] = {}
    for story_id, urls in mailed.items():
        pass_store.ensure_story(s, story_id)
        placed[story_id] = pass_store.originals_at(s, urls)
    moves, left = pin_moves(placed)
    if moves:
        pass_store.move_articles(s, moves)
        refresh_stories(s, left | set(moves.values()), max_features)
    return len(moves)


def _place(s: Session, rows: list[pass_store.PassRow], fixed: Callable[[pass_store.PassRow], bool],
           report: SettleReport, counted: list[tuple[str, list[str], datetime]] | None = None,
           kept: Callable[[pass_store.PassRow], bool] = lambda r: False) -> set[int]:
    """One pass over `rows` (dated originals); the fixed ones keep their story, the
    kept ones unless a change reaches them, and `counted` stories weigh in the IDF
    only. Moves the others where `assign_stories` puts them; returns the stories to
    refresh."""
    features = {r.id: r.features for r in rows if r.features is not None}
    features.update(_compute_features(s, [r.id for r in rows if r.features is None]))
    placed = [
        Placed(r.url, features[r.id], as_utc(r.published), None if r.story_id is None else str(r.story_id),
               fixed(r), kept(r))
        for r in rows
        if r.published is not None
    ]
    tally: Counter[str] = Counter()
    assignment = assign_stories(placed, counted=counted or (), tally=tally)
    free = [r for r in rows if not fixed(r)]
    free.sort(key=lambda r: (as_utc(r.published), r.url))

    # A NEW story takes the id of the story its first article headed before the pass;
    # failing that, of any member's story no one else keeps; failing that, a new row.
    claimed = {int(k) for k in assignment.values() if not k.startswith(NEW)}
    target: dict[str, int] = {k: int(k) for k in assignment.values() if not k.startswith(NEW)}
    members: defaultdict[str, list[pass_store.PassRow]] = defaultdict(list)
    heads: dict[int, int] = {}  # story id -> its earliest free article, before the pass
    for r in free:
        members[assignment[r.url]].append(r)
        if r.story_id is not None:
            heads.setdefault(r.story_id, r.id)
    fresh = [k for k in members if k.startswith(NEW)]  # in order of first member
    for prefer_heads in (True, False):
        for key in fresh:
            if key in target:
                continue
            reuse = next((r.story_id for r in members[key]
                          if r.story_id is not None and r.story_id not in claimed
                          and (not prefer_heads or heads[r.story_id] == r.id)), None)
            if reuse is not None:
                claimed.add(reuse)
                target[key] = reuse
    for key in fresh:
        if key not in target:
            target[key] = pass_store.new_story(s)
            report.created += 1
    moves = {r.id: target[assignment[r.url]] for r in free if target[assignment[r.url]] != r.story_id}
    pass_store.move_articles(s, moves)
    report.examined += len(free)
    report.rematched += tally["rematched"]
    report.placed += sum(1 for r in free if r.story_id is None)
    report.moved += len(moves)
    # stories to refresh: those an article left or joined, and those of the articles
    # placed or changed; a kept article that stayed leaves its story as it was
    seeds = {r.story_id for r in free if r.story_id is not None and (r.id in moves or not kept(r))}
    return seeds | set(moves.values()) | {target[assignment[r.url]] for r in free if not kept(r)}


def _compute_features(s: Session, ids: list[int]) -> dict[int, list[str]]:
    """Features of articles stored before they were kept (schema 0001), saved on the way."""
    if not ids:
        return {}
    out = {i: article_features(title, text, lang) for i, title, text, lang in pass_store.article_texts(s, ids)}
    pass_store.save_features(s, out)
    return out
