"""`veille serve`: a read-only web view of the database, for a team that follows stories.

Server-rendered HTML (Jinja2, autoescaped, no JavaScript), Atom feeds per topic and JSON
endpoints that mirror `veille stories --json`. Every page reads through a read-only
session (storage.web_views.read_only); web_auth's guard answers 405 to anything but
GET/HEAD and checks the optional token or password. A bad parameter is a 400 with one
line, an unknown story a 404 page, and an unexpected failure a one-line 500: never a
traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from veille.pipeline.config import Config
from veille.storage import views as view_store
from veille.storage import web_views as web_store
from veille.storage.db import Database, describe
from veille.storage.views import StoryView
from veille.web_auth import Guard, Secrets
from veille.web_feeds import topic_feed
from veille.web_query import (
    API_LIMIT,
    SEARCH_LIMIT,
    BadRequest,
    StoryFilters,
    by_day,
    card,
    hit,
    keep_topics,
    local,
    parse_filters,
    parse_limit,
    parse_since,
    parse_topic,
    reasons,
    timeline,
)

log = logging.getLogger("veille.web")

TEMPLATES = Path(__file__).resolve().parent / "templates" / "web"
FEED_STORIES = 50
MAX_STORY_ID = 2**63 - 1


def short_time(value: str | None) -> str:
    """`2025-04-14T11:30:00+01:00` (as `veille status --json` has it) → `2025-04-14 11:30`."""
    return value.replace("T", " ")[:16] if value else "—"


class WebView:
    """The pages and endpoints over one database and config (see create_app)."""

    def __init__(self, cfg: Config, db: Database, now: Callable[[], datetime]) -> None:
        self.cfg, self.db, self.now = cfg, db, now
        self.tz = ZoneInfo(cfg.schedule.timezone)
        self.topic_names = [t.name for t in cfg.topics]
        self.labels = {t.name: t.label or t.name for t in cfg.topics}
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters["short"] = short_time

    # ------------------------------------------------------------ helpers

    def render(self, request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
        params = request.query_params
        topics = [{"name": n, "label": self.labels[n]} for n in self.topic_names]
        base = {
            "root": request.scope.get("root_path", ""),
            "topics": topics,
            "labels": self.labels,
            "feeds": topics,
            "search_q": params.get("q", "") if request.url.path.endswith("search") else "",
            "search_topic": params.get("topic", ""),
            "database": describe(self.db.url),
            "timezone": self.cfg.schedule.timezone,
        }
        html = self.env.get_template(name).render({**base, **context})
        return HTMLResponse(html, status_code=code)

    def error(self, request: Request, status: int, message: str) -> Response:
        """One line for the reader: JSON under /api, an HTML page elsewhere."""
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        reason = {400: "Bad request", 404: "Not found", 500: "Internal error"}.get(status, "Error")
        try:
            return self.render(request, "error.html.j2", status, status=status, reason=reason,
                               message=message)
        except Exception:  # noqa: BLE001 - the error page itself failed: one line, no page
            log.exception("the error page failed")
            return PlainTextResponse(f"veille: {message}\n", status_code=status)

    def filters(self, request: Request, default_limit: int | None = None) -> StoryFilters:
        if default_limit is None:
            return parse_filters(request.query_params, self.topic_names)
        return parse_filters(request.query_params, self.topic_names, default_limit)

    def stories(self, f: StoryFilters) -> tuple[list[StoryView], bool]:
        """One page of the list under `f`, and whether older stories follow."""
        since, start, end = f.window(self.tz, self.now())
        topics = f.topics(self.topic_names)
        with web_store.read_only(self.db) as s:
            ids = web_store.story_page(s, topics=topics, since=since, start=start, end=end,
                                       outlet=f.outlet, language=f.language,
                                       offset=(f.page - 1) * f.limit, limit=f.limit + 1)
            views = view_store.list_stories(s, story_ids=ids[: f.limit]) if ids else []
        return keep_topics(views, topics), len(ids) > f.limit

    def story(self, request: Request) -> StoryView:
        story_id = int(request.path_params["story_id"])
        if 0 < story_id <= MAX_STORY_ID:
            with web_store.read_only(self.db) as s:
                found = view_store.list_stories(s, story_ids=[story_id])
            if found:
                return found[0]
        raise HTTPException(404, f"no story {story_id}")

    def window_words(self, f: StoryFilters) -> str:
        if f.day is not None:
            return f"Stories dated {f.day.isoformat()} ({self.cfg.schedule.timezone})"
        since, _, _ = f.window(self.tz, self.now())
        assert since is not None
        return f"Stories first seen since {local(since, self.tz)}"

    # ------------------------------------------------------------ pages

    def home(self, request: Request) -> Response:
        f = self.filters(request)
        views, more = self.stories(f)
        with web_store.read_only(self.db) as s:
            outlets, languages = web_store.outlet_names(s), web_store.languages(s)
        older = None
        if not more and f.day is None and f.since is None:
            older = f.query(days=min((f.days or 7) * 4, 3650), page=1)
        heading = self.labels[f.topic] if f.topic else "Stories"
        feeds = [{"name": n, "label": self.labels[n]} for n in ([f.topic] if f.topic else self.topic_names)]
        return self.render(request, "stories.html.j2", heading=heading, filters=f,
                           groups=by_day([card(v, self.tz) for v in views]), more=more,
                           older_window=older if (f.days or 7) < 3650 else None,
                           window=self.window_words(f), outlets=outlets, languages=languages,
                           feeds=feeds)

    def topic(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.labels:
            raise HTTPException(404, f"no topic named {name!r}")
        return RedirectResponse(f"{request.scope.get('root_path', '')}/?{urlencode({'topic': name})}", 307)

    def story_page(self, request: Request) -> Response:
        view = self.story(request)
        entries = timeline(view, self.tz)
        return self.render(request, "story.html.j2", card=card(view, self.tz),
                           first_seen=local(view.first_seen, self.tz), entries=entries,
                           copies=[e for e in entries if e.copy_of],
                           reasons=reasons(view, self.labels))

    def outlets(self, request: Request) -> Response:
        from veille.status import collect_status

        return self.render(request, "outlets.html.j2", status=collect_status(self.db, self.cfg))

    def feed(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.labels:
            raise HTTPException(404, f"no topic named {name!r}")
        with web_store.read_only(self.db) as s:
            ids = web_store.recently_updated(s, name, FEED_STORIES)
            views = keep_topics(view_store.list_stories(s, story_ids=ids), [name]) if ids else []
        self_url = str(request.url.remove_query_params("token"))
        body = topic_feed(name, self.labels[name], views, self_url=self_url,
                          page_url=f"{request.url_for('home')}?{urlencode({'topic': name})}",
                          story_url=lambda i: str(request.url_for("story", story_id=i)),
                          now=self.now())
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    # ------------------------------------------------------------ JSON

    def api_stories(self, request: Request) -> Response:
        views, _ = self.stories(self.filters(request, API_LIMIT))
        return JSONResponse([v.as_json() for v in views])

    def api_story(self, request: Request) -> Response:
        return JSONResponse(self.story(request).as_json())

    def search_params(self, request: Request) -> tuple[str, str | None, datetime | None, int]:
        params = request.query_params
        topic = parse_topic(params, self.topic_names)
        return (params.get("q", ""), topic, parse_since(params.get("since", "")),
                parse_limit(params, SEARCH_LIMIT))

    def search(self, request: Request) -> Response:
        from veille.search import run_search

        q, topic, since, limit = self.search_params(request)
        hits = run_search(self.db, q, topic=topic, since=since, limit=limit) if q.strip() else []
        return self.render(request, "search.html.j2", q=q, topic=topic,
                           since=request.query_params.get("since", ""),
                           results=[hit(h, self.tz) for h in hits],
                           limit=limit)

    def api_search(self, request: Request) -> Response:
        from veille.search import run_search, search_json

        q, topic, since, limit = self.search_params(request)
        if not q.strip():
            raise BadRequest("q: nothing to search for")
        hits = run_search(self.db, q, topic=topic, since=since, limit=limit)
        return JSONResponse(search_json(self.db, hits))

    def api_status(self, request: Request) -> Response:
        import json

        from veille.status import collect_status

        status = collect_status(self.db, self.cfg)
        return Response(json.dumps(status, ensure_ascii=False, default=str),
                        media_type="application/json")


def create_app(cfg: Config, db: Database, *, secrets: Secrets | None = None,
               now: Callable[[], datetime] | None = None) -> Starlette:
    """The web view as an ASGI app (run it with uvicorn; tests run it in-process).

    Args:
        cfg: its topics, labels and time zone.
        db: the database read (never written).
        secrets: the token or password readers need (none: open, for 127.0.0.1).
        now: the clock the recent window counts back from (default: the real one).
    """
    view = WebView(cfg, db, now or (lambda: datetime.now(UTC)))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = exc.detail if exc.status_code == 404 and exc.detail != "Not Found" else None
        return view.error(request, exc.status_code, message or f"nothing at {request.url.path}")

    async def bad_request(request: Request, exc: Exception) -> Response:
        return view.error(request, 400, str(exc))

    async def failure(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        return view.error(request, 500, "the view failed to read the database (see the server's log)")

    routes = [
        Route("/", view.home, name="home"),
        Route("/stories/{story_id:int}", view.story_page, name="story"),
        Route("/outlets", view.outlets, name="outlets"),
        Route("/topics/{name}.atom", view.feed, name="feed"),
        Route("/topics/{name}", view.topic, name="topic"),
        Route("/api/stories", view.api_stories, name="api_stories"),
        Route("/api/stories/{story_id:int}", view.api_story, name="api_story"),
        Route("/api/status", view.api_status, name="api_status"),
        Route("/search", view.search, name="search"),
        Route("/api/search", view.api_search, name="api_search"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, secrets=secrets or Secrets())],
        exception_handlers={HTTPException: http_error, BadRequest: bad_request, 500: failure},
    )
