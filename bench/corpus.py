"""A synthetic corpus of news outlets in the replay format (tests/fixtures/outlets/README.md).

`generate(root, n)` writes `n` article pages spread over six outlets (three French, two
Arabic, one English; SPIP, WordPress and Arc XP markup with their boilerplate), each
outlet a folder `crawler.replay.ReplayServer(root)` serves: outlet.yaml, routes.yaml,
expected.yaml, robots.txt, an RSS feed of the latest items and sitemaps listing every
article. Deterministic for a seed; about 2,000 pages a second.

What is in it (the shares are parameters, the counts land in manifest.json):

- *events*, each reported by one to four outlets in their own language and words
  (sentences composed from `bench.vocab`: fact templates of the event's kind plus
  filler composed from banks), sharing the event's names, places, numbers and dates;
- a share of events on the topic maroc-france-securite (arrests on Interpol notices,
  DGST tip-offs, visits, deployments) among economy, sport, culture, weather,
  politics, Morocco–Spain security and Morocco–France trade;
- near-duplicates: syndicated copies (a dispatch republished by another outlet of the
  same language) and updates (the same outlet, a new URL, one paragraph more).

`python -m bench.corpus DIR [-n N] [--seed S]` writes one to look at.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from itertools import islice
from pathlib import Path

from bench import vocab as v
from bench.pages import Brand, Link, article_html, rss, sitemap_index, urlset

BASE = "{{BASE}}"
MOROCCO = timezone(timedelta(hours=1), "+01")  # what Moroccan outlets print
START = datetime(2024, 12, 1, tzinfo=MOROCCO)
SPAN_DAYS = 90
FEED_ITEMS = 30
SITEMAP_CHUNK = 250
ON_TOPIC_SHARE = 0.2
COPY_SHARE = 0.06  # syndicated copies, of all pages
UPDATE_SHARE = 0.04  # updates under a new URL, of all pages
REPORTERS = (1, 1, 1, 1, 2, 2, 2, 3, 3, 4)  # outlets reporting one event (uniform pick)
LANG_WEIGHT = {"fr": 3, "ar": 2, "en": 1}


@dataclass(frozen=True)
class OutletSpec:
    name: str
    brand: Brand
    pattern: str  # article_pattern regex (YAML-escaped when written)
    scheme: str = ""  # URL scheme (see `_path`); "" = the one of the outlet named `name`

    @property
    def lang(self) -> str:
        return self.brand.lang

    @property
    def url_scheme(self) -> str:
        if self.scheme:
            return self.scheme
        if self.brand.style == "wp":
            return {"bench-wp-fr": "wp-fr", "bench-wp-en": "wp-en"}.get(self.name, "wp-ar")
        return self.brand.style


def _brand(site: str, lang: str, style: str, cookie: str, newsletter: str, related: str,
           also: str, menu: str, footer: str) -> Brand:
    return Brand(site, lang, style, cookie, newsletter, related, also, tuple(menu.split("|")), footer)


OUTLETS: tuple[OutletSpec, ...] = (
    OutletSpec("bench-spip-fr", _brand(
        "Portail Maghreb", "fr", "spip",
        "Portail Maghreb et ses partenaires déposent des cookies pour mesurer l'audience et personnaliser les publicités.",
        "Chaque matin, l'essentiel de l'actualité du Maroc dans votre boîte mail.",
        "Ces articles devraient vous intéresser :", "À lire :",
        "Accueil|Maroc|Marocains du monde|Économie|Sport|Culture|Vidéos|Forum|Annonces",
        "© 2001-2025 Portail Maghreb - Tous droits réservés."), r",\d+\.html$"),
    OutletSpec("bench-wp-fr", _brand(
        "L'Écho du Matin", "fr", "wp",
        "Nous utilisons des cookies pour vous garantir la meilleure expérience sur notre site.",
        "Inscrivez-vous à la newsletter de L'Écho du Matin et recevez nos alertes.",
        "Articles similaires", "Lire aussi :",
        "Nation|Monde|Économie|Régions|Sports|Culture|Société|Opinions|Podcasts|Vidéos|Archives",
        "© 2025 L'Écho du Matin. Reproduction interdite."), r"/\d{4}/\d{2}/\d{2}/[a-z0-9-]+/$"),
    OutletSpec("bench-arc-fr", _brand(
        "Atlas360", "fr", "arc",
        "Atlas360 utilise des traceurs pour la mesure d'audience et la publicité ciblée. Vous pouvez accepter ou refuser.",
        "Recevez chaque soir le meilleur d'Atlas360 : inscrivez-vous gratuitement.",
        "Les plus lus", "Lire aussi",
        "Politique|Économie|Société|Monde|Sport|Culture|Médias|Tech|Vidéos|Opinions",
        "Atlas360 © 2025 - Tous droits réservés"), r"_[A-Z0-9]{26}/$"),
    OutletSpec("bench-wp-ar", _brand(
        "صدى المغرب", "ar", "wp",
        "يستخدم هذا الموقع ملفات تعريف الارتباط لتحسين تجربتك وقياس عدد الزوار.",
        "اشترك في النشرة البريدية لصدى المغرب لتصلك آخر الأخبار.",
        "مقالات ذات صلة", "اقرأ أيضا:",
        "الرئيسية|سياسة|اقتصاد|مجتمع|رياضة|فن وثقافة|دولية|جهات|رأي|فيديو",
        "جميع الحقوق محفوظة © صدى المغرب 2025"), r"-\d+\.html$"),
    OutletSpec("bench-arc-ar", _brand(
        "أطلس 360", "ar", "arc",
        "يستعمل أطلس 360 أدوات تتبع لقياس الجمهور والإعلانات الموجهة، يمكنك القبول أو الرفض.",
        "توصل كل مساء بأفضل ما نشره أطلس 360: سجل مجانا.",
        "الأكثر قراءة", "اقرأ أيضا",
        "سياسة|اقتصاد|مجتمع|دولي|رياضة|ثقافة|إعلام|تكنولوجيا|فيديو",
        "أطلس 360 © 2025 جميع الحقوق محفوظة"), r"_[A-Z0-9]{26}/$"),
    OutletSpec("bench-wp-en", _brand(
        "Maghreb Daily News", "en", "wp",
        "We use cookies to improve your experience and to measure our audience.",
        "Sign up for the Maghreb Daily News newsletter and never miss a story.",
        "Related posts", "Read also:",
        "News|Politics|Economy|Society|World|Sports|Culture|Travel|Opinion|Videos",
        "© 2025 Maghreb Daily News. All rights reserved."), r"/\d{4}/\d{2}/\d+/[a-z0-9-]+/$"),
)


@dataclass
class Report:
    """One article page of the corpus and what a correct pipeline must make of it."""

    outlet: str
    lang: str
    event: str
    kind: str
    on_topic: bool
    title: str
    paragraphs: list[str]
    published: datetime
    author: str
    duplicate_of: int | None = None  # index of the original Report
    copy_kind: str | None = None  # syndicated | update
    path: str = ""
    keep: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- text


def _slots(rng: random.Random, when: datetime) -> dict[str, dict[str, str]]:
    """The facts of one event, in each language."""
    i_first = rng.randrange(len(v.FIRST_NAMES["fr"]))
    initial = rng.choice(v.INITIALS)
    month = when.month - 1
    day = str(when.day)
    nums = {"age": str(rng.randint(22, 64)), "n": str(rng.randint(3, 60)), "kg": str(rng.randint(80, 9000)),
            "pct": str(rng.randint(2, 48)), "amount": str(rng.randint(20, 4000)), "mm": str(rng.randint(12, 140)),
            "score": f"{rng.randint(0, 4)}-{rng.randint(0, 3)}", "day": day}
    picks = {k: rng.randrange(len(bank["fr"])) for k, bank in (
        ("mcity", v.MOROCCAN_CITIES), ("fcity", v.FRENCH_CITIES), ("scity", v.SPANISH_CITIES),
        ("official", v.OFFICIALS), ("event", v.EVENTS), ("drug", v.DRUGS), ("sector", v.SECTORS),
        ("team", v.TEAMS), ("festival", v.FESTIVALS), ("artist", v.ARTISTS), ("region", v.REGIONS),
        ("law", v.LAWS))}
    banks = {"mcity": v.MOROCCAN_CITIES, "fcity": v.FRENCH_CITIES, "scity": v.SPANISH_CITIES,
             "official": v.OFFICIALS, "event": v.EVENTS, "drug": v.DRUGS, "sector": v.SECTORS,
             "team": v.TEAMS, "festival": v.FESTIVALS, "artist": v.ARTISTS, "region": v.REGIONS,
             "law": v.LAWS}
    out: dict[str, dict[str, str]] = {}
    for lang in v.LANGS:
        s = dict(nums)
        s.update({k: banks[k][lang][i] for k, i in picks.items()})
        s["month"] = v.MONTHS[lang][month]
        first = v.FIRST_NAMES[lang][i_first]
        s["suspect"] = f"{first} {v.INITIALS_AR[initial]}." if lang == "ar" else f"{first} {initial}."
        out[lang] = s
    people = [(rng.randrange(len(v.FIRST_NAMES["fr"])), rng.randrange(len(v.LAST_NAMES["fr"])))
              for _ in range(3)]
    place = rng.randrange(len(v.PLACES["fr"]))
    extra = {"n2": str(rng.randint(11, 250)), "hour": str(rng.randint(2, 23))}
    for lang in v.LANGS:
        for k, (f, last) in enumerate(people):
            out[lang][f"person{k}"] = f"{v.FIRST_NAMES[lang][f]} {v.LAST_NAMES[lang][last]}"
        out[lang]["place"] = v.PLACES[lang][place]
        out[lang].update(extra)
    return out


def _filler(rng: random.Random, lang: str, domain: str, slots: dict[str, str]) -> str:
    opener = rng.choice(v.OPENERS[lang])
    subject = rng.choice(v.SUBJECTS[domain][lang])
    verb = rng.choice(v.VERBS[lang])
    obj = rng.choice(v.OBJECTS[domain][lang])
    comp = rng.choice(v.COMPLEMENTS[lang])
    tail = rng.choice(v.TAILS[lang]).replace("{n}", str(rng.randint(2, 40)))
    if lang == "ar":
        sentence = f"{opener}{verb}{'' if verb.endswith('ب') else ' '}{subject} {obj} {comp}{tail}."
        return sentence.replace("  ", " ")
    text = f"{subject} {verb} {obj} {comp}{tail}."
    if opener:
        return opener + text
    return text[0].upper() + text[1:]


def _write(rng: random.Random, kind: str, lang: str, slots: dict[str, str]) -> tuple[str, list[str], list[str]]:
    """Title, paragraphs and two sentences that must survive extraction."""
    facts = [f.format(**slots) for f in v.FACTS[kind][lang]]
    chosen = [facts[0]] + rng.sample(facts[1:], rng.randint(min(2, len(facts) - 1), len(facts) - 1))
    details = v.DETAILS[v.DOMAIN[kind]][lang]
    picked = details[int(slots["n2"]) % len(details):] + details  # the event's own details first
    for k, d in enumerate(picked[:rng.randint(2, 3)]):
        chosen.insert(rng.randint(1, len(chosen)), d.format(**slots, person=slots[f"person{k}"]))
    size = rng.random()
    fillers = rng.randint(4, 7) if size < 0.3 else rng.randint(8, 18) if size < 0.8 else rng.randint(20, 45)
    sentences = list(chosen)
    for _ in range(fillers):
        sentences.insert(rng.randint(1, len(sentences)), _filler(rng, lang, v.DOMAIN[kind], slots))
    paragraphs: list[str] = []
    i = 0
    while i < len(sentences):
        k = rng.randint(2, 4) if i else 1  # the lead alone
        paragraphs.append(" ".join(sentences[i:i + k]))
        i += k
    title = rng.choice(v.TITLES[kind][lang]).format(**slots)
    keep = [s for s in chosen[1:3]]
    return title[0].upper() + title[1:], paragraphs, keep


# ---------------------------------------------------------------- plan


def iter_reports(seed: int = 7, outlets: tuple[OutletSpec, ...] = OUTLETS,
                 on_topic_share: float = ON_TOPIC_SHARE, copy_share: float = COPY_SHARE,
                 update_share: float = UPDATE_SHARE, per_day: float | None = None,
                 start: datetime = START, span_days: float = SPAN_DAYS) -> Iterator[Report]:
    """An endless stream of reports, event by event (copies right after their original).

    Args:
        seed: same seed, same stream.
        outlets: who reports.
        on_topic_share: share of events on the topic maroc-france-securite.
        copy_share: share of reports followed by a syndicated copy in another outlet.
        update_share: share of reports followed by an update under a new URL.
        per_day: None: events spread at random over `span_days` (a corpus crawled at
            once); a number: reports arrive at that many a day, in time order (a
            long-running feed, for the dedup benchmark).
        start, span_days: when events happen (from `start`, over `span_days`).
    """
    rng = random.Random(seed)
    by_lang: dict[str, list[OutletSpec]] = defaultdict(list)
    for o in outlets:
        by_lang[o.lang].append(o)
    produced = 0
    n_event = 0
    spread = 48.0 if per_day is None else 12.0  # hours between an event and its reports
    while True:
        n_event += 1
        on_topic = rng.random() < on_topic_share
        kind = rng.choice(v.ON_TOPIC_KINDS if on_topic else v.OFF_TOPIC_KINDS)
        if per_day is None:
            when = start + timedelta(days=rng.uniform(0, span_days))
        else:
            when = start + timedelta(days=produced / per_day)
        slots = _slots(rng, when)
        for o in rng.sample(list(outlets), min(rng.choice(REPORTERS), len(outlets))):
            title, paragraphs, keep = _write(rng, kind, o.lang, slots[o.lang])
            published = when + timedelta(hours=rng.uniform(0, spread))
            author = rng.choice(("H.K", "S.A", "Y.M", "R.B", "N.E", "MAP", "La rédaction", "A.T"))
            original = produced
            yield Report(o.name, o.lang, f"B{n_event}", kind, on_topic, title, paragraphs,
                         published, author, keep=keep)
            produced += 1
            r = rng.random()
            if r < copy_share and len(by_lang[o.lang]) > 1:
                other = rng.choice([x for x in by_lang[o.lang] if x.name != o.name])
                yield Report(other.name, o.lang, f"B{n_event}", kind, on_topic, title,
                             list(paragraphs), published + timedelta(hours=rng.uniform(1, 6)),
                             "MAP", original, "syndicated", keep=keep)
                produced += 1
            elif r < copy_share + update_share:
                later = published + timedelta(hours=rng.uniform(6, 30))
                extra = v.UPDATE_LINES[o.lang].format(**slots[o.lang])
                mark = {"fr": " (actualisé)", "ar": " (محين)", "en": " (updated)"}[o.lang]
                yield Report(o.name, o.lang, f"B{n_event}", kind, on_topic, title + mark,
                             paragraphs + [extra], later, author, original, "update", keep=keep)
                produced += 1


def plan(n: int, seed: int = 7, outlets: tuple[OutletSpec, ...] = OUTLETS, *,
         start: datetime = START, span_days: float = SPAN_DAYS, **shares: float) -> list[Report]:
    """The corpus as data: exactly `n` reports (see `iter_reports`), in event order."""
    return list(islice(iter_reports(seed, outlets, start=start, span_days=span_days, **shares), n))


def plan_per_outlet(per_outlet: int, seed: int = 7, outlets: tuple[OutletSpec, ...] = OUTLETS, *,
                    start: datetime = START, span_days: float = SPAN_DAYS, **shares: float) -> list[Report]:
    """Exactly `per_outlet` reports for every outlet (many outlets would otherwise get
    none): the stream of `iter_reports`, each report kept while its outlet still needs
    one. A copy whose original was not kept is an original of its own."""
    kept: list[Report] = []
    where: dict[int, int] = {}  # index in the stream -> index in `kept`
    need = {o.name: per_outlet for o in outlets}
    left = per_outlet * len(outlets)
    for i, r in enumerate(iter_reports(seed, outlets, start=start, span_days=span_days, **shares)):
        if left == 0:
            break
        if need[r.outlet] == 0:
            continue
        need[r.outlet] -= 1
        left -= 1
        if r.duplicate_of is not None:
            r.duplicate_of = where.get(r.duplicate_of)
            r.copy_kind = r.copy_kind if r.duplicate_of is not None else None
        where[i] = len(kept)
        kept.append(r)
    return kept


def many_outlets(n: int) -> tuple[OutletSpec, ...]:
    """`n` outlets made from the six of OUTLETS in turn (their language, CMS and URL
    scheme), each with its own name and site name: three French, two Arabic and one
    English in every six."""
    out = []
    for k in range(n):
        base = OUTLETS[k % len(OUTLETS)]
        b = base.brand
        tag = f" {k + 1}"
        brand = Brand(b.site + tag, b.lang, b.style, b.cookie, b.newsletter.replace(b.site, b.site + tag),
                      b.related_head, b.read_also, b.menu, b.footer.replace(b.site, b.site + tag))
        name = f"o{k + 1:03d}-{base.name.removeprefix('bench-')}"
        out.append(OutletSpec(name, brand, base.pattern, base.url_scheme))
    return tuple(out)


def _arc_id(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(26))


def _ascii_slug(text: str, rng: random.Random) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = ["".join(c for c in w if c.isalnum()) for w in folded.split()]
    slug = "-".join(w for w in words if w)[:70].strip("-")
    return slug or f"article-{rng.randrange(10**6)}"


def _path(o: OutletSpec, r: Report, serial: int, rng: random.Random) -> str:
    slug = _ascii_slug(r.title, rng)
    d = r.published
    scheme = o.url_scheme
    if scheme == "spip":
        return f"/{slug},{100000 + serial}.html"
    if scheme == "wp-fr":
        return f"/{d:%Y/%m/%d}/{slug}-{serial}/"
    if scheme == "wp-en":
        return f"/{d:%Y/%m}/{300000 + serial}/{slug}/"
    if scheme == "wp-ar":  # Arabic WordPress: section and id
        return f"/{rng.choice(('siyasa', 'mujtamaa', 'iqtisad', 'riyada'))}/{slug or 'khabar'}-{500000 + serial}.html"
    section = {"security": "societe", "economy": "economie", "society": "culture"}[v.DOMAIN[r.kind]]
    return f"/{section}/{d:%Y/%m/%d}/{slug}_{_arc_id(rng)}/"


# ---------------------------------------------------------------- files


@dataclass
class Manifest:
    root: str
    seed: int
    pages: int
    outlets: dict[str, int]
    languages: dict[str, int]
    events: int
    on_topic_pages: int
    syndicated_copies: int
    updates: int
    bytes: int
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _q(value: object) -> str:
    """A YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def generate(root: Path, n: int = 2000, seed: int = 7, outlets: tuple[OutletSpec, ...] = OUTLETS, *,
             start: datetime = START, span_days: float = SPAN_DAYS, per_outlet: int | None = None,
             **shares: float) -> Manifest:
    """Write the corpus under `root` (one folder per outlet) and return its manifest.

    Args:
        root: an empty or missing folder.
        n: article pages in all.
        seed: same seed, same corpus (byte for byte).
        outlets: the outlets to spread pages over.
        start, span_days: events happen from `start` over `span_days` days.
        per_outlet: exactly this many pages per outlet instead (`n` is then ignored).
        shares: on_topic_share, copy_share, update_share (see `plan`).
    """
    t0 = time.perf_counter()
    rng = random.Random(seed + 1)
    if per_outlet is not None:
        reports = plan_per_outlet(per_outlet, seed, outlets, start=start, span_days=span_days, **shares)
    else:
        reports = plan(n, seed, outlets, start=start, span_days=span_days, **shares)
    specs = {o.name: o for o in outlets}
    per_outlet: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(sorted(range(len(reports)), key=lambda i: reports[i].published)):
        rep = reports[r]
        rep.path = _path(specs[rep.outlet], rep, i, rng)
        per_outlet[rep.outlet].append(r)
    total = 0
    for name, idx in per_outlet.items():
        total += _write_outlet(Path(root) / name, specs[name], reports, idx, rng)
    counts = Counter(r.copy_kind for r in reports if r.duplicate_of is not None)
    manifest = Manifest(str(root), seed, len(reports), {k: len(x) for k, x in per_outlet.items()},
                        dict(Counter(r.lang for r in reports)), len({r.event for r in reports}),
                        sum(r.on_topic for r in reports), counts["syndicated"], counts["update"],
                        total, round(time.perf_counter() - t0, 2))
    (Path(root) / "manifest.json").write_text(json.dumps(manifest.as_dict(), indent=2), encoding="utf-8")
    return manifest


