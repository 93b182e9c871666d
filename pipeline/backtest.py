"""Topic back-test: what a topic rule, as config.yaml has it now, would change in the archive.

Editing a rule is risky: a term added to catch one story may flag a hundred others, and a
term removed may lose stories nobody thinks of. `veille topics test` replays the stored
archive through the classifier and lists, per topic, the stories the rule would now ADD
or DROP compared with the matches stored when they were crawled, each with its reason.

A story is flagged for a topic when one of its originals is (copies repeat their
original). The stored title and text are exactly what the crawl classified — the outlet's
template already stripped, limits already cut — so with an unchanged rule the back-test
finds no change; whatever it reports comes from the edit (or from a change of the
classifier itself). Pure: archived stories in (`storage.archive`), a report out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from veille.pipeline.classify import Evaluation, evaluate
from veille.pipeline.config import TopicConfig
from veille.pipeline.normalize import phrase_pattern
from veille.storage.archive import ArchivedArticle, ArchivedStory, StoredMatch

ChangeKind = Literal["add", "drop"]
GROUP_PREVIEW = 4  # terms of a require group named in a reason


@dataclass(frozen=True)
class Change:
    """One story whose flag for one topic the rule, as it is now, would change."""

    topic: str
    kind: ChangeKind
    story_id: int
    title: str
    date: datetime
    article_id: int  # the original whose evaluation explains the change
    reason: str
    evaluation: Evaluation
    stored_score: float | None = None  # for a drop: that article's score when stored
    lost: tuple[str, ...] = ()  # for a drop: terms that counted when stored and no longer do

    def as_json(self) -> dict[str, Any]:
        ev = self.evaluation
        return {
            "topic": self.topic,
            "change": self.kind,
            "story_id": self.story_id,
            "date": self.date.isoformat(),
            "title": self.title,
            "article_id": self.article_id,
            "reason": self.reason,
            "score": ev.score,
            "min_score": ev.min_score,
            "stored_score": self.stored_score,
            "lost": list(self.lost),
            "matched": [{"term": h.term, "field": h.field, "count": h.count} for h in ev.matched],
            "missing_groups": [i + 1 for i in ev.missing_groups],  # numbered from 1, as in `reason`
            "vetoed_by": [{"term": h.term, "field": h.field, "count": h.count} for h in ev.vetoed_by],
        }


@dataclass(frozen=True)
class Tally:
    """A topic's counts over the stories tested."""

    topic: str
    added: int = 0
    dropped: int = 0
    kept: int = 0  # flagged when stored and still flagged


@dataclass(frozen=True)
class Backtest:
    """What the back-test found: counts per topic (config order) and every change."""

    stories: int  # stories tested
    tallies: tuple[Tally, ...]
    changes: tuple[Change, ...]  # per topic in config order, adds first, newest first


def backtest(stories: Iterable[ArchivedStory], topics: Sequence[TopicConfig]) -> Backtest:
    """Classify each story's originals with `topics` and compare with what was stored.

    Args:
        stories: the archive, story by story (consumed once; may be a stream).
        topics: the topic rules to test, as configured now.

    Returns:
        A Backtest: per topic, the stories it would add or drop, and how many it keeps.
    """
    counts = {t.name: [0, 0, 0] for t in topics}  # added, dropped, kept
    changes: list[Change] = []
    tested = 0
    for story in stories:
        tested += 1
        verdicts = [(art, evaluate(art.title, art.text, topics)) for art in story.articles]
        for i, topic in enumerate(topics):
            change = _compare(story, topic, [(art, evs[i]) for art, evs in verdicts])
            if change is None:
                flagged = any(topic.name in art.topics for art in story.articles)
                counts[topic.name][2] += flagged
            else:
                changes.append(change)
                counts[topic.name][0 if change.kind == "add" else 1] += 1
    order = {t.name: i for i, t in enumerate(topics)}
    changes.sort(key=lambda c: (order[c.topic], c.kind != "add", -c.date.timestamp(), -c.story_id))
    return Backtest(
        stories=tested,
        tallies=tuple(Tally(name, *n) for name, n in counts.items()),
        changes=tuple(changes),
    )


def _compare(story: ArchivedStory, topic: TopicConfig,
             verdicts: Sequence[tuple[ArchivedArticle, Evaluation]]) -> Change | None:
    """The change of one story's flag for one topic, if any, explained by its best article:
    for an add, the best-scoring original that now matches; for a drop, the best-scoring
    (now) of the originals that matched when stored."""
    now = [(art, ev) for art, ev in verdicts if ev.passed]
    before = [(art, ev) for art, ev in verdicts if topic.name in art.topics]
    if bool(now) == bool(before):
        return None
    kind: ChangeKind = "add" if now else "drop"
    art, ev = max(now or before, key=lambda pair: (pair[1].score, -pair[0].id))
    stored = art.topics.get(topic.name)
    lost = _lost(stored, ev)
    return Change(topic.name, kind, story.id, story.title, story.date, art.id,
                  _reason(ev, topic, stored, lost), ev, stored.score if stored else None, lost)


def _lost(stored: StoredMatch | None, ev: Evaluation) -> tuple[str, ...]:
    """Stored terms that count no more: removed from the rule, or masked by a new exclusion
    (compared as the classifier reads them, so a respelt term is not lost)."""
    if stored is None:
        return ()
    now = {phrase_pattern(h.term) for h in ev.matched}
    return tuple(t for t in stored.terms if phrase_pattern(t) not in now)


def _hits(ev: Evaluation) -> str:
    """'dgsn (title ×1, text ×2), police (text ×4)': each matched term once, with its fields."""
    fields: dict[str, list[str]] = {}
    for h in ev.matched:
        fields.setdefault(h.term, []).append(f"{h.field} ×{h.count}")
    return ", ".join(f"{term} ({', '.join(where)})" for term, where in fields.items()) or "no term"


def _reason(ev: Evaluation, topic: TopicConfig, stored: StoredMatch | None, lost: Sequence[str]) -> str:
    """One line: what matches now (an add), or what no longer does and which stored
    terms stopped counting (a drop)."""
    if ev.passed:
        return f"matches now, score {ev.score:g} ≥ {ev.min_score:g}: {_hits(ev)}"
    was = f" (was {stored.score:g})" if stored is not None else ""
    gone = f"; no longer counted: {', '.join(lost)}" if lost else ""
    if ev.vetoed_by:
        veto = ", ".join(f"{h.term} ({h.field})" for h in ev.vetoed_by)
        return f"excluded by {veto}; score {ev.score:g}{was}{gone}"
    if ev.missing_groups:
        groups = "; ".join(_group(topic, i) for i in ev.missing_groups)
        return f"no term of require group {groups}{gone}; found {_hits(ev)}"
    return f"score {ev.score:g}{was} below {ev.min_score:g}{gone}: {_hits(ev)}"


def _group(topic: TopicConfig, index: int) -> str:
    """'3/3 (sécurité, sécuritaire, …)': a require group named by number and first terms."""
    terms = topic.require[index]
    more = ", …" if len(terms) > GROUP_PREVIEW else ""
    return f"{index + 1}/{len(topic.require)} ({', '.join(terms[:GROUP_PREVIEW])}{more})"
