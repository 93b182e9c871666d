"""Quality on the replay fixtures, through the real pipeline, next to the speed figures.

The fixture outlets (tests/fixtures/outlets, those with expected articles) are served on
127.0.0.1 and crawled by `veille crawl` into a fresh SQLite file; the stored
articles, pages, topics and stories are then compared with each outlet's expected.yaml:

- extraction: share of `keep` sentences found in the stored text, share of `drop`
  boilerplate strings absent from it (every expected page, through the article it
  was stored as or folded into);
- titles, dates (local date in Africa/Casablanca) and language: share correct, on the
  pages stored as their own article;
- classification: precision and recall of the topic maroc-france-securite;
- duplicates: share of expected copies/updates linked to their original (folded into
  it, or one stored with `duplicate_of` pointing at the other), and share where the
  original is the one the pipeline took for the original;
- clustering: pairwise precision, recall and F1 — two pages of one `event` should share
  a story, other pairs should not;
- coverage: expected articles stored; `skipped` pages not stored as articles.

The crawl runs REPEATS times: its order depends on concurrency, and the order can change
which copy is taken for the original or whether two reports meet in one story. Each
figure is the mean over the crawls, the note gives the range and the worst crawl's misses.

`python -m bench.quality` prints the figures as a Markdown table (for the README).
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bench.common import Figure, bench_config, log, run_child, write_config

TOPIC = "maroc-france-securite"
LOCAL = ZoneInfo("Africa/Casablanca")
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "outlets"
REPEATS = 3  # crawls of the fixtures: concurrency makes the crawl order, and so some results, vary


@dataclass
class Share:
    ok: int = 0
    total: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, ok: bool, what: str = "") -> None:
        self.total += 1
        self.ok += ok
        if not ok and what and len(self.misses) < 8:
            self.misses.append(what)

    @property
    def value(self) -> float | None:
        return self.ok / self.total if self.total else None


def expected_outlets(root: Path = FIXTURES) -> dict[str, dict[str, Any]]:
    out = {}
    for f in sorted(root.glob("*/expected.yaml")):
        data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        if data.get("articles"):
            out[f.parent.name] = data
    return out


def crawl_fixtures(workdir: Path, root: Path = FIXTURES) -> tuple[Path, dict[str, str], int]:
    """Crawl the fixture outlets with articles into workdir/quality.db; (db, bases, exit code)."""
    from veille.crawler.replay import ReplayServer

    expected = expected_outlets(root)
    db = workdir / "quality.db"
    with ReplayServer(root, list(expected)) as srv:
        cfg = write_config(workdir / "quality.yaml", bench_config(
            srv.outlet_configs(), db, crawl={"concurrency_per_domain": 4, "timeout": 10, "retries": 0}))
        run = run_child([sys.executable, "-m", "veille.cli", "crawl", "--config", str(cfg), "--quiet"], timeout=600)
        bases = {o: srv.base(o) for o in expected}
    if run.code != 0:
        log(f"quality: crawl exited {run.code}: {run.stderr[-500:]}")
    return db, bases, run.code


def _local_date(value: Any) -> str | None:
    if value is None:
        return None
    dt = datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        from datetime import UTC

        dt = dt.replace(tzinfo=UTC)  # storage keeps UTC
    return dt.astimezone(LOCAL).date().isoformat()


def evaluate(db: Path, bases: dict[str, str], root: Path = FIXTURES) -> dict[str, Share | float | None]:
    """Compare the stored crawl with expected.yaml; see the module docstring."""
    from veille.crawler.canonical import canonical_url

    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    pages = {r["url"]: r for r in con.execute("select url, kind, article_id from pages")}
    arts = {r["id"]: r for r in con.execute(
        "select id, url, title, text, published, language, story_id, duplicate_of_id from articles")}
    flagged = {r[0] for r in con.execute("select article_id from topic_matches where topic = ?", (TOPIC,))}
    con.close()

    s: dict[str, Share] = defaultdict(Share)
    tp = fp = fn = 0
    members: list[tuple[str, int | None, str]] = []  # (event, story, page) per expected page
    titles: dict[int, set[str]] = defaultdict(set)  # expected titles of the pages an article holds
    own: list[tuple[str, Any]] = []
    url_of: dict[str, str] = {}
    for outlet, exp in expected_outlets(root).items():
        for a in exp["articles"]:
            url_of[f"{outlet}:{a['path']}"] = canonical_url(bases[outlet] + a["path"]) or ""
    for outlet, exp in expected_outlets(root).items():
        for a in exp["articles"]:
            key = f"{outlet}:{a['path']}"
            page = pages.get(url_of[key])
            row = arts.get(page["article_id"]) if page is not None and page["article_id"] else None
            s["stored"].add(row is not None, key)
            if row is None:
                fn += bool(a.get("on_topic"))
                members.append((a.get("event") or f"solo:{key}", None, key))
                continue
            text = row["text"] or ""
            for sentence in a.get("keep") or []:
                s["keep"].add(sentence in text, f"{key}: {sentence[:60]}")
            for junk in a.get("drop") or []:
                s["drop"].add(junk not in text, f"{key}: {junk[:60]}")
            titles[row["id"]].add(a["title"])
            if row["url"] == url_of[key]:  # stored as its own article, not folded into another
                own.append((key, row))
                got = _local_date(row["published"])
                s["date"].add(got == str(a["published"]), f"{key}: {got} ≠ {a['published']}")
                s["language"].add(row["language"] == a["language"], f"{key}: {row['language']}")
            predicted = row["id"] in flagged
            tp += predicted and bool(a.get("on_topic"))
            fp += predicted and not a.get("on_topic")
            fn += (not predicted) and bool(a.get("on_topic"))
            if a.get("duplicate_of"):
                original = pages.get(url_of.get(a["duplicate_of"], ""))
                target = arts.get(original["article_id"]) if original is not None else None
                right = target is not None and (row["id"] == target["id"] or row["duplicate_of_id"] == target["id"])
                linked = right or (target is not None and target["duplicate_of_id"] == row["id"])
                s["duplicates"].add(linked, key)
                s["originals"].add(right, f"{key}: the copy was taken for the original")
            members.append((a.get("event") or f"solo:{key}", row["story_id"], key))
        for path in exp.get("skipped") or []:
            page = pages.get(canonical_url(bases[outlet] + path) or "")
            s["skipped"].add(page is None or page["kind"] == "skipped", f"{outlet}:{path}")

    for key, row in own:  # an article's title follows its newest version (an update's)
        s["title"].add(row["title"] in titles[row["id"]], f"{key}: {row['title']!r}")
    both = same_story = same_event = 0
    for i, (ev_i, st_i, key_i) in enumerate(members):
        for ev_j, st_j, key_j in members[i + 1:]:
            shared = st_i is not None and st_i == st_j
            same_story += shared
            same_event += ev_i == ev_j
            both += shared and ev_i == ev_j
            s["pairs"].add(shared == (ev_i == ev_j), f"{ev_i}/{ev_j}: {key_i} {key_j}"
                           f" {'joined' if shared else 'split'}")
    p = both / same_story if same_story else None
    r = both / same_event if same_event else None
    out: dict[str, Share | float | None] = dict(s)
    out["topic_precision"] = tp / (tp + fp) if tp + fp else None
    out["topic_recall"] = tp / (tp + fn) if tp + fn else None
    out["pairs_precision"], out["pairs_recall"] = p, r
    out["pairs_f1"] = 2 * p * r / (p + r) if p and r else 0.0
    out["counts"] = float(len(members))
    return out


LABELS = {
    "stored": "expected articles stored",
    "keep": "extraction: keep sentences kept",
    "drop": "extraction: boilerplate dropped",
    "title": "titles exact",
    "date": "dates correct",
    "language": "language correct",
    "duplicates": "duplicates linked (either way)",
    "originals": "duplicates: the original identified",
    "skipped": "non-articles not stored",
    "pairs": "stories: pairs judged right",
}


def run(workdir: Path | None = None, repeats: int = REPEATS) -> list[Figure]:
    """Crawl the fixtures `repeats` times (crawl order varies with concurrency) and report
    the mean of each figure, with its range and the misses of the worst crawl."""
    results = []
    codes = []
    with tempfile.TemporaryDirectory(prefix="veille-quality-") as tmp:
        for i in range(repeats):
            work = Path(workdir or tmp) / f"crawl{i}"
            work.mkdir(parents=True, exist_ok=True)
            log(f"quality: crawl {i + 1}/{repeats} of the replay fixtures (veille crawl)")
            db, bases, code = crawl_fixtures(work)
            codes.append(code)
            results.append(evaluate(db, bases))
    figures: list[Figure] = []
    for key, label in LABELS.items():
        shares = [r[key] for r in results if isinstance(r.get(key), Share)]
        values = [sh.value for sh in shares if isinstance(sh, Share) and sh.value is not None]
        if not values:
            continue
        worst = min(shares, key=lambda sh: sh.value if isinstance(sh, Share) and sh.value is not None else 1.0)
        assert isinstance(worst, Share)
        figures.append(Figure("quality", label, sum(values) / len(values), "share", note=_spread(values)
                              + f"{worst.ok}/{worst.total} in the worst crawl"
                              + (f"; misses: {worst.misses}" if worst.misses else "")))
    for key, label in (("topic_precision", f"topic {TOPIC}: precision"), ("topic_recall", f"topic {TOPIC}: recall"),
                       ("pairs_precision", "stories: pairwise precision"), ("pairs_recall", "stories: pairwise recall"),
                       ("pairs_f1", "stories: pairwise F1")):
        values = [v for r in results if isinstance(v := r.get(key), float)]
        figures.append(Figure("quality", label, sum(values) / len(values) if values else None, "share",
                              note=_spread(values).rstrip("; ")))
    if any(codes):
        figures.append(Figure("quality", "crawl exit codes", None, note=f"{codes}: a fixture crawl failed"))
    return figures


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    if min(values) == max(values):
        return f"same in all {len(values)} crawls; "
    return f"mean of {len(values)} crawls, min {min(values):.3f}, max {max(values):.3f}; "


def markdown(figures: list[Figure]) -> str:
    lines = ["| figure | value | detail |", "|---|---:|---|"]
    for f in figures:
        value = "—" if f.value is None else f"{f.value:.3f}" if f.unit == "share" else f"{f.value:g}"
        detail = f.note.split("; misses")[0].split(" in the worst")[0] if f.note else ""
        lines.append(f"| {f.name} | {value} | {detail} |")
    return "\n".join(lines)


def main() -> int:
    figures = run()
    print(markdown(figures))
    misses = [f for f in figures if "misses" in f.note]
    for f in misses:
        print(f"\n{f.name}: {f.note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
