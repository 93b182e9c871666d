"""The `veille` command: a thin shell over crawler/, pipeline/ and storage/.

Exit codes (DESIGN.md): 0 ok, 1 run failed, 2 bad usage or bad config, 3 another crawl
holds the lock. Known failures print one line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from veille.storage.timestamps import as_utc

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3


class CliError(Exception):
    """A failure worded for the user, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def _iso_datetime(value: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO date/time (e.g. 2024-07-01 or 2024-07-01T07:00)"
        ) from None
    return as_utc(dt)


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return n


# `veille stories` reads a window, never the whole archive (a year is 100k+ articles).
STORIES_DAYS, STORIES_LIMIT = 7, 500


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="PATH", help="config file (default ./config.yaml, env VEILLE_CONFIG)")
    p.add_argument("--log-format", choices=["auto", "text", "json"], default="auto",
                   help="log lines as text or one JSON object per line (auto: JSON when not a TTY)")
    p.add_argument("--log-file", metavar="FILE", help="also log to FILE (rotated at 10 MB)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="veille",
        description="Watch Moroccan news outlets, fold duplicates into stories, flag topics "
        "with reasons, and mail a digest.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("crawl", help="one-shot crawl + process of all (or named) outlets")
    p.add_argument("--outlet", action="append", metavar="NAME", help="only this outlet (repeatable)")
    p.add_argument("--wait", action="store_true", help="wait for a running crawl instead of exiting 3")
    p.add_argument("--worker", action="store_true", help="distributed worker (needs crawl.queue)")
    p.add_argument("--quiet", action="store_true", help="no live table, no summary table")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="extraction processes (default: one per CPU; 1 extracts in the crawl process)")
    _add_common(p)

    p = sub.add_parser("run", help="the daemon: scheduled crawls and digests (SIGTERM stops it)")
    _add_common(p)

    p = sub.add_parser("digest", help="mail the digest of tracked stories not yet sent")
    p.add_argument("--since", type=_iso_datetime, metavar="ISO", help="stories first seen since then")
    p.add_argument("--dry-run", action="store_true", help="print the text part, send nothing")
    p.add_argument("--out", type=Path, metavar="FILE.eml", help="write the message to a file instead of sending")
    _add_common(p)

    p = sub.add_parser("stories", help="list tracked stories, newest first")
    p.add_argument("--topic", metavar="NAME", help="only stories flagged for this topic")
    p.add_argument("--all", action="store_true", help="include stories that match no topic")
    p.add_argument("--since", type=_iso_datetime, metavar="ISO",
                   help="first seen since then (default: the last --days days)")
    p.add_argument("--days", type=_positive_int, default=STORIES_DAYS, metavar="N",
                   help=f"first seen in the last N days (default {STORIES_DAYS})")
    p.add_argument("--limit", type=_positive_int, default=STORIES_LIMIT, metavar="N",
                   help=f"at most N stories, newest first (default {STORIES_LIMIT})")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--settle", action="store_true",
                   help="first place articles a killed crawl left without a story")
    p.add_argument("--settle-since", type=_iso_datetime, metavar="ISO",
                   help="first re-place every article published since then (after a rules change)")
    _add_common(p)

    p = sub.add_parser("extract", help="run extract + classify on one page (debug a rule)")
    p.add_argument("source", metavar="FILE|URL")
    p.add_argument("--url", help="the page's URL when SOURCE is a file")
    p.add_argument("--outlet", default="cli", help="outlet name to attribute the page to")
    p.add_argument("--language", choices=["fr", "ar", "en"], help="language hint")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_common(p)

    p = sub.add_parser("demo", help="crawl the bundled offline replay end to end and write a digest .eml")
    p.add_argument("--dir", type=Path, default=Path("demo"), help="where the demo database and digest go")
    _add_common(p)

    p = sub.add_parser("search", help='full-text search of the archive, results grouped by story '
                       '(words all match, "quoted phrases"; accents, case and Arabic spellings folded)')
    p.add_argument("query", metavar="QUERY", nargs="?",
                   help='e.g. hammouchi "sûreté nationale" or "الأمن الوطني"')
    p.add_argument("--reindex", action="store_true",
                   help="bring the search index up to date first (after an upgrade: the one-off "
                        "back-fill a crawl would otherwise do at its end); QUERY is then optional")
    p.add_argument("--topic", metavar="NAME", help="only stories flagged for this topic")
    p.add_argument("--since", type=_iso_datetime, metavar="ISO", help="only stories published since then")
    p.add_argument("--limit", type=_positive_int, default=50, metavar="N", help="at most N stories (default 50)")
    p.add_argument("--json", action="store_true", help="print a JSON array of stories with their matches")
    _add_common(p)

    p = sub.add_parser("status", help="last runs, per-outlet health, next scheduled times")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_common(p)

    p = sub.add_parser("serve", help="read-only web view: stories, timelines, outlets, Atom feeds, JSON")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; env VEILLE_WEB_TOKEN or "
                   "VEILLE_WEB_PASSWORD guard it for a team)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0: any free port)")
    _add_common(p)

    p = sub.add_parser("topics", help="work on topic rules: `topics test` back-tests them on the archive")
    tsub = p.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    t = tsub.add_parser("test", help="stories the rules in config.yaml, as they are now, would add or drop "
                        "compared with what was flagged when stored, each with its reason (writes nothing)")
    t.add_argument("--topic", metavar="NAME", help="only this topic (default: every configured topic)")
    t.add_argument("--since", type=_iso_datetime, metavar="ISO",
                   help="only stories published since then (default: the whole archive)")
    t.add_argument("--json", action="store_true", help="print the changes as a JSON array")
    _add_common(t)

    p = sub.add_parser("outlets", help="onboard outlets: `outlets check` probes the configured sources, "
                       "`outlets discover URL` finds a site's feeds and sitemaps")
    osub = p.add_subparsers(dest="outlets_command", metavar="ACTION", required=True)
    o = osub.add_parser("check", help="probe every configured source (robots.txt, feeds, sitemaps, "
                        "sections): answer, items, newest date, verdict; exit 1 when an outlet has "
                        "no working source")
    o.add_argument("--outlet", action="append", metavar="NAME", help="only this outlet (repeatable)")
    o.add_argument("--json", action="store_true", help="print JSON")
    _add_common(o)
    o = osub.add_parser("discover", help="find a site's feeds and sitemaps, check they answer, print "
                        "a config entry to paste under `outlets:`")
    o.add_argument("url", metavar="URL", help="the site (its home page or any page of it)")
    o.add_argument("--name", help="the outlet's name in the config (default: from the host name)")
    o.add_argument("--language", choices=["fr", "ar", "en"],
                   help="the outlet's language (default: the home page's <html lang>)")
    _add_common(o)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.process_entry = argv is None  # the console script (or -m): this process ends with the command
    from veille.logs import setup_logging

    quiet = args.command in {"stories", "extract", "status", "topics", "outlets", "search"}  # their output is the point
    level = "DEBUG" if args.verbose else "WARNING" if quiet else "INFO"
    setup_logging(args.log_format, level, args.log_file)
    handler: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
    try:
        return handler(args)
    except CliError as exc:
        _fail(str(exc))
        return exc.code
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`veille stories --json | head`): as the Python docs advise,
        # point stdout at devnull so the interpreter's final flush does not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command cut by its pipe
    except Exception as exc:  # noqa: BLE001 - translate known failures to one line
        code = _known_failure(exc)
        if code is None:
            raise
        _fail(str(exc))
        return code


