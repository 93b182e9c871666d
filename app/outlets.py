"""`veille outlets check` and `veille outlets discover`: onboarding outlets without reading HTML.

`check` probes every configured source of every (or the named) outlet — robots.txt,
feeds, sitemaps, sections, wp-json, Google News — before the first crawl and prints,
per source, the HTTP answer, the items found, the newest item's date and a verdict
(ok / blocked / moved / empty / dead / skipped). Exit 0 when every outlet has at least
one source a crawl gets articles from, 1 otherwise.

`discover URL` finds a site's feeds and sitemaps, checks each answers with items, and
prints a config entry validated by the project's OutletConfig, ready to paste under
`outlets:`; the candidates it tried go to stderr, so `>> snippet.yaml` keeps only YAML.

The probing itself (politeness, origin rules, caps, verdicts) is veille.crawler.probe.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from veille.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from veille.crawler.probe import (
    Discovery,
    OutletReport,
    SourceReport,
    check_outlets,
    discover,
    site_root,
    slug_for,
)
from veille.pipeline.config import Config, CrawlConfig, OutletConfig, load_config, resolve_path

VERDICT_STYLE = {"ok": "green", "blocked": "red", "moved": "yellow", "empty": "yellow",
                 "dead": "red", "skipped": "dim"}
LANGUAGES = ("fr", "ar", "en")


# ------------------------------------------------------------------ check


def run_check(cfg: Config, names: Sequence[str] | None, *, as_json: bool,
              console: Console | None = None) -> int:
    """Probe the outlets and print the table (or JSON); 0 when each has a working source."""
    outlets = list(cfg.outlets)
    if names:
        known = {o.name for o in outlets}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise CliError(f"{cfg.source}: no outlet named {unknown[0]!r} "
                           f"(known: {', '.join(sorted(known))})", EXIT_USAGE)
        outlets = [o for o in outlets if o.name in set(names)]
    if not outlets:
        raise CliError(f"{cfg.source}: no outlets configured", EXIT_USAGE)
    reports = check_outlets(outlets, cfg.crawl)
    if as_json:
        print(json.dumps([r.as_json() for r in reports], ensure_ascii=False, indent=2))
    else:
        print_check(reports, console or Console())
    return EXIT_OK if all(r.working for r in reports) else EXIT_FAILED


def print_check(reports: Sequence[OutletReport], console: Console) -> None:
    working = [r for r in reports if r.working]
    table = Table(title=f"Outlet sources: {len(working)} of {len(reports)} outlets "
                  "have a working source", title_justify="left")
    _columns(table, "outlet")
    for report in reports:
        for i, source in enumerate(report.sources):
            table.add_row(report.name if i == 0 else "", *_cells(source, report.url),
                          end_section=i == len(report.sources) - 1)
    console.print(table)
    failing = [r.name for r in reports if not r.working]
    if failing:
        console.print(f"No working source: {', '.join(failing)}")


def _columns(table: Table, first: str) -> None:
    table.add_column(first)
    table.add_column("kind")
    for column in ("source", "answer", "items", "newest", "verdict", "note"):
        table.add_column(column, justify="right" if column == "items" else "left",
                         overflow="fold" if column in ("source", "note") else "ellipsis")


def _cells(source: SourceReport, outlet_url: str) -> tuple[str | Text, ...]:
    """A source's cells; its URLs shown as paths when they are on the outlet's site."""
    root = site_root(outlet_url).rstrip("/")
    shown = source.url[len(root):] if source.url.startswith(root + "/") else source.url
    return (source.kind, shown, "→".join(source.answers), _items(source), _date(source.newest),
            _verdict(source), source.note.replace(root + "/", "/"))


def _items(source: SourceReport) -> str:
    if source.items is None:
        return ""
    if source.usable is not None and source.usable != source.items:
        return f"{source.items} ({source.usable} usable)"
    return str(source.items)


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _verdict(source: SourceReport) -> Text:
    return Text(source.verdict, style=VERDICT_STYLE.get(source.verdict, ""))


# ------------------------------------------------------------------ discover


def crawl_settings(config: str | None) -> CrawlConfig:
    """The `crawl:` settings of the config when there is one, else the defaults.

    A config named by --config or VEILLE_CONFIG must load; ./config.yaml is optional
    (a site is often discovered before any config exists).
    """
    path = resolve_path(config)
    if config or os.environ.get("VEILLE_CONFIG") or Path(path).exists():
        return load_config(path).crawl
    return CrawlConfig()


def run_discover(url: str, crawl: CrawlConfig, *, name: str | None = None,
                 language: str | None = None, console: Console | None = None) -> int:
    """Discover `url`'s sources; print what was tried (stderr) and the entry (stdout)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"{url!r} is not an http(s) URL (e.g. https://www.example.ma/)", EXIT_USAGE)
    name = name or slug_for(url)
    _validate(name, site_root(url.strip()), language or "fr")  # a bad --name before any request
    found = discover(url.strip(), crawl, language)
    print_discovery(found, console or Console(stderr=True))
    if not found.feeds and not found.sitemaps:
        raise CliError(f"{found.url}: no feed or sitemap answered with items "
                       f"({found.requests} requests; see the table above)")
    lang = language or found.language
    if lang not in LANGUAGES:
        says = f"says {found.language!r}" if found.language else "says none"
        raise CliError(f"{found.url}: cannot tell the language (the home page's <html lang> "
                       f"{says}): give --language fr, ar or en", EXIT_USAGE)
    print(entry_yaml(found, name, lang))
    return EXIT_OK


def entry_yaml(found: Discovery, name: str, language: str) -> str:
    """The config entry, validated by OutletConfig, as a YAML list item with a comment."""
    entry = _validate(name, found.url, language, feeds=found.feeds, sitemaps=found.sitemaps)
    data = entry.model_dump(include={"name", "url", "language", "feeds", "sitemaps"})
    text = yaml.safe_dump([data], allow_unicode=True, sort_keys=False, default_flow_style=False)
    return (f"# veille outlets discover {found.url}: {_n(len(found.feeds), 'feed')} and "
            f"{_n(len(found.sitemaps), 'sitemap')} answered with items; paste under `outlets:`\n"
            + text.rstrip("\n"))


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _validate(name: str, url: str, language: str, **sources: Any) -> OutletConfig:
    try:
        return OutletConfig.model_validate({"name": name, "url": url, "language": language,
                                            **sources})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise CliError(f"outlet {where}: {err['msg'].removeprefix('Value error, ')}",
                       EXIT_USAGE) from None


def print_discovery(found: Discovery, console: Console) -> None:
    table = Table(title=f"Candidates tried on {found.url} ({found.requests} requests)",
                  title_justify="left")
    _columns(table, "found by")
    for how, source in found.reports:
        table.add_row(how, *_cells(source, found.url))
    console.print(table)
