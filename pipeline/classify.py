"""Topic rules from config.yaml applied to one article, with the reasons kept.

A topic matches an article when

1. every ``require`` group has at least one term in the title or the text;
2. no ``exclude`` term is in the title or in the lead (the first ``LEAD_TOKENS``
   words of the text) — see "Exclude" below;
3. the score reaches ``min_score``.

Score: for each distinct configured term of the ``require`` groups and of ``boost``,
``min(count, COUNT_CAP) × weight`` per field, where the weight of a body hit is 1 and
of a title hit ``title_weight`` (3 by default); a ``boost`` term's weight is
multiplied by ``BOOST_FACTOR``. The cap keeps one word repeated ten times from
outweighing five different pieces of evidence. Overlapping terms count separately
("coopération sécuritaire" also counts as "sécuritaire" when both are configured).

Terms are matched on whole normalised tokens (``pipeline.normalize``): case, French
accents, Arabic letter variants, diacritics and the article with its proclitics are
folded ("Sécurité" = "securite", "الأمن" = "والامن"); a term of several words matches
the same words in sequence. Inflections are not folded: list "marocain" and
"marocaines" if both should count.

Exclude. An exclude term names another subject ("Conseil de sécurité", "sécurité
alimentaire", "Lions de l'Atlas"). In the title or the lead it vetoes the topic: that
is where a news article says what it is about. Further down the body it does not
veto — news pieces mention other subjects in passing ("... after the 2022 World
Cup"), and a veto there would lose on-topic stories, which for a watch is worse than
an extra one — but its words stop counting as evidence: "sécurité" inside "Conseil de
sécurité" is no hit for "sécurité", anywhere in the article.

Every matched term is kept in the ``TopicMatch`` with its field and count, so a user
can see why a story was flagged; ``evaluate`` also says why a topic did *not* match.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from veille.pipeline.config import TopicConfig
from veille.pipeline.normalize import Phrase, TokenIndex, phrase_pattern, tokens
from veille.pipeline.types import Field, TermHit, TopicMatch

COUNT_CAP = 3
BOOST_FACTOR = 2.0
LEAD_TOKENS = 50


@dataclass(frozen=True)
class Evaluation:
    """The full verdict of one topic on one article, including why it failed."""

    topic: str
    passed: bool
    score: float
    matched: tuple[TermHit, ...]
    missing_groups: tuple[int, ...] = ()  # indexes of require groups with no hit
    vetoed_by: tuple[TermHit, ...] = ()  # exclude terms found in the title or the lead
    min_score: float = 0.0

    def as_match(self) -> TopicMatch | None:
        return TopicMatch(self.topic, self.score, self.matched) if self.passed else None

    def reason(self) -> str:
        """One line for humans: why it matched or not."""
        hits = ", ".join(f"{h.term} ({h.field} ×{h.count})" for h in self.matched) or "no term"
        if self.vetoed_by:
            veto = ", ".join(f"{h.term} ({h.field})" for h in self.vetoed_by)
            return f"{self.topic}: excluded by {veto}"
        if self.missing_groups:
            groups = ", ".join(str(i) for i in self.missing_groups)
            return f"{self.topic}: no term of require group {groups}; found {hits}"
        verdict = "matched" if self.passed else f"score below {self.min_score:g}"
        return f"{self.topic}: {verdict}, score {self.score:g}: {hits}"


class _Fields:
    """Token indexes of one article's title, text and lead, shared by all topics."""

    def __init__(self, title: str, text: str, text_tokens: list[str] | None = None) -> None:
        self.title = TokenIndex.from_text(title or "")
        text_tokens = tokens(text or "") if text_tokens is None else text_tokens
        self.text = TokenIndex(text_tokens)
        self.lead = TokenIndex(text_tokens[:LEAD_TOKENS])
        self._cache: dict[tuple[str, ...], tuple[int, int]] = {}

    def counts(self, phrase: Phrase) -> tuple[int, int]:
        if phrase not in self._cache:
            self._cache[phrase] = (self.title.count(phrase), self.text.count(phrase))
        return self._cache[phrase]

    def masked_counts(self, phrase: Phrase, masks: Sequence[Phrase]) -> tuple[int, int]:
        """Counts of a phrase, less its occurrences inside the (exclude) phrases `masks`."""
        title, text = self.counts(phrase)
        if not (title or text):
            return 0, 0
        for mask in masks:
            inside = _occurrences(phrase, mask)
            if inside and mask != phrase:
                m_title, m_text = self.counts(mask)
                title -= inside * m_title
                text -= inside * m_text
            elif mask == phrase:
                return 0, 0
        return max(title, 0), max(text, 0)


