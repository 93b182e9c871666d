"""Duplicate detection and story clustering at 1k, 10k and 100k articles.

What the crawl process does for every stored article, without the crawl and the
database: content hash and MinHash signature, `DuplicateIndex` look-up (and insertion of
an original), story features, `StoryIndex` match and insertion. Each size runs in its
own child process (`python -m bench.dedup --child N`), so its peak RSS is its own.

Texts are synthetic and cheap: a Zipf-distributed vocabulary of pseudo-words (Latin and
Arabic script) and, per event, its own rare keywords, capitalised names, numbers and a
date, shared by the two or three outlets that report it; some reports are syndicated
copies or updates of another. Articles arrive in time order at `PER_DAY` a day (about
what the outlets of config.yaml publish), so 1k articles span one day and 100k span
100 days — the windowed story index sees a steady state, as in production.

Figures per size: microseconds per article (total, and the index part alone), index
comparisons per article, peak RSS and RSS growth while indexing; target: per-article
cost at 100k within 2x of 1k. Pairwise precision and recall of stories against the
generated events are reported for context.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.common import Figure, log, ratio, run_child

SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 5_000, 20_000)
PER_DAY = 1000
SEED = 11
START = datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=1)))
TARGET = 2.0
COPY, UPDATE = 0.05, 0.03
TAIL = 1000  # articles timed at each size (the last ones)
FILL_CHUNK = 2000
MONTHS_FR = ("janvier février mars avril mai juin juillet août septembre octobre novembre "
             "décembre").split()
MONTHS_AR = "يناير فبراير مارس أبريل ماي يونيو يوليوز غشت شتنبر أكتوبر نونبر دجنبر".split()
FUNCTION_FR = ("le la les de des du et à en un une pour dans sur par avec qui que est sont a ont "
               "au aux ce cette son sa ses leur plus ne pas").split()
FUNCTION_AR = "في من على إلى عن مع هذا هذه التي الذي كان قد أن إن أو ثم كما بين بعد قبل خلال".split()
KNOWN = ("Maroc", "France", "Rabat", "Paris", "Casablanca", "Tanger", "DGSN", "Espagne", "Madrid",
         "Algérie", "Interpol", "Marrakech")
KNOWN_AR = ("المغرب", "فرنسا", "الرباط", "باريس", "الدار البيضاء", "طنجة", "إسبانيا", "الجزائر")


@dataclass
class Item:
    title: str
    text: str
    language: str
    published: datetime
    event: int
    copy: bool = False  # a syndicated copy or an update of an earlier item


def _words(rng: random.Random, n: int, letters: tuple[str, str], lengths: tuple[int, int]) -> list[str]:
    consonants, vowels = letters
    out: set[str] = set()
    while len(out) < n:
        k = rng.randint(*lengths)
        out.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(k)))
    return sorted(out)


class Stream:
    """Synthetic articles in time order; see the module docstring."""

    def __init__(self, seed: int = SEED, per_day: float = PER_DAY) -> None:
        rng = self.rng = random.Random(seed)
        self.per_day = per_day
        latin = ("bcdfghjklmnprstvz", "aeiou")
        arabic = ("بتثجحخدذرزسشصضطظعغفقكلمنهو", "اوي")
        self.lex = {"fr": _words(rng, 30_000, latin, (2, 4)), "ar": _words(rng, 15_000, arabic, (2, 3))}
        self.names = _words(rng, 20_000, latin, (2, 3))
        self.cum = {k: self._zipf(len(v)) for k, v in self.lex.items()}

    @staticmethod
    def _zipf(n: int, s: float = 1.07) -> list[float]:
        total, cum = 0.0, []
        for rank in range(1, n + 1):
            total += rank ** -s
            cum.append(total)
        return cum

    def _sentence(self, lang: str, ev: dict[str, Any], first: bool) -> str:
        rng = self.rng
        n = rng.randint(10, 22)
        common = rng.choices(self.lex[lang], cum_weights=self.cum[lang], k=n)
        function = FUNCTION_AR if lang == "ar" else FUNCTION_FR
        words: list[str] = []
        for w in common:
            r = rng.random()
            if r < 0.45:
                words.append(rng.choice(function))
            elif r < 0.55:
                words.append(rng.choice(ev["keywords"]))
            elif r < 0.61:
                words.append(rng.choice(ev["names"]))
            elif r < 0.63:
                words.append(rng.choice(ev["numbers"]))
            elif r < 0.65:
                words.append(rng.choice(ev["known"]))
            else:
                words.append(w)
        if first:
            words[2:2] = ev["date"].split()
        sentence = " ".join(words)
        return (sentence[0].upper() + sentence[1:] if lang != "ar" else sentence) + "."

    def _event(self, lang: str) -> dict[str, Any]:
        rng = self.rng
        lex = self.lex[lang]
        day, month = rng.randint(1, 28), rng.randrange(12)
        names = [n.capitalize() for n in rng.sample(self.names, 4)] if lang != "ar" else rng.sample(lex, 4)
        return {
            "keywords": rng.sample(lex[len(lex) // 20:], 12),
            "names": names,
            "numbers": [str(rng.randint(11, 9999)) for _ in range(3)],
            "known": rng.sample(KNOWN_AR if lang == "ar" else KNOWN, 2),
            "date": f"{day} {(MONTHS_AR if lang == 'ar' else MONTHS_FR)[month]}",
        }

    def __iter__(self) -> Iterator[Item]:
        rng = self.rng
        produced, event = 0, 0
        while True:
            event += 1
            lang = "ar" if rng.random() < 0.35 else "fr"
            ev = self._event(lang)
            when = START + timedelta(days=produced / self.per_day)
            for _ in range(rng.choice((1, 1, 2, 2, 3))):
                sentences = [self._sentence(lang, ev, i == 0) for i in range(rng.randint(6, 18))]
                title = self._sentence(lang, ev, False)[:-1]
                published = when + timedelta(hours=rng.uniform(0, 12))
                text = "\n".join(sentences)
                yield Item(title, text, lang, published, event)
                produced += 1
                r = rng.random()
                if r < COPY:
                    yield Item(title, text, lang, published + timedelta(hours=2), event, True)
                    produced += 1
                elif r < COPY + UPDATE:
                    extra = self._sentence(lang, ev, False)
                    yield Item(title, text + "\n" + extra, lang, published + timedelta(hours=8), event, True)
                    produced += 1


Prepared = tuple[int, bool, datetime, str, bytes, list[str]]


def _peak_rss() -> int:
    """Peak RSS of this process, bytes. VmHWM, not ru_maxrss: on Linux ru_maxrss survives
    exec, so a child would report its parent's peak when that is higher."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _prep(item: Item) -> Prepared:
    """Event, copy flag, date, content hash, signature and story features of one item
    (run in pool workers)."""
    from veille.pipeline.dedup import content_hash, minhash, signature_bytes
    from veille.pipeline.stories import article_features

    return (item.event, item.copy, item.published, content_hash(item.text),
            signature_bytes(minhash(item.text)), article_features(item.title, item.text, item.language))