def _write_outlet(folder: Path, o: OutletSpec, reports: list[Report], idx: list[int],
                  rng: random.Random) -> int:
    (folder / "articles").mkdir(parents=True, exist_ok=True)
    base = BASE
    links = [Link(base + reports[i].path, reports[i].title, reports[i].paragraphs[0][:160]) for i in idx]
    routes = ['"/robots.txt": {file: robots.txt, type: text/plain}']
    expected = ["articles:"]
    written = 0
    for pos, i in enumerate(idx):
        r = reports[i]
        ticker = links[max(0, pos - 4):pos] or links[pos + 1:pos + 5]
        related = [links[j] for j in rng.sample(range(len(links)), min(4, len(links))) if j != pos][:3]
        inline = related[0] if related else None
        html = article_html(o.brand, base, base + r.path, r.title, r.paragraphs,
                            r.published.isoformat(timespec="seconds"), r.author, ticker, related, inline)
        fname = f"articles/{pos:05d}.html"
        data = html.encode("utf-8")
        (folder / fname).write_bytes(data)
        written += len(data)
        routes.append(f"{_q(r.path)}: {{file: {fname}}}")
        dup = reports[r.duplicate_of] if r.duplicate_of is not None else None
        own = " ".join(r.paragraphs)
        drops = [o.brand.cookie, o.brand.newsletter] + [lk.teaser for lk in related[-1:] if lk.teaser not in own]
        expected.append(
            f"  - path: {_q(r.path)}\n    title: {_q(r.title)}\n    published: {r.published.date()}\n"
            f"    language: {r.lang}\n    on_topic: {_q(r.on_topic)}\n    event: {r.event}\n"
            f"    duplicate_of: {_q(f'{dup.outlet}:{dup.path}' if dup else None)}\n"
            f"    kind: {r.kind}\n    keep: {_q(r.keep)}\n    drop: {_q(drops)}")
    expected += ["skipped: []", "never_requested: []"]
    newest = sorted(idx, key=lambda i: reports[i].published, reverse=True)
    feed_items = [(base + reports[i].path, reports[i].title, format_datetime(reports[i].published),
                   reports[i].paragraphs[0][:200]) for i in newest[:FEED_ITEMS]]
    feed_path = "/spip.php?page=backend" if o.brand.style == "spip" else "/feed/"
    (folder / "feed.xml").write_text(rss(o.brand, base, base + feed_path, feed_items), encoding="utf-8")
    routes.append(f"{_q(feed_path)}: {{file: feed.xml, type: application/rss+xml}}")
    chunks = [newest[k:k + SITEMAP_CHUNK] for k in range(0, len(newest), SITEMAP_CHUNK)]
    children = []
    for k, chunk in enumerate(chunks, 1):
        entries = [(base + reports[i].path, reports[i].published.isoformat(timespec="seconds")) for i in chunk]
        (folder / f"sitemap-{k}.xml").write_text(urlset(entries), encoding="utf-8")
        routes.append(f'"/sitemap-posts-{k}.xml": {{file: sitemap-{k}.xml, type: application/xml}}')
        children.append((f"{base}/sitemap-posts-{k}.xml", entries[0][1]))
    (folder / "sitemap-index.xml").write_text(sitemap_index(children), encoding="utf-8")
    routes.append('"/sitemap_index.xml": {file: sitemap-index.xml, type: application/xml}')
    (folder / "robots.txt").write_text(
        f"User-agent: *\nDisallow: /wp-admin/\nDisallow: /private/\nSitemap: {base}/sitemap_index.xml\n",
        encoding="utf-8")
    (folder / "routes.yaml").write_text("\n".join(routes) + "\n", encoding="utf-8")
    (folder / "expected.yaml").write_text("\n".join(expected) + "\n", encoding="utf-8")
    (folder / "outlet.yaml").write_text(
        f"name: {o.name}\nurl: \"{base}/\"\nlanguage: {o.lang}\nfeeds: [\"{base}{feed_path}\"]\n"
        f"sitemaps: [\"{base}/sitemap_index.xml\"]\nsections: []\narticle_pattern: {_q(o.pattern)}\n",
        encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.corpus", description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="folder to write the outlets into")
    ap.add_argument("-n", type=int, default=2000, help="article pages (default 2000)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    m = generate(args.root, args.n, args.seed)
    print(json.dumps(m.as_dict(), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