@lru_cache(maxsize=65536)
def _occurrences(part: Phrase, whole: Phrase) -> int:
    """Non-overlapping occurrences of a token sequence inside another (configured terms
    only, so cached)."""
    n, i, found = len(part), 0, 0
    while i + n <= len(whole):
        if whole[i : i + n] == part:
            found += 1
            i += n
        else:
            i += 1
    return found


def _distinct(terms: Iterable[str]) -> list[tuple[str, Phrase]]:
    """Configured terms with their token pattern; spellings that normalise alike count once."""
    seen: set[Phrase] = set()
    out: list[tuple[str, Phrase]] = []
    for term in terms:
        phrase = phrase_pattern(term)
        if phrase and phrase not in seen:
            seen.add(phrase)
            out.append((term, phrase))
    return out


def _evaluate(fields: _Fields, topic: TopicConfig) -> Evaluation:
    vetoes: list[TermHit] = []
    excludes = _distinct(topic.exclude)
    masks = [p for _, p in excludes]
    for term, phrase in excludes:
        in_title, _ = fields.counts(phrase)
        if in_title:
            vetoes.append(TermHit(term, "title", in_title))
        in_lead = fields.lead.count(phrase)
        if in_lead:
            vetoes.append(TermHit(term, "text", in_lead))

    boost = {p for _, p in _distinct(topic.boost)}
    scored = _distinct([t for group in topic.require for t in group] + list(topic.boost))
    hits: list[TermHit] = []
    found: set[Phrase] = set()
    score = 0.0
    for term, phrase in scored:
        in_title, in_text = fields.masked_counts(phrase, masks)
        if not (in_title or in_text):
            continue
        found.add(phrase)
        factor = BOOST_FACTOR if phrase in boost else 1.0
        per_field = (("title", in_title, topic.title_weight), ("text", in_text, 1.0))
        for field, count, weight in per_field:
            if count:
                hits.append(TermHit(term, _field(field), count))
                score += min(count, COUNT_CAP) * weight * factor

    missing = tuple(
        i for i, group in enumerate(topic.require)
        if not any(phrase_pattern(t) in found for t in group)
    )
    passed = not vetoes and not missing and score >= topic.min_score
    return Evaluation(
        topic=topic.name,
        passed=passed,
        score=round(score, 3),
        matched=tuple(hits),
        missing_groups=missing,
        vetoed_by=tuple(vetoes),
        min_score=topic.min_score,
    )


def _field(name: str) -> Field:
    return "title" if name == "title" else "text"


def evaluate(title: str, text: str, topics: Sequence[TopicConfig],
             text_tokens: list[str] | None = None) -> list[Evaluation]:
    """Every topic's verdict on one article, matched or not (for debugging a rule).

    Args:
        title: the article's headline.
        text: the article's body as extracted.
        topics: the configured topics.
        text_tokens: ``tokens(text)`` when the caller has them already (pipeline.prepare).

    Returns:
        One Evaluation per topic, in config order.
    """
    fields = _Fields(title, text, text_tokens)
    return [_evaluate(fields, topic) for topic in topics]


def classify(title: str, text: str, topics: Sequence[TopicConfig],
             text_tokens: list[str] | None = None) -> list[TopicMatch]:
    """The topics an article matches, each with its score and every matched term.

    Args:
        title: the article's headline.
        text: the article's body as extracted.
        topics: the configured topics.
        text_tokens: ``tokens(text)`` when the caller has them already (pipeline.prepare).

    Returns:
        A TopicMatch per topic that passes, in config order.
    """
    out: list[TopicMatch] = []
    for ev in evaluate(title, text, topics, text_tokens):
        match = ev.as_match()
        if match is not None:
            out.append(match)
    return out


def story_topics(matches_per_article: Iterable[Sequence[TopicMatch]]) -> list[TopicMatch]:
    """The topics of a story: those of its articles, best score, union of matched terms.

    For a term seen in the same field in several articles, the highest count is kept.

    Args:
        matches_per_article: the ``classify`` result of each article of the story.

    Returns:
        One TopicMatch per topic, in order of first appearance.
    """
    scores: dict[str, float] = {}
    terms: dict[str, dict[tuple[str, Field], int]] = {}
    for matches in matches_per_article:
        for m in matches:
            scores[m.topic] = max(scores.get(m.topic, m.score), m.score)
            bucket = terms.setdefault(m.topic, {})
            for hit in m.matched:
                key = (hit.term, hit.field)
                bucket[key] = max(bucket.get(key, 0), hit.count)
    return [
        TopicMatch(topic, scores[topic], tuple(TermHit(t, f, c) for (t, f), c in terms[topic].items()))
        for topic in scores
    ]