def _prepared(stream: Iterator[Item], n: int, pool: Any) -> Iterator[Prepared]:
    """`_prep` of the next n items in order: the pool works on one chunk while the caller
    inserts the previous one, and memory stays bounded by two chunks."""
    def chunk(k: int) -> list[Item]:
        return [next(stream) for _ in range(k)]

    left = n
    size = min(FILL_CHUNK, left)
    pending = pool.map_async(_prep, chunk(size), 64)
    left -= size
    while True:
        results = pending.get()
        if left > 0:
            size = min(FILL_CHUNK, left)
            pending = pool.map_async(_prep, chunk(size), 64)
            left -= size
            yield from results
        else:
            yield from results
            return


def measure(n: int, tail: int = TAIL) -> dict[str, Any]:
    """Index `n` synthetic articles in this process and time the last `tail` of them.

    The first n - tail articles fill the indexes as a long run would have left them
    (features computed by a process pool; each original added to the DuplicateIndex and,
    under its true event, to the StoryIndex). The last `tail` go through the whole
    per-article work, timed: hash, signature, features, duplicate look-up, story match,
    insertion. Time per article at size n is thus the cost of adding an article to an
    index of about n. Text generation is never timed.
    """
    import multiprocessing

    import psutil

    from veille.pipeline.dedup import DuplicateIndex, content_hash, minhash
    from veille.pipeline.stories import StoryIndex, article_features

    tail = min(tail, n)
    stream = iter(Stream())
    dup, stories = DuplicateIndex(), StoryIndex()
    hashes: dict[str, str] = {}
    story_of: dict[str, str] = {}  # original's key -> its story
    rss0 = psutil.Process().memory_info().rss
    t_fill = time.perf_counter()
    with multiprocessing.get_context("fork").Pool() as pool:
        for k, (event, copy, published, digest, sig, feats) in enumerate(_prepared(stream, n - tail, pool)):
            if copy:
                continue
            key = str(k)
            dup.add(key, sig)
            hashes[digest] = key
            story_of[key] = f"e{event}"
            stories.add(story_of[key], feats, published)
    t_fill = time.perf_counter() - t_fill
    prep = index = 0.0
    c_dup, c_story = dup.comparisons, stories.comparisons
    copies = 0
    per_story: Counter[str] = Counter(story_of.values())
    per_event: Counter[str] = Counter(story_of.values())  # fill stories are true events
    both: Counter[tuple[str, str]] = Counter((v, v) for v in story_of.values())
    pairs = {"story": 0, "event": 0, "both": 0}
    for i in range(n - tail, n):
        it = next(stream)
        t0 = time.perf_counter()
        digest = content_hash(it.text)
        sig = minhash(it.text)
        feats = article_features(it.title, it.text, it.language)
        t1 = time.perf_counter()
        key = str(i)
        original = hashes.get(digest) or dup.find(sig)
        if original is not None:
            copies += 1
            story = story_of.get(original, key)
        else:
            dup.add(key, sig)
            hashes[digest] = key
            story = stories.match(feats, it.published) or key
            stories.add(story, feats, it.published)
            story_of[key] = story
        t2 = time.perf_counter()
        prep += t1 - t0
        index += t2 - t1
        event = f"e{it.event}"
        pairs["story"] += per_story[story]
        pairs["event"] += per_event[event]
        pairs["both"] += both[(story, event)]
        per_story[story] += 1
        per_event[event] += 1
        both[(story, event)] += 1
    rss1 = psutil.Process().memory_info().rss
    return {
        "n": n, "tail": tail, "us_per_article": 1e6 * (prep + index) / tail, "us_index": 1e6 * index / tail,
        "us_features": 1e6 * prep / tail, "fill_seconds": t_fill, "tail_seconds": prep + index,
        "dup_comparisons": (dup.comparisons - c_dup) / tail,
        "story_comparisons": (stories.comparisons - c_story) / tail,
        "stories": len(stories), "copies_found": copies,
        "peak_rss": _peak_rss(),
        "rss_growth": rss1 - rss0,
        "pair_precision": pairs["both"] / pairs["story"] if pairs["story"] else None,
        "pair_recall": pairs["both"] / pairs["event"] if pairs["event"] else None,
    }