def _known_failure(exc: Exception) -> int | None:
    from veille.pipeline.config import ConfigError
    from veille.storage.db import StorageError

    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    if isinstance(exc, StorageError):
        return EXIT_FAILED
    from veille.inspect import InspectError

    if isinstance(exc, InspectError):
        return EXIT_FAILED
    try:
        from veille.digest import DigestError
    except ImportError:
        return None
    if isinstance(exc, DigestError):
        return EXIT_FAILED
    return None


def _fail(message: str) -> None:
    print(f"veille: error: {message}", file=sys.stderr)


def _config(args: argparse.Namespace) -> Any:
    from veille.pipeline.config import load_config

    return load_config(args.config)


def _db(cfg: Any) -> Any:
    from veille.storage.db import Database

    return Database(cfg.database.url)


# ---------------------------------------------------------------- commands


def cmd_crawl(args: argparse.Namespace) -> int:
    cfg = _config(args)
    names = args.outlet or None
    if names:
        known = {o.name for o in cfg.outlets}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise CliError(f"{cfg.source}: no outlet named {unknown[0]!r} (known: {', '.join(sorted(known))})", EXIT_USAGE)
    if args.worker and not cfg.crawl.queue:
        raise CliError(f"{cfg.source}: crawl.queue: --worker needs a redis:// queue URL", EXIT_USAGE)
    from veille.crawler.run import run_crawl, tune_gc_for_a_crawl
    from veille.storage.lock import LockHeld, crawl_lock

    tune_gc_for_a_crawl()  # `veille crawl` is a crawl process: the entry point tunes it

    if args.worker:
        # One of many workers of the shared frontier (crawler.frontier): no exclusive crawl
        # lock (workers run side by side; Redis claims keep each article to one of them,
        # database constraints and the Processor's lock keep stories whole), and no
        # closing of other runs (they are other workers' live runs).
        from sqlalchemy.engine import make_url

        if make_url(cfg.database.url).get_backend_name() != "postgresql":
            raise CliError(f"{cfg.source}: database.url: --worker needs a PostgreSQL database "
                           "that every worker shares (SQLite is one machine's file)", EXIT_USAGE)
        summary = run_crawl(cfg, names, progress=not args.quiet, workers=args.workers)
    else:
        try:
            with crawl_lock(cfg.database.url, wait=args.wait):
                from veille.daemon import close_abandoned_runs

                close_abandoned_runs(_db(cfg), holding_lock=True, shared_queue=cfg.crawl.queue is not None)
                summary = run_crawl(cfg, names, progress=not args.quiet, workers=args.workers)
        except LockHeld as exc:
            raise CliError(str(exc), EXIT_LOCKED) from None
    from veille.search import index_after_crawl

    index_after_crawl(cfg.database.url)  # what the crawl stored becomes searchable
    if args.json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
    code = EXIT_OK if summary.status in {"ok", "interrupted"} else EXIT_FAILED
    if args.process_entry:  # the program itself, not a call: skip the interpreter's teardown
        from veille.crawler.run import end_crawl_process

        end_crawl_process(code)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from veille.daemon import run_daemon

    return int(run_daemon(cfg))


