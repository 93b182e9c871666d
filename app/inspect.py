"""`veille extract`: run extraction and classification on one page, to debug a rule."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from veille.pipeline.classify import classify
from veille.pipeline.config import Config
from veille.pipeline.extract import extract
from veille.pipeline.template import Template, strip_article
from veille.pipeline.types import RawPage, Skipped


class InspectError(Exception):
    """The page could not be read (missing file, dead server): one line for the user."""


def _fetch(url: str, cfg: Config) -> tuple[bytes, dict[str, str], str]:
    req = urllib.request.Request(url, headers={"User-Agent": cfg.crawl.user_agent})
    try:
        with urllib.request.urlopen(req, timeout=cfg.crawl.timeout) as resp:  # noqa: S310
            body = resp.read(cfg.crawl.max_page_bytes + 1)
            headers = {k.lower(): v for k, v in resp.headers.items()}
            final = resp.geturl()
    except urllib.error.HTTPError as exc:
        raise InspectError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InspectError(f"{url}: cannot fetch ({reason})") from None
    if len(body) > cfg.crawl.max_page_bytes:
        raise InspectError(f"{url}: page larger than crawl.max_page_bytes ({cfg.crawl.max_page_bytes})")
    return body, headers, final


def load_page(
    source: str, cfg: Config, *, url: str | None, outlet: str, language: str | None
) -> RawPage:
    if source.startswith(("http://", "https://")):
        body, headers, final = _fetch(source, cfg)
        page_url = url or source
    else:
        path = Path(source)
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise InspectError(f"{source}: cannot read file ({exc.strerror or exc})") from None
        headers, final = {}, url or path.resolve().as_uri()
        page_url = url or final
    return RawPage(
        url=page_url,
        final_url=final,
        outlet=outlet,
        status=200,
        headers=headers,
        body=body,
        fetched_at=datetime.now(UTC),
        language_hint=language,
    )


def outlet_template(cfg: Config, outlet: str) -> Template:
    """The configured outlet's template as its database tells it, else the generic rules
    alone. Never creates or migrates a database: this is a read for debugging."""
    if outlet not in {o.name for o in cfg.outlets}:
        return Template(outlet)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from veille.pipeline.learn import template_of
    from veille.storage.db import Database, StorageError

    url = make_url(cfg.database.url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return Template(outlet)
    try:
        db = Database(cfg.database.url, migrate=False)
    except StorageError:
        return Template(outlet)
    try:
        return template_of(db, outlet)
    except SQLAlchemyError:  # unreachable, or a schema older than its table
        return Template(outlet)
    finally:
        db.dispose()


def inspect_page(
    source: str,
    cfg: Config,
    *,
    url: str | None = None,
    outlet: str = "cli",
    language: str | None = None,
) -> dict[str, Any]:
    """The DESIGN.md shape of `veille extract --json`, plus `skipped` when not an article."""
    page = load_page(source, cfg, url=url, outlet=outlet, language=language)
    result = extract(page)
    if isinstance(result, Skipped):
        return {"url": page.url, "skipped": result.reason, "title": None, "text": None,
                "published": None, "author": None, "language": None, "topics": [], "template": []}
    result, dropped = strip_article(result, outlet_template(cfg, outlet))
    matches = classify(result.title, result.text, cfg.topics)
    return {
        "url": page.url,
        "title": result.title,
        "text": result.text,
        "published": result.published.isoformat() if result.published else None,
        "author": result.author,
        "language": result.language,
        "topics": [
            {
                "name": m.topic,
                "score": m.score,
                "matched": [{"term": h.term, "field": h.field, "count": h.count} for h in m.matched],
            }
            for m in matches
        ],
        "template": [{"line": d.line, "reason": d.reason} for d in dropped],
    }