def run(sizes: tuple[int, ...] = SIZES) -> list[Figure]:
    results: dict[int, dict[str, Any]] = {}
    for n in sizes:
        log(f"dedup: {n:,} articles (child process)")
        child = run_child([sys.executable, "-m", "bench.dedup", "--child", str(n)], timeout=3600)
        if child.code != 0:
            return [Figure("dedup", f"{n:,} articles", None, note=f"child failed: {child.stderr[-400:]}")]
        results[n] = json.loads(child.stdout.strip().splitlines()[-1])
    small, big = results[sizes[0]], results[sizes[-1]]
    figures = []
    for n, r in results.items():
        is_big = n == sizes[-1]
        figures.append(Figure(
            "dedup", f"{n:,} articles: time per article", round(r["us_per_article"]), "µs",
            round(small["us_per_article"]), f"µs at {sizes[0]:,}", ratio(r["us_per_article"], small["us_per_article"]),
            f"≤ {TARGET:g}× at {n:,}" if is_big else "",
            (r["us_per_article"] <= TARGET * small["us_per_article"]) if is_big else None,
            f"index part {r['us_index']:.0f} µs (features+signature {r['us_features']:.0f} µs); "
            f"comparisons/article: duplicates {r['dup_comparisons']:.2f}, stories {r['story_comparisons']:.1f}; "
            f"{r['copies_found']:,} copies found in the timed {r['tail']:,}; story pairs of those: precision "
            f"{_pct(r['pair_precision'])}, recall {_pct(r['pair_recall'])}; {r['stories']:,} stories; "
            f"fill {r['fill_seconds']:.0f} s, timed part {r['tail_seconds']:.1f} s"))
        figures.append(Figure(
            "dedup", f"{n:,} articles: peak RSS", round(r["peak_rss"] / 2**20), "MiB",
            round(small["peak_rss"] / 2**20), f"MiB at {sizes[0]:,}", ratio(r["peak_rss"], small["peak_rss"]),
            note=f"RSS growth while indexing {r['rss_growth'] / 2**20:.0f} MiB "
                 f"({r['rss_growth'] / n / 1024:.1f} KiB/article)"))
    figures.append(Figure(
        "dedup", f"index part per article, {sizes[-1]:,} vs {sizes[0]:,}", round(big["us_index"]), "µs",
        round(small["us_index"]), f"µs at {sizes[0]:,}", ratio(big["us_index"], small["us_index"]),
        note="look-ups and insertions only (DuplicateIndex + StoryIndex), the part that could grow with size"))
    return figures


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.dedup", description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", type=int, metavar="N", help="measure N articles here, print JSON")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated sizes")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child)))
        return 0
    from bench.common import machine
    from bench.report import print_table

    print_table(run(tuple(int(s) for s in args.sizes.split(","))), machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())

