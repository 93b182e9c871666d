"""Real pages nobody here wrote: veille's extraction and dating next to the libraries it wraps.

`python -m bench.realpages` (also part of `make bench`) reads the public sets in
`../shared/benchmarks/` (see its README; without them it says how to get them):

- ``abe/``: Scrapinghub's article-extraction benchmark, 181 pages, scored with the
  benchmark's own metric (4-token shingles per page; precision and recall averaged over
  pages, an empty output counting recall 0 and left out of the precision average).
  Systems, in one process: veille (`pipeline.extract.extract`), bare `trafilatura.extract`
  with its defaults and with `favor_precision=True`.
- ``dates-mediacloud2020/``: 200 news pages with their publication day, scored as the
  share of pages whose day (as the page states it) is right: veille's date, and
  `htmldate.find_date` with defaults and with `original_date=True`.

Every figure is next to the libraries' figures of the same run: quality is claimed only
that way. Refusals are counted by reason, crashes (an exception escaping a system) apart.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, Figure, log
from veille.crawler.spiders.context import refusal_kind

SHARED = ROOT.parent / "shared" / "benchmarks"
HOW_TO_GET = (
    "real-page sets not found at {path}: put Scrapinghub's article-extraction-benchmark "
    "(html/*.html.gz and ground-truth.json.gz) in abe/ and htmldate's Media Cloud 2020 "
    "evaluation pages (expected.json, html/*.gz) in dates-mediacloud2020/ there "
    "(see shared/benchmarks/README.md)")
TOKEN_RE = re.compile(r"\w+", re.UNICODE)
SHINGLE = 4
FETCHED = datetime(2026, 1, 1, tzinfo=UTC)  # after every page of both sets


# --- the ABE metric, as the benchmark defines it ------------------------------------------

def _shingles(text: str) -> Counter[str]:
    tokens = TOKEN_RE.findall(text or "")
    return Counter(" ".join(tokens[i:i + SHINGLE])
                   for i in range(max(1, len(tokens) - SHINGLE + 1)) if tokens)


def shingle_match(truth: str, output: str) -> tuple[float, float, float]:
    """(tp, fp, fn) over 4-token shingles, normalised to sum 1 (the benchmark's metric)."""
    true, pred = _shingles(truth), _shingles(output)
    tp = fp = fn = 0
    for key in true.keys() | pred.keys():
        t, p = true.get(key, 0), pred.get(key, 0)
        tp += min(t, p)
        fp += max(0, p - t)
        fn += max(0, t - p)
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def scores(matches: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """(precision, recall, F1) averaged over pages as the benchmark does."""
    precision = statistics.mean([tp / (tp + fp) for tp, fp, _ in matches if tp + fp > 0] or [0.0])
    recall = statistics.mean([tp / (tp + fn) if tp + fn > 0 else 0.0 for tp, _, fn in matches])
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


# --- systems ------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one system made of one page."""

    text: str = ""
    refused: str | None = None  # veille's named reason, or "empty output"
    crashed: str | None = None  # an exception that escaped the system
    seconds: float = 0.0


@dataclass
class SystemRun:
    name: str
    pages: dict[str, Outcome] = field(default_factory=dict)


def _timed(fn: Callable[[bytes, str], Outcome], body: bytes, url: str) -> Outcome:
    t0 = time.perf_counter()
    try:
        out = fn(body, url)
    except Exception as exc:  # a crash is a figure here, not a stop
        out = Outcome(crashed=f"{type(exc).__name__}: {exc}"[:200])
    out.seconds = time.perf_counter() - t0
    return out


def veille_extract(body: bytes, url: str) -> Outcome:
    from veille.pipeline.extract import extract
    from veille.pipeline.types import Article, RawPage

    page = RawPage(url=url, final_url=url, outlet="bench", status=200,
                   headers={"content-type": "text/html"}, body=body, fetched_at=FETCHED)
    result = extract(page)
    if isinstance(result, Article):
        return Outcome(text=result.text)
    if result.reason.startswith("extraction error"):
        return Outcome(crashed=result.reason)
    return Outcome(refused=result.reason)


def trafilatura_extract(body: bytes, url: str, **options: Any) -> Outcome:
    import trafilatura

    text = trafilatura.extract(body, url=url, **options)
    return Outcome(text=text or "", refused=None if text else "empty output")


# --- ABE --------------------------------------------------------------------------------

def abe_pages(root: Path) -> Iterator[tuple[str, str, bytes, str]]:
    """(id, url, html bytes, true body) of every ABE page, sorted by id."""
    truth = json.loads(gzip.decompress((root / "ground-truth.json.gz").read_bytes()))
    for key in sorted(truth):
        path = root / "html" / f"{key}.html.gz"
        if path.exists():
            yield key, truth[key].get("url") or "", gzip.decompress(path.read_bytes()), \
                truth[key].get("articleBody") or ""


ABE_SYSTEMS: dict[str, Callable[[bytes, str], Outcome]] = {
    "veille": veille_extract,
    "trafilatura": trafilatura_extract,
    "trafilatura_precision": lambda body, url: trafilatura_extract(body, url, favor_precision=True),
}


def run_abe(root: Path, dump: Path | None = None) -> tuple[list[Figure], dict[str, Any]]:
    pages = list(abe_pages(root))
    runs = {name: SystemRun(name) for name in ABE_SYSTEMS}
    for key, url, body, _ in pages:
        for name, fn in ABE_SYSTEMS.items():
            runs[name].pages[key] = _timed(fn, body, url)
    truth = {key: true for key, _, _, true in pages}
    summary: dict[str, Any] = {"pages": len(pages)}
    for name, run in runs.items():
        matches = {key: shingle_match(truth[key], out.text) for key, out in run.pages.items()}
        p, r, f1 = scores(list(matches.values()))
        refused = Counter(refusal_kind(o.refused) for o in run.pages.values() if o.refused)
        crashes = [f"{k}: {o.crashed}" for k, o in run.pages.items() if o.crashed]
        ms = 1000 * statistics.mean(o.seconds for o in run.pages.values())
        summary[name] = {"precision": p, "recall": r, "f1": f1, "refused": dict(refused),
                         "crashes": crashes, "ms_per_page": ms}
        if dump is not None:
            dump.mkdir(parents=True, exist_ok=True)
            rows = {k: {"tp_fp_fn": matches[k], "refused": o.refused, "crashed": o.crashed,
                        "text": o.text} for k, o in run.pages.items()}
            (dump / f"abe-{name}.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1))
    base, prec = summary["trafilatura"], summary["trafilatura_precision"]
    v = summary["veille"]
    figures = [
        Figure("realpages", "ABE F1 (veille / trafilatura defaults)", v["f1"], "share",
               base["f1"], "trafilatura", v["f1"] / base["f1"], "veille F1 ≥ 0.965",
               v["f1"] >= 0.965),
        Figure("realpages", "ABE recall (veille / trafilatura defaults)", v["recall"], "share",
               base["recall"], "trafilatura", v["recall"] / base["recall"], "ratio ≥ 1.0",
               v["recall"] >= base["recall"]),
        Figure("realpages", "ABE precision (veille / trafilatura defaults)", v["precision"], "share",
               base["precision"], "trafilatura", v["precision"] / base["precision"]),
        Figure("realpages", "ABE F1 trafilatura favor_precision", prec["f1"], "share",
               base["f1"], "trafilatura", prec["f1"] / base["f1"],
               note=f"precision {prec['precision']:.3f}, recall {prec['recall']:.3f}"),
        Figure("realpages", "ABE pages refused by veille", float(sum(v["refused"].values())),
               "pages", float(len(pages)), "pages", note=json.dumps(v["refused"], ensure_ascii=False)),
        Figure("realpages", "ABE crashes (veille)", float(len(v["crashes"])), "pages",
               target="0", met=not v["crashes"], note="; ".join(v["crashes"])[:300]),
        Figure("realpages", "ABE ms/page (veille / trafilatura)", v["ms_per_page"], "ms",
               base["ms_per_page"], "trafilatura", v["ms_per_page"] / base["ms_per_page"]),
    ]
    return figures, summary


# --- Media Cloud dates --------------------------------------------------------------------

def date_pages(root: Path) -> Iterator[tuple[str, str, bytes, str]]:
    """(file, url, html bytes, expected YYYY-MM-DD) of every dated page, sorted by file."""
    expected = json.loads((root / "expected.json").read_text(encoding="utf-8"))
    for url, entry in sorted(expected.items(), key=lambda kv: kv[1]["file"]):
        path = root / "html" / f"{entry['file']}.gz"
        if not path.exists():
            path = root / "html" / entry["file"]
        if path.exists():
            raw = path.read_bytes()
            yield entry["file"], url, gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw, entry["date"]


def veille_day(body: bytes, url: str) -> str | None:
    from veille.pipeline.extract import page_date
    from veille.pipeline.types import RawPage

    page = RawPage(url=url, final_url=url, outlet="bench", status=200,
                   headers={"content-type": "text/html"}, body=body, fetched_at=FETCHED)
    found = page_date(page)
    return found.date().isoformat() if found else None


def htmldate_day(body: bytes, url: str, **options: Any) -> str | None:
    from htmldate import find_date

    return find_date(body, url=url, **options)


DATE_SYSTEMS: dict[str, Callable[[bytes, str], str | None]] = {
    "veille": veille_day,
    "htmldate": htmldate_day,
    "htmldate_original": lambda body, url: htmldate_day(body, url, original_date=True),
}


def run_dates(root: Path, dump: Path | None = None) -> tuple[list[Figure], dict[str, Any]]:
    pages = list(date_pages(root))
    summary: dict[str, Any] = {"pages": len(pages)}
    rows: dict[str, dict[str, Any]] = {}
    for name, fn in DATE_SYSTEMS.items():
        right = crashed = undated = 0
        seconds = 0.0
        for key, url, body, day in pages:
            t0 = time.perf_counter()
            try:
                found = fn(body, url)
            except Exception as exc:  # counted, not a stop
                found, crashed = None, crashed + 1
                rows.setdefault(key, {})[f"{name}_crash"] = f"{type(exc).__name__}: {exc}"[:200]
            seconds += time.perf_counter() - t0
            right += found == day
            undated += found is None
            rows.setdefault(key, {"url": url, "expected": day})[name] = found
        summary[name] = {"accuracy": right / len(pages), "undated": undated, "crashes": crashed,
                         "ms_per_page": 1000 * seconds / len(pages)}
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        (dump / "dates.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1))
    v, base, orig = summary["veille"], summary["htmldate"], summary["htmldate_original"]
    figures = [
        Figure("realpages", "dates day accuracy (veille / htmldate original_date)", v["accuracy"],
               "share", orig["accuracy"], "htmldate original", v["accuracy"] / orig["accuracy"],
               "ratio ≥ 1.0", v["accuracy"] >= orig["accuracy"],
               note=f"undated {v['undated']}, crashes {v['crashes']}"),
        Figure("realpages", "dates day accuracy htmldate defaults", base["accuracy"], "share",
               orig["accuracy"], "htmldate original", base["accuracy"] / orig["accuracy"]),
        Figure("realpages", "dates ms/page (veille / htmldate original_date)", v["ms_per_page"],
               "ms", orig["ms_per_page"], "htmldate original",
               v["ms_per_page"] / orig["ms_per_page"]),
    ]
    return figures, summary


def run(root: Path = SHARED, dump: Path | None = None) -> list[Figure]:
    """Both sets, or one figure saying how to get them when they are missing."""
    figures: list[Figure] = []
    found = False
    if (root / "abe" / "ground-truth.json.gz").exists():
        found = True
        more, summary = run_abe(root / "abe", dump)
        figures += more
        log(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
    if (root / "dates-mediacloud2020" / "expected.json").exists():
        found = True
        more, summary = run_dates(root / "dates-mediacloud2020", dump)
        figures += more
        log(json.dumps(summary, ensure_ascii=False, indent=1))
    if not found:
        msg = HOW_TO_GET.format(path=root)
        log(msg)
        figures.append(Figure("realpages", "not run", None, note=msg))
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.realpages", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=SHARED, help="folder holding abe/ and dates-mediacloud2020/")
    ap.add_argument("--dump", type=Path, help="write every system's output per page here (for analysis)")
    ap.add_argument("--out", type=Path, help="merge the figures into this results.json")
    args = ap.parse_args(argv)
    from bench.common import machine
    from bench.report import print_table, write_json

    figures = run(args.root, args.dump)
    info = machine()
    print_table(figures, info)
    if args.out:
        write_json(args.out, figures, info, {})
    return 0


if __name__ == "__main__":
    sys.exit(main())
