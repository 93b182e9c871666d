"""Stories: the same event reported by several outlets, in their own words.

Near-copies are `pipeline.dedup`'s job; here two articles share a story when they
report the same event: they name the same people, agencies and places, quote the
same numbers and dates, use the same rare words, and were published within a few
days of each other.

Features (``article_features``, a list of strings so it can be stored as JSON):

- ``x:<id>`` a name (person, agency, country, place) from the cross-lingual ``NAMES``
  table in `pipeline.lexicon` (حموشي = Hammouchi, طنجة = Tanger = Tangier, المديرية العامة للأمن
  الوطني = DGSN);
- ``c:<id>`` a notion from ``NOTIONS`` that tells one kind of event from another
  (الألعاب الأولمبية = JO = Olympics, النشرة الحمراء = notice rouge = red notice);
- ``e:<name>`` a capitalised word of a Latin-script text that is not sentence-initial
  (a person, a place, an institution), shared by French and English reports;
- ``d:<MM-DD>`` a day and month ("28 juin", "June 28", "28 يونيو");
- ``n:<number>`` a number of two digits or more, without a leading zero;
- ``k:lat:<stem>`` / ``k:ar:<word>`` a content word, stop words removed, lightly
  stemmed; Latin-script keywords (French, English) share a namespace because cut to
  six letters many cognates meet ("explosifs" / "explosives"); Arabic ones only meet
  Arabic reports.

``StoryIndex`` keeps an inverted index feature → day → stories, so a new article is
compared only with the stories that share one of its most selective features and
were published within ``WINDOW_DAYS`` of the story: never all pairs. Features are
weighted by an IDF computed incrementally over the stories seen (a name found in one
story in a hundred weighs far more than "Maroc") and by kind (keywords weigh little:
two reports of one event rarely choose the same words). Similarity is a weighted
Dice coefficient over the feature namespaces both sides have: a French article is
compared with an Arabic story on names, notions, numbers and dates only.

Greedy assignment depends on the order articles arrive in. ``assign_stories`` removes
that: one pass in (published, URL) order, where an article only meets stories of articles
published before it and IDF counts only stories born in the ``DF_DAYS`` before it, so
each article's story is a function of the articles published up to it, wherever and
whenever they were fetched (`pipeline.settle` runs it at the end of every crawl).

Unrelated articles must never share a story; a missed merge only costs a second
line in the digest. So the bar is high, and higher between Arabic and Latin-script
reports (``CROSS_THRESHOLD``), where a handful of aliases carries the decision. On
the replay fixtures (6 events, French/Arabic/English, 5 outlets) every same-event
pair meets, no other pair does, in any arrival order. The window is part of that
margin: related events with the same actors (a visit, then the deployment it
prepared; two Guardia Civil meetings months apart) score as high as two reports of
one event, and would merge if they fell within the same week.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from veille.pipeline.lexicon import MONTHS, NAME_PARTS, NAMES, NOTIONS, STOP_WORDS
from veille.pipeline.normalize import ARABIC_RE, CLITICS, MIN_VARIANT, Phrase, normalize, tokens

WINDOW_DAYS = 7.0  # reports of one event in the fixtures span up to 6 days
# Thresholds: on the replay the weakest same-event match scores 0.51 in one script and
# 0.60 across scripts, the strongest unrelated candidate 0.34. On the 2,000-page bench
# corpus, 0.45 / 0.58 (was 0.38 / 0.55) raised pairwise precision from 0.68 to 0.86 at
# unchanged recall (0.82 -> 0.84): its false joins were same-kind events of one week.
THRESHOLD = 0.45  # weighted Dice, reports in the same script (French, English)
CROSS_THRESHOLD = 0.58  # weighted Dice, Arabic vs French or English
MIN_SHARED = 4  # distinct shared features
MIN_SHARED_SPECIFIC = 2  # of which names, aliases, numbers or dates
PREFIX_FEATURES = 12  # most selective features of a query used to find candidates
COMMON_SHARE = 0.02  # a feature of more stories than this share (and than
COMMON_MIN_STORIES = 50  # this many) finds no candidates: "Maroc" alone decides nothing
# A feature brings at most this many candidates, the stories nearest the article in time
# (whole days): in a busy window a feature of 2% of the stories lists hundreds, and
# scoring them all made the cost of a look-up grow with the daily volume. The replay and
# the bench corpus never reach it (a feature of more stories is "common" there).
FEATURE_CANDIDATES = COMMON_MIN_STORIES
MIN_IDF_STORIES = 20  # IDF as if at least this many stories were known (cold start)
MAX_ENTRIES = 8  # feature sets kept per story (its first and latest articles)
DF_DAYS = 30  # IDF counts the stories born this many days before the article
MAX_STORY_FEATURES = 80  # a story's features: its articles' merged, first ones first

LATIN_STEM = 6
MIN_KEYWORD = 4
MAX_NAMES, MAX_NOTIONS, MAX_ENTITIES, MAX_DATES, MAX_NUMBERS, MAX_KEYWORDS = 15, 6, 15, 4, 8, 20
KIND_WEIGHT = {"x": 1.5, "e": 1.5, "d": 1.5, "c": 1.0, "n": 1.0, "k": 0.25}
SPECIFIC_KINDS = frozenset("xedn")  # names, dates and numbers identify an event; notions do not

_WORD_RE = re.compile(r"[^\W\d_]+")
_SENTENCE_RE = re.compile(r"[.!?…:;«»\"“”()\[\]\n]+")
RANGE_WORDS = frozenset(tokens("au et a to and through و الى"))

Feature = str


# Arabic spellings of foreign names vary in emphatic letters (بيرطون / بيرتون): alias
# lookups compare a folded form
_ALIAS_FOLD = str.maketrans({"ط": "ت", "ص": "س", "ض": "د", "ظ": "ز", "ث": "ت", "ذ": "د", "ق": "ك"})


def _compile_aliases() -> tuple[dict[Phrase, str], dict[str, tuple[int, ...]]]:
    """Folded token sequence → feature, for NAMES (x:) and NOTIONS (c:); and first token
    → lengths of the aliases it opens, longest first: most tokens open none, and are
    passed over without slicing the text once per possible length."""
    table: dict[Phrase, str] = {}
    lengths: defaultdict[str, set[int]] = defaultdict(set)
    for prefix, aliases in (("x:", NAMES), ("c:", NOTIONS)):
        for ident, names in aliases.items():
            for name in names:
                phrase = tuple(t.translate(_ALIAS_FOLD) for t in tokens(name))
                if phrase:
                    table.setdefault(phrase, prefix + ident)
                    lengths[phrase[0]].add(len(phrase))
    return table, {first: tuple(sorted(ns, reverse=True)) for first, ns in lengths.items()}


_ALIAS_INDEX, _ALIAS_LENGTHS = _compile_aliases()
_normalize_word = functools.lru_cache(maxsize=1 << 16)(normalize)  # a text repeats its words


def kind(feature: Feature) -> str:
    """The kind letter of a feature: x, c, e, d, n or k."""
    return feature[0]


def namespace(feature: Feature) -> str:
    """Features of one namespace can meet: keywords only within one language."""
    if feature.startswith("k:"):
        return feature[: feature.index(":", 2)]
    return feature[0]


def _alias_at(folded: Sequence[str], i: int) -> tuple[str, int] | None:
    """The alias starting at token i (longest first) and its length in tokens.

    `folded` are the text's tokens translated with _ALIAS_FOLD.
    """
    tok = folded[i]
    for n in _ALIAS_LENGTHS.get(tok, ()):
        if n <= len(folded) - i:
            ident = _ALIAS_INDEX.get(tuple(folded[i : i + n]))
            if ident:
                return ident, n
    if ARABIC_RE.match(tok):
        for k in (1, 2):  # بطنجة → طنجة, وبطنجة → طنجة
            if all(c in CLITICS for c in tok[:k]) and len(tok) - k >= MIN_VARIANT:
                ident = _ALIAS_INDEX.get((tok[k:],))
                if ident:
                    return ident, 1
    return None


def _entities(text: str) -> set[str]:
    """Normalised words of a Latin-script text that are names: capitalised where they do
    not open a sentence, and never written in lower case ("Berthon", not "Police" when
    the text also says "la police")."""
    capitalised: set[str] = set()
    lower: set[str] = set()
    for sentence in _SENTENCE_RE.split(text):
        for pos, word in enumerate(_WORD_RE.findall(sentence)):
            if word[0].isupper():
                if pos:
                    capitalised.add(_normalize_word(word))
            elif word[0].islower():
                lower.add(_normalize_word(word))
    return {
        w for w in capitalised - lower if len(w) >= 3 and w not in STOP_WORDS and w not in NAME_PARTS
    }


def _keyword(tok: str) -> str:
    """Namespace and light stem of a content word.

    Arabic words lose a plural or feminine ending. French and English words are cut to
    their first LATIN_STEM letters, which folds inflections ("policiers", "policier")
    and many French–English cognates ("explosifs", "explosives").
    """
    if ARABIC_RE.match(tok):
        if len(tok) > 4 and tok.endswith(("ات", "ين", "ون")):
            tok = tok[:-2]
        elif len(tok) > 3 and tok.endswith("ه"):
            tok = tok[:-1]
        return "k:ar:" + tok
    return "k:lat:" + tok[:LATIN_STEM]


def _top(counter: Counter[str], limit: int) -> list[str]:
    """The most frequent features; among equals the longest (longer words are rarer)."""
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))
    return [f for f, _ in ranked[:limit]]


def _is_day(tok: str) -> bool:
    return len(tok) <= 2 and tok.isdigit() and 1 <= int(tok) <= 31


def _date_at(toks: Sequence[str], i: int) -> tuple[list[str], int] | None:
    """Day-and-month features at token i and how many tokens they span.

    Reads "28 juin", "26 au 28 juin", "26 و28 يونيو", "June 28", "June 26-28".
    """
    n = len(toks)
    if _is_day(toks[i]):
        days, j = [toks[i]], i + 1
        if j + 1 < n and toks[j] in RANGE_WORDS and _is_day(toks[j + 1]):
            days.append(toks[j + 1])
            j += 2
        elif j + 1 < n and _is_day(toks[j]) and toks[j + 1] in MONTHS:
            days.append(toks[j])  # "26 و28 يونيو": the و is glued to the digits
            j += 1
        if j < n and toks[j] in MONTHS:
            return [f"d:{MONTHS[toks[j]]:02d}-{int(d):02d}" for d in days], j + 1 - i
        return None
    if toks[i] in MONTHS and i + 1 < n and _is_day(toks[i + 1]):
        days, j = [toks[i + 1]], i + 2
        if j < n and _is_day(toks[j]):
            days.append(toks[j])  # "June 26-28"
            j += 1
        elif j + 1 < n and toks[j] in RANGE_WORDS and _is_day(toks[j + 1]):
            days.append(toks[j + 1])
            j += 2
        return [f"d:{MONTHS[toks[i]]:02d}-{int(d):02d}" for d in days], j - i
    return None


_THOUSANDS_RE = re.compile(r"\b\d{1,3}(?:[.,\u00a0\u202f ]\d{3})+\b")  # 10,000 / 4.000 / 2 500


def _prepare(toks: list[str]) -> list[str]:
    """Split the Arabic conjunction off digits (و28 → 28)."""
    return [t[1:] if t[:1] == "و" and t[1:].isdigit() else t for t in toks]


def article_features(title: str, text: str, language: str | None = None) -> list[Feature]:
    """The salient features of an article, most telling first (see the module doc).

    Args:
        title: the headline.
        text: the extracted body.
        language: fr, ar or en; kept for callers, the script of each word decides.

    Returns:
        At most ~80 distinct feature strings: names, notions, capitalised names, dates,
        numbers, keywords, in that order (a caller that truncates keeps the best).
    """
    names = _entities(text or "")
    counts: dict[str, Counter[str]] = {k: Counter() for k in "xcednk"}
    for field_text, weight in ((title, 3), (text, 1)):
        field_text = _THOUSANDS_RE.sub(lambda m: re.sub(r"\D", "", m[0]), field_text or "")
        toks = _prepare(tokens(field_text))
        folded = [t.translate(_ALIAS_FOLD) for t in toks]
        i = 0
        while i < len(toks):
            alias = _alias_at(folded, i)
            if alias:
                counts[alias[0][0]][alias[0]] += weight
                i += alias[1]
                continue
            date_hit = _date_at(toks, i)
            if date_hit:
                for feat in date_hit[0]:
                    counts["d"][feat] += weight
                i += date_hit[1]
                continue
            tok = toks[i]
            if tok.isdigit():
                if len(tok) >= 2 and not tok.startswith("0"):  # not "07" of 07:34
                    counts["n"]["n:" + tok] += weight
            elif tok in names:
                counts["e"]["e:" + tok] += weight
            elif tok not in STOP_WORDS and tok not in MONTHS and len(tok) >= MIN_KEYWORD:
                counts["k"][_keyword(tok)] += weight
            i += 1
    return (
        _top(counts["x"], MAX_NAMES)
        + _top(counts["c"], MAX_NOTIONS)
        + _top(counts["e"], MAX_ENTITIES)
        + _top(counts["d"], MAX_DATES)
        + _top(counts["n"], MAX_NUMBERS)
        + _top(counts["k"], MAX_KEYWORDS)
    )


def _day(when: datetime | date) -> int:
    return when.toordinal()  # a datetime's is its date's (in its own time zone)


def _distance(a: datetime | date, b: datetime | date) -> timedelta:
    if isinstance(a, datetime) and isinstance(b, datetime):
        if (a.tzinfo is None) != (b.tzinfo is None):
            a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
        return abs(a - b)
    return timedelta(days=abs(_day(a) - _day(b)))


@functools.cache
def _nearest_first(reach: int) -> tuple[int, ...]:
    """Day offsets from -reach to reach, nearest first (earlier first among equals)."""
    return tuple(sorted(range(-reach, reach + 1), key=lambda d: (abs(d), d)))


class _Entry:
    """An article's (or a story snapshot's) features, grouped by namespace once, when
    first scored: most entries of a pass never are."""

    __slots__ = ("features", "_groups")

    def __init__(self, features: frozenset[str]) -> None:
        self.features = features
        self._groups: dict[str, tuple[str, ...]] | None = None

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        if self._groups is None:
            self._groups = self._group(self.features)
        return self._groups

    @staticmethod
    def _group(features: frozenset[str]) -> dict[str, tuple[str, ...]]:
        groups: dict[str, list[str]] = {}
        for f in features:  # namespace(f), inlined: a pass builds thousands of entries
            ns = f[: f.index(":", 2)] if f[0] == "k" else f[0]
            if ns in groups:
                groups[ns].append(f)
            else:
                groups[ns] = [f]
        return {ns: tuple(fs) for ns, fs in groups.items()}


@dataclass
class _Story:
    features: set[str] = field(default_factory=set)
    entries: list[_Entry] = field(default_factory=list)
    dates: list[datetime | date] = field(default_factory=list)
    days: set[int] = field(default_factory=set)  # the ordinal days of `dates`
    counted: bool = True  # its features count in the IDF (until `forget_before` retires it)
    opener: tuple[str, str] = ("", "")  # (birth, first article's key): breaks ties between equals


@dataclass(frozen=True)
class Candidate:
    """A story compared with an article: its similarity and the features they share."""

    story: str
    similarity: float
    shared: tuple[str, ...]
    cross_language: bool
    accepted: bool


class StoryIndex:
    """Which known story an article belongs to, if any (in memory; rebuilt per run).

    Args:
        window_days: an article joins a story only if published within this many days
            of one of the story's articles.
        threshold: weighted Dice needed when the two share a language.
        cross_threshold: weighted Dice needed across languages.
        min_shared: distinct features the two must share.
        df_days: how far back `forget_before` keeps stories in the IDF.
    """

    def __init__(
        self,
        window_days: float = WINDOW_DAYS,
        threshold: float = THRESHOLD,
        cross_threshold: float = CROSS_THRESHOLD,
        min_shared: int = MIN_SHARED,
        df_days: int = DF_DAYS,
    ) -> None:
        self.window = timedelta(days=window_days)
        self.threshold = threshold
        self.cross_threshold = cross_threshold
        self.min_shared = min_shared
        self.df_days = max(df_days, math.ceil(window_days) + 1)  # never retire a matchable story
        self._stories: dict[str, _Story] = {}
        self._df: Counter[str] = Counter()  # counted stories having each feature
        self._counted = 0  # stories in the IDF
        self._births: list[tuple[int, str]] = []  # heap of (first day, story) of counted stories
        self._postings: dict[str, dict[int, set[str]]] = {}  # feature -> day -> stories
        self._watched: set[str] = set()  # stories `could_take` tests (changed in a pass)
        self._watched_by_feature: defaultdict[str, set[str]] = defaultdict(set)
        self.comparisons = 0  # entries scored so far (for benchmarks and tests)

    def __len__(self) -> int:
        return len(self._stories)

    def __contains__(self, key: object) -> bool:
        return key in self._stories

    def add(self, story_key: str, features: Iterable[str], published: datetime | date | None,
            opener: str = "") -> None:
        """Record an article (or a stored story's features) as part of `story_key`.

        A story with no date is kept but never matched: the window cannot be checked.
        `opener` (the first article's key) orders stories that score the same, so that
        ties do not depend on what a story is called.
        """
        story = self._stories.get(story_key)
        if story is None:
            story = self._stories[story_key] = _Story()
            story.opener = ("" if published is None else published.isoformat(), opener or story_key)
            self._counted += 1
            if published is not None:
                heapq.heappush(self._births, (_day(published), story_key))
        feats = frozenset(features)
        new = feats - story.features
        if new:
            if story.counted:
                df = self._df
                for f in new:
                    df[f] = df.get(f, 0) + 1
            story.features |= new
            if story_key in self._watched:
                for f in new:
                    self._watched_by_feature[f].add(story_key)
        h = hash(feats)  # a frozenset keeps its hash: most snapshots differ by it already
        if feats and all(hash(e.features) != h or e.features != feats for e in story.entries):
            story.entries.append(_Entry(feats))
            if len(story.entries) > MAX_ENTRIES:
                del story.entries[1]  # keep the first article and the latest ones
        days = story.days
        postings = self._postings
        if published is not None:
            if published not in story.dates:
                story.dates.append(published)
            day = _day(published)
            if day not in days:
                for f in story.features - new if new else story.features:  # new ones: below
                    by_day = postings.get(f)
                    if by_day is None:
                        postings[f] = {day: {story_key}}
                    elif day in by_day:
                        by_day[day].add(story_key)
                    else:
                        by_day[day] = {story_key}
                days.add(day)
        if new and days:  # listed on every day of the story
            for f in new:
                by_day = postings.get(f)
                if by_day is None:
                    postings[f] = {d: {story_key} for d in days}
                    continue
                for d in days:
                    if d in by_day:
                        by_day[d].add(story_key)
                    else:
                        by_day[d] = {story_key}

    def add_counted_many(self, stories: Iterable[tuple[str, Iterable[str], datetime | date]]) -> None:
        """Count stories in the IDF only: (key, features, birth) of each, too long before
        every article to come to be matched (the story pass's context beyond the window,
        `pipeline.settle`). It leaves the IDF as `add` would, at a fraction of the cost:
        no postings, no entries; counted in one go (a pass counts thousands)."""
        counted: list[set[str]] = []
        for story_key, features, born in stories:
            if story_key in self._stories:
                raise ValueError(f"story {story_key} is known already")
            story = self._stories[story_key] = _Story(features=set(features))
            self._counted += 1
            heapq.heappush(self._births, (_day(born), story_key))
            counted.append(story.features)
        self._df.update(itertools.chain.from_iterable(counted))

    def forget_before(self, when: datetime | date) -> None:
        """Take stories born more than `df_days` before `when` out of the IDF.

        Called before each article of a pass in date order, it makes every weight a
        function of the stories of the preceding `df_days`, not of where the pass began.
        Those stories are past the window already: they could not be matched anyway.
        """
        limit = _day(when) - self.df_days
        while self._births and self._births[0][0] < limit:
            _, key = heapq.heappop(self._births)
            story = self._stories[key]
            if story.counted:
                story.counted = False
                self._counted -= 1
                for f in story.features:
                    self._df[f] -= 1
                    if not self._df[f]:
                        del self._df[f]

    def weight(self, feature: str) -> float:
        """IDF over the stories counted so far, times the kind's weight.

        The article being matched counts as one more story (a feature only it has is not
        infinitely rare), and a fresh index behaves as if it knew MIN_IDF_STORIES stories,
        so that on a cold start two shared names are not outweighed by a word seen nowhere.
        """
        return self.weights((feature,))[feature]

    def weights(self, features: Iterable[str]) -> dict[str, float]:
        """`weight` of many features at once (a look-up weighs hundreds)."""
        n = max(self._counted + 1, MIN_IDF_STORIES)
        log, df, kinds = math.log, self._df.get, KIND_WEIGHT.get
        return {f: kinds(f[0], 1.0) * log((n + 1) / (df(f, 0) + 1)) for f in features}

    def match(self, features: Iterable[str], published: datetime | date | None) -> str | None:
        """The story this article belongs to, or None for a new story: the first accepted
        of `candidates`, ranked among those that could accept it only (`_reachable`)."""
        query = frozenset(features)
        if published is None or not query:
            return None
        for cand in self._rank(query, self._reachable(query, self._near(query, published))):
            if cand.accepted:
                return cand.story
        return None

    def candidates(
        self, features: Iterable[str], published: datetime | date | None
    ) -> list[Candidate]:
        """Stories within the window sharing a selective feature, best first (for debugging)."""
        query = frozenset(features)
        if published is None or not query:
            return []
        return self._rank(query, self._near(query, published))

    def watch(self, story_key: str) -> None:
        """Mark a story as changed in this pass: `could_take` tests articles against it."""
        if story_key in self._watched:
            return
        self._watched.add(story_key)
        story = self._stories.get(story_key)
        for f in () if story is None else story.features:
            self._watched_by_feature[f].add(story_key)

    def watched(self, story_key: str) -> bool:
        return story_key in self._watched

    def could_take(self, features: Iterable[str], published: datetime | date) -> bool:
        """Whether a watched story is among this article's candidates and would accept
        it: the story pass's test for an article placed by an earlier pass, whose match
        can only change if a story it can join changed (`assign_stories`)."""
        query = frozenset(features)
        if not query or not self._watched:
            return False
        common = max(COMMON_MIN_STORIES, COMMON_SHARE * self._counted)
        day, reach = _day(published), self.window.days + 1
        listed = [f for f in query if 0 < self._df.get(f, 0) <= common]
        watched = {key for f in listed for key in self._listed(f, day - reach, day + reach)}
        stories = self._stories
        # what acceptance needs of an entry, checked on all the story's features first
        watched = {key for key in watched if self._may_accept(query & stories[key].features)}
        reachable = self._reachable(query, [(k, stories[k]) for k in watched])
        if not reachable:
            return False  # no changed story near it shares a selective feature and enough others
        accepting = {c.story for c in self._rank(query, reachable) if c.accepted}
        # one that would accept it: is it among the article's candidates (the per-feature cap)?
        return bool(accepting) and bool(self._near(query, published, accepting))

    def _listed(self, feature: str, lo: int, hi: int) -> Iterator[str]:
        """The watched stories listed under `feature` on a day in [lo, hi]: those that
        have the feature and an article that day (what `_postings` records), looked up
        from the few watched stories instead of the feature's postings."""
        stories = self._stories
        for key in self._watched_by_feature.get(feature, ()):
            if any(lo <= d <= hi for d in stories[key].days):
                yield key

    def _reachable(self, query: frozenset[str], near: list[tuple[str, _Story]]) -> list[tuple[str, _Story]]:
        """Those of `near` with an entry `_score` could accept: a story without one can
        only rank below every story that accepts, so leaving it unscored changes no match."""
        if not near:
            return near
        weights = self.weights(query)
        by_ns: defaultdict[str, float] = defaultdict(float)
        for f in query:
            by_ns[namespace(f)] += weights[f]
        return [(key, story) for key, story in near
                if any(self._may_reach(query, by_ns, e, weights) for e in story.entries)]

    def _may_reach(self, query: frozenset[str], query_by_ns: dict[str, float], entry: _Entry,
                   weights: dict[str, float]) -> bool:
        """Whether `_score` could accept this entry: its similarity is at most what it
        would be if the entry had no feature but the shared ones, which costs the shared
        features' weights only (a few), not the entry's (eighty)."""
        shared = query & entry.features
        if not self._may_accept(shared):
            return False
        w_query = sum(query_by_ns[ns] for ns in query_by_ns.keys() & entry.groups.keys())
        w_shared = sum(map(weights.__getitem__, shared))
        bound = 2.0 * w_shared / (w_query + w_shared) if w_query + w_shared else 0.0
        return bound >= min(self.threshold, self.cross_threshold) - 1e-9  # sums in another order

    def _may_accept(self, shared: frozenset[str]) -> bool:
        """Whether features shared with a story are enough for an entry of it to accept:
        an entry shares at most these (`_score`)."""
        return (len(shared) >= self.min_shared
                and sum(1 for f in shared if f[0] in SPECIFIC_KINDS) >= MIN_SHARED_SPECIFIC)

    def _near(self, query: frozenset[str], published: datetime | date,
              among: set[str] | None = None) -> list[tuple[str, _Story]]:
        """The stories within the window listed under one of the query's most selective
        features (at most FEATURE_CANDIDATES per feature, nearest days first); only
        those `among` these, when given."""
        reach = self.window.days + 1
        day = _day(published)
        common = max(COMMON_MIN_STORIES, COMMON_SHARE * self._counted)
        query_weights = self.weights(f for f in query if 0 < self._df.get(f, 0) <= common)
        known = sorted(query_weights, key=query_weights.__getitem__, reverse=True)
        selective = [f for f in known if kind(f) != "k"][:PREFIX_FEATURES]
        selective += [f for f in known if kind(f) == "k"][:PREFIX_FEATURES]
        days = [day + offset for offset in _nearest_first(reach)]
        keys: set[str] = set()
        for f in selective:
            postings = self._postings.get(f)
            if postings:
                found = 0
                for d in days:
                    listed = postings.get(d)
                    if listed:
                        keys.update(listed)
                        found += len(listed)
                        if found >= FEATURE_CANDIDATES:
                            break
        if among is not None:
            keys &= among
        near = []  # (key, story) within the window
        for key in keys:
            story = self._stories[key]
            if any(_distance(published, d) <= self.window for d in story.dates):
                near.append((key, story))
        return near

    def _rank(self, query: frozenset[str], near: list[tuple[str, _Story]]) -> list[Candidate]:
        """Score `near` against the query, best first."""
        # the weights do not change during one lookup: each distinct feature once
        needed = set(query).union(*(e.features for _, st in near for e in st.entries))
        weights = self.weights(needed)
        wget = weights.__getitem__
        by_ns: defaultdict[str, float] = defaultdict(float)
        for f in query:
            by_ns[namespace(f)] += weights[f]
        out: list[Candidate] = []
        for key, story in near:
            best: tuple[float, frozenset[str], bool, bool] | None = None
            for entry in story.entries:
                self.comparisons += 1
                scored = self._score(query, by_ns, entry, wget)
                if best is None or round(scored[0], 4) > round(best[0], 4):
                    best = scored
            if best is not None:
                sim, shared, cross, accepted = best
                ordered = tuple(sorted(shared, key=lambda f: (-weights[f], f)))
                out.append(Candidate(key, round(sim, 4), ordered, cross, accepted))
        stories = self._stories
        out.sort(key=lambda c: (-c.accepted, -c.similarity, stories[c.story].opener, c.story))
        return out

    def _score(
        self,
        query: frozenset[str],
        query_by_ns: dict[str, float],
        entry: _Entry,
        weight: Callable[[str], float],
    ) -> tuple[float, frozenset[str], bool, bool]:
        """(weighted Dice, shared features, across scripts, accepted) for one entry."""
        groups = entry.groups
        common_ns = query_by_ns.keys() & groups.keys()
        w_query = sum(query_by_ns[ns] for ns in common_ns)
        w_entry = sum(sum(map(weight, groups[ns])) for ns in common_ns)
        shared = query & entry.features
        w_shared = sum(map(weight, shared))
        sim = 2.0 * w_shared / (w_query + w_entry) if w_query + w_entry else 0.0
        cross = not any(ns.startswith("k:") for ns in common_ns)
        accepted = (
            sim >= (self.cross_threshold if cross else self.threshold)
            and len(shared) >= self.min_shared
            and sum(1 for f in shared if f[0] in SPECIFIC_KINDS) >= MIN_SHARED_SPECIFIC
        )
        return sim, shared, cross, accepted


@dataclass(frozen=True)
class Placed:
    """An article as the story pass sees it.

    Attributes:
        key: a stable identity (the URL), which also orders articles published together.
        features: from `article_features`.
        published: timezone-aware.
        story: its story now, if any.
        fixed: it keeps `story` and only informs the others (an article before the
            pass's start, or one of a story already mailed).
        kept: placed by an earlier pass and unchanged since: it keeps `story` unless a
            story this pass changed could take it (see `assign_stories`).
    """

    key: str
    features: Sequence[str]
    published: datetime
    story: str | None = None
    fixed: bool = False
    kept: bool = False


NEW = "new:"  # prefix of the stories `assign_stories` opens: NEW + the first article's key


def assign_stories(articles: Iterable[Placed], *, df_days: int = DF_DAYS,
                   counted: Iterable[tuple[str, Sequence[str], datetime]] = (),
                   tally: Counter[str] | None = None) -> dict[str, str]:
    """Each article's story after one pass in (published, key) order.

    Whatever order the articles were stored in, and by however many workers, the same
    articles give the same stories. A story is built exactly as `pipeline.process`
    builds it while crawling (merged features, dated by its earliest article).

    `counted` are stories (key, merged features, birth) whose articles are all fixed
    and published too long before every free one to be matched: they only weigh in
    the IDF (`StoryIndex.add_counted_many`), so a caller need not read their articles. The
    result is the one their fixed articles would give.

    A `kept` article is matched again only if its own story changed in this pass (it
    gained or lost an article, or one of its articles changed) or a changed story
    among its candidates would accept it; otherwise the earlier pass's answer stands,
    and the pass costs what changed rather than every article published since the
    earliest new one. What this gives up: a decision that only the drift of the IDF
    (one more story counted) would flip is not revisited.

    `tally`, when given, counts the articles "rematched" and "kept" as they were.

    Returns:
        key → story: a fixed or kept article's own story, a story of a fixed article
        that a free one joined, or NEW + key of the article that opened it.
    """
    index = StoryIndex(df_days=df_days)
    index.add_counted_many(counted)
    merged: dict[str, list[str]] = {}
    born: dict[str, datetime] = {}
    out: dict[str, str] = {}
    for art in sorted(articles, key=lambda a: (a.published, a.key)):
        index.forget_before(art.published)
        if art.fixed and art.story is not None:
            story = art.story
        elif (art.kept and art.story is not None and not index.watched(art.story)
              and not index.could_take(art.features, art.published)):
            story = art.story
            if tally is not None:
                tally["kept"] += 1
        else:
            found = index.match(art.features, art.published)
            if found is not None:
                story = found
            elif art.kept and art.story is not None and art.story not in index:
                story = art.story  # it opens again the story it headed, under its name
            else:
                story = NEW + art.key
            if not art.kept or story != art.story:
                index.watch(story)  # its articles differ from the earlier pass's
                if art.story is not None:
                    index.watch(art.story)
            if tally is not None:
                tally["rematched"] += 1
        merged[story] = list(dict.fromkeys([*merged.get(story, ()), *art.features]))[
            :MAX_STORY_FEATURES
        ]
        index.add(story, merged[story], born.setdefault(story, art.published), opener=art.key)
        out[art.key] = story
    return out