def cmd_digest(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from veille.digest import send_digest

    result = send_digest(_db(cfg), cfg, since=args.since, dry_run=args.dry_run, out=args.out)
    if args.dry_run:
        print(result.text)
    else:
        print(result.summary())
    return EXIT_OK


def cmd_stories(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if args.topic and args.topic not in {t.name for t in cfg.topics}:
        raise CliError(f"{cfg.source}: no topic named {args.topic!r}", EXIT_USAGE)
    from veille.storage.views import list_stories

    topics = [args.topic] if args.topic else (None if args.all else [t.name for t in cfg.topics])
    db = _db(cfg)
    if args.settle or args.settle_since:
        from veille.pipeline.process import Processor
        from veille.pipeline.settle import settle_stories

        Processor(db, cfg).restrip_unplaced()  # as the killed crawl's own pass would have
        print(settle_stories(db, args.settle_since), file=sys.stderr)
    since = args.since or datetime.now(UTC) - timedelta(days=args.days)
    with db.transaction() as s:
        stories = list_stories(s, topics=topics, since=since, limit=args.limit)
    if len(stories) == args.limit:
        print(f"veille: the newest {args.limit} stories first seen since {since:%Y-%m-%d %H:%M} UTC; "
              "--limit or --since for others", file=sys.stderr)
    if args.json:
        print(json.dumps([st.as_json() for st in stories], ensure_ascii=False, indent=2))
        return EXIT_OK
    from veille.report import print_stories

    print_stories(stories)
    return EXIT_OK


def cmd_extract(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from veille.inspect import inspect_page

    result = inspect_page(args.source, cfg, url=args.url, outlet=args.outlet, language=args.language)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        from veille.report import print_extract

        print_extract(result)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from veille.demo import run_demo

    return run_demo(args.dir, args.config)


def cmd_search(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if args.topic and args.topic not in {t.name for t in cfg.topics}:
        raise CliError(f"{cfg.source}: no topic named {args.topic!r}", EXIT_USAGE)
    from veille.search import SearchError, reindex_command, search_command

    if args.reindex:
        reindex_command(_db(cfg))
        if args.query is None:
            return EXIT_OK
    elif args.query is None:
        raise CliError("search: a QUERY is needed (or --reindex)", EXIT_USAGE)
    try:
        search_command(_db(cfg), args.query, topic=args.topic, since=args.since, limit=args.limit,
                       as_json=args.json)
    except SearchError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from veille.status import collect_status, print_status

    status = collect_status(_db(cfg), cfg)
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2, default=str))
    else:
        print_status(status)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port: {args.port} is not a TCP port (0-65535)", EXIT_USAGE)
    cfg = _config(args)
    import os

    from veille.storage.db import describe
    from veille.web import create_app
    from veille.web_auth import secrets_from_env
    from veille.web_server import bind, is_loopback, make_server

    secrets = secrets_from_env(os.environ)
    if not secrets.required and not is_loopback(args.host):
        print(f"veille: warning: serving on {args.host} without VEILLE_WEB_TOKEN or "
              "VEILLE_WEB_PASSWORD: anyone who reaches this port reads the database", file=sys.stderr)
    db = _db(cfg)
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") from None
    host, port = sock.getsockname()[:2]
    print(f"veille: serving {describe(db.url)} read-only on http://{host}:{port}/ (Ctrl-C stops)",
          file=sys.stderr)
    make_server(create_app(cfg, db, secrets=secrets)).run(sockets=[sock])
    return EXIT_OK


def cmd_topics(args: argparse.Namespace) -> int:
    cfg = _config(args)
    topics = [t for t in cfg.topics if args.topic in (None, t.name)]
    if args.topic and not topics:
        raise CliError(f"{cfg.source}: no topic named {args.topic!r}", EXIT_USAGE)
    from veille.topics import backtest_json, print_backtest, run_backtest

    result = run_backtest(cfg, topics, args.since)  # the only action: `topics test`
    if args.json:
        print(backtest_json(result))
    else:
        print_backtest(result, args.since)
    return EXIT_OK


def cmd_outlets(args: argparse.Namespace) -> int:
    from veille.outlets import crawl_settings, run_check, run_discover

    if args.outlets_command == "check":
        return run_check(_config(args), args.outlet, as_json=args.json)
    return run_discover(args.url, crawl_settings(args.config), name=args.name, language=args.language)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "crawl": cmd_crawl,
    "run": cmd_run,
    "digest": cmd_digest,
    "stories": cmd_stories,
    "extract": cmd_extract,
    "demo": cmd_demo,
    "status": cmd_status,
    "search": cmd_search,
    "serve": cmd_serve,
    "topics": cmd_topics,
    "outlets": cmd_outlets,
}


if __name__ == "__main__":
    sys.exit(main())
