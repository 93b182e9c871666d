"""The morning digest: which stories, how they read, and their delivery.

Three layers, each usable alone:

- `draft_from_stories` turns `StoryView`s into a `DigestDraft` (pure: grouping by topic,
  excerpts, reasons, local times); `build_digest` queries the stories first.
- `render_text` / `render_html` / `build_message` turn a draft into an email (pure).
- `send_digest` delivers it and records it: a story is in exactly one successfully sent
  digest per recipient list. The digest row is created before sending; the stories are
  marked sent, in one transaction, only after the server accepted the message. A failure
  marks the digest failed and raises `DigestError` with one line; the stories stay unsent
  and come in the next digest.

Which stories: tracked (flagged for a topic of `digest.topics`) and not yet in a sent
digest for this recipient list, first seen since `since` when given. Otherwise the lower
bound is the list's first digest attempt minus `FIRST_DIGEST_LOOKBACK` (so a first
digest, or a new recipient list, does not mail the whole history); after that, every
unsent tracked story comes, including one committed while the previous digest was being
built or flagged only later: never lost, never twice.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pipeline.config import Config
from pipeline.mailer import MailerError, send_message
from storage import queries as q
from storage.db import Database, describe
from storage.queries import StoryView

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
EXCERPT_CHARS = 220  # about two lines of the HTML part
REASON_TERMS = 8  # matched terms shown per topic; the rest are counted
FIRST_DIGEST_LOOKBACK = timedelta(days=2)
_ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
_LATIN = re.compile(r"[A-Za-z\u00C0-\u024F]")


class DigestError(Exception):
    """The digest could not be built, written or sent; one line, worded for the user."""


# ---------------------------------------------------------------- the draft (pure data)


@dataclass(frozen=True)
class Link:
    outlet: str
    label: str  # the outlet, numbered when it has several articles in the story
    url: str
    title: str
    safe: bool  # http(s) URL: rendered as a link


@dataclass(frozen=True)
class Term:
    term: str
    where: str  # "title, text ×3"


@dataclass(frozen=True)
class Reason:
    topic: str
    label: str
    score: float
    terms: tuple[Term, ...]
    more: int = 0  # matched terms not shown

    @property
    def line(self) -> str:
        terms = "; ".join(f"{t.term} ({t.where})" for t in self.terms)
        more = f"; +{self.more} more" if self.more else ""
        return f"{self.label}, score {self.score:g} — {terms}{more}"


@dataclass(frozen=True)
class DigestStory:
    id: int
    title: str
    title_rtl: bool
    first_seen: datetime
    first_seen_local: str
    excerpt: str
    excerpt_rtl: bool
    links: tuple[Link, ...]
    reasons: tuple[Reason, ...]

    @property
    def outlets(self) -> list[str]:
        return list(dict.fromkeys(link.outlet for link in self.links))

    @property
    def href(self) -> str | None:
        """The earliest article's URL, for the title link."""
        return next((link.url for link in self.links if link.safe), None)


@dataclass(frozen=True)
class DigestSection:
    topic: str
    label: str
    stories: tuple[DigestStory, ...]


@dataclass(frozen=True)
class DigestDraft:
    generated_at: datetime
    timezone: str
    sections: tuple[DigestSection, ...]
    since: datetime | None = None  # explicit lower bound (--since)
    last_sent: datetime | None = None  # the previous sent digest for this list

    @property
    def stories(self) -> list[DigestStory]:
        return [s for sec in self.sections for s in sec.stories]

    @property
    def story_ids(self) -> list[int]:
        return [s.id for s in self.stories]

    @property
    def count(self) -> int:
        return len(self.stories)

    def local(self, value: datetime) -> str:
        return f"{value.astimezone(ZoneInfo(self.timezone)):%Y-%m-%d %H:%M}"

    @property
    def date(self) -> str:
        return f"{self.generated_at.astimezone(ZoneInfo(self.timezone)):%Y-%m-%d}"

    @property
    def window(self) -> str:
        """What the digest covers, in words, for its header."""
        if self.since is not None:
            return f"first seen since {self.local(self.since)}"
        if self.last_sent is not None:
            return f"new since the last digest ({self.local(self.last_sent)})"
        return "first digest for these recipients"


def is_rtl(text: str) -> bool:
    """True when Arabic script dominates the letters of `text`."""
    return len(_ARABIC.findall(text)) > len(_LATIN.findall(text))


def excerpt(text: str, title: str = "", limit: int = EXCERPT_CHARS) -> str:
    """About two lines of `text`: whitespace folded, a leading title dropped, cut at a word."""
    flat = " ".join(text.split())
    head = " ".join(title.split())
    if head and flat.startswith(head):
        flat = flat[len(head) :].lstrip(" .:-–—")
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—،؛") + "…"


def _terms(matched: Sequence[dict[str, Any]]) -> tuple[tuple[Term, ...], int]:
    """The strongest evidence first (title hits, then most frequent), and how many more.

    A reader scans the reason in a second: a long list of every inflection hides it.
    """
    by_term: dict[str, list[str]] = {}
    weight: dict[str, tuple[int, int]] = {}
    for m in matched:
        term = str(m.get("term", "")).strip()
        if not term:
            continue
        count = int(m.get("count") or 1)
        fld = str(m.get("field") or "text")
        by_term.setdefault(term, []).append(fld if count == 1 else f"{fld} ×{count}")
        in_title, total = weight.get(term, (0, 0))
        weight[term] = (max(in_title, int(fld == "title")), total + count)
    ranked = sorted(by_term, key=lambda t: (-weight[t][0], -weight[t][1]))
    shown = ranked[:REASON_TERMS]
    return tuple(Term(t, ", ".join(by_term[t])) for t in shown), len(ranked) - len(shown)


def _story(view: StoryView, labels: dict[str, str], draft_tz: ZoneInfo) -> DigestStory:
    seen: dict[str, int] = {}
    links = []
    for a in view.articles:
        seen[a.outlet] = seen.get(a.outlet, 0) + 1
        label = a.outlet if seen[a.outlet] == 1 else f"{a.outlet} ({seen[a.outlet]})"
        safe = a.url.lower().startswith(("https://", "http://"))
        links.append(Link(a.outlet, label, a.url, a.title, safe))
    source = next((a for a in view.articles if a.text.strip()), None)
    text = excerpt(source.text, source.title) if source else ""
    by_name = {t.name: t for t in view.topics}
    reasons = tuple(
        Reason(name, label, by_name[name].score, *_terms(by_name[name].matched))
        for name, label in labels.items()
        if name in by_name
    )
    return DigestStory(
        id=view.id,
        title=view.title,
        title_rtl=is_rtl(view.title),
        first_seen=view.first_seen,
        first_seen_local=f"{view.first_seen.astimezone(draft_tz):%Y-%m-%d %H:%M}",
        excerpt=text,
        excerpt_rtl=is_rtl(text),
        links=tuple(links),
        reasons=reasons,
    )


def draft_from_stories(
    stories: Sequence[StoryView],
    cfg: Config,
    *,
    now: datetime | None = None,
    since: datetime | None = None,
    last_sent: datetime | None = None,
) -> DigestDraft:
    """Group `stories` by the first of `digest.topics` they match, keeping their order.

    A story flagged for several digest topics appears once, under the first; its reasons
    list every digest topic it matched.
    """
    labels = {name: name for name in cfg.digest.topics}
    for t in cfg.topics:
        if t.name in labels and t.label:
            labels[t.name] = t.label
    tz = ZoneInfo(cfg.schedule.timezone)
    placed: dict[str, list[DigestStory]] = {name: [] for name in labels}
    done: set[int] = set()
    for view in stories:
        names = {t.name for t in view.topics}
        home = next((n for n in labels if n in names), None)
        if home is None or view.id in done:
            continue
        done.add(view.id)
        placed[home].append(_story(view, labels, tz))
    sections = tuple(
        DigestSection(name, labels[name], tuple(items)) for name, items in placed.items() if items
    )
    return DigestDraft(
        generated_at=now or datetime.now(UTC),
        timezone=cfg.schedule.timezone,
        sections=sections,
        since=since,
        last_sent=last_sent,
    )


def build_digest(
    db: Database, cfg: Config, *, since: datetime | None = None, now: datetime | None = None
) -> DigestDraft:
    """The draft of the next digest for `digest.to` (see the module docstring for which stories)."""
    now = now or datetime.now(UTC)
    topics, to = list(cfg.digest.topics), list(cfg.digest.to)
    with _storage(db, "cannot read stories") as s:
        last = q.last_sent_digest(s, to)
        lower = since
        if lower is None:
            first = q.first_digest_at(s, to)
            lower = (first or now) - FIRST_DIGEST_LOOKBACK
        ids = q.unsent_story_ids(s, topics, to, lower) if topics else []
        views = q.list_stories(s, topics=topics, story_ids=ids) if ids else []
    return draft_from_stories(
        views, cfg, now=now, since=since, last_sent=last.sent_at if last else None
    )


# ---------------------------------------------------------------- rendering (pure)


def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_text(draft: DigestDraft) -> str:
    """The plain-text part."""
    return _env().get_template("digest.txt.j2").render(draft=draft)


def render_html(draft: DigestDraft) -> str:
    """The HTML part: tables and inline styles only, no images, no scripts; autoescaped."""
    return _env().get_template("digest.html.j2").render(draft=draft)


def format_subject(template: str, draft: DigestDraft) -> str:
    try:
        subject = template.format(date=draft.date, count=draft.count)
    except (KeyError, IndexError, ValueError) as exc:
        raise DigestError(
            f"digest.subject: {template!r} cannot be filled ({type(exc).__name__}: {exc}); "
            "use only {date} and {count}"
        ) from None
    return " ".join(subject.split())


def build_message(draft: DigestDraft, cfg: Config) -> EmailMessage:
    """A multipart/alternative message (text, then HTML) with Subject, Date, Message-ID, From, To."""
    d = cfg.digest
    domain = parseaddr(d.from_)[1].rpartition("@")[2].strip("<>[] ") or "veille.invalid"
    msg = EmailMessage()
    msg["Subject"] = format_subject(d.subject, draft)
    msg["From"] = d.from_
    msg["To"] = ", ".join(d.to) if d.to else "undisclosed-recipients:;"
    msg["Date"] = format_datetime(draft.generated_at.astimezone(ZoneInfo(draft.timezone)))
    msg["Message-ID"] = make_msgid(idstring="digest", domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(render_text(draft), subtype="plain", charset="utf-8")
    msg.add_alternative(render_html(draft), subtype="html", charset="utf-8")
    return msg


# ---------------------------------------------------------------- delivery and its record


@dataclass(frozen=True)
class DigestResult:
    status: str  # sent | empty | written | dry-run
    count: int
    story_ids: tuple[int, ...] = ()
    subject: str = ""
    recipients: tuple[str, ...] = ()
    digest_id: int | None = None
    message_id: str | None = None
    path: Path | None = None
    text: str | None = None
    refused: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        n = f"{self.count} stor{'y' if self.count == 1 else 'ies'}"
        if self.status == "sent":
            line = f"digest sent to {', '.join(self.recipients)}: {n} ({self.subject})"
            if self.refused:
                line += f"; refused by the server: {', '.join(self.refused)}"
            return line
        if self.status == "written":
            return f"digest written to {self.path}: {n} (nothing marked sent)"
        if self.status == "empty":
            return "no new tracked stories: nothing sent (digest.send_empty is off)"
        return f"dry run: {n}, nothing sent"


def send_digest(
    db: Database,
    cfg: Config,
    *,
    since: datetime | None = None,
    dry_run: bool = False,
    out: Path | None = None,
) -> DigestResult:
    """Build the next digest and deliver it (SMTP), write it (`out`) or show it (`dry_run`).

    Only an SMTP delivery marks stories sent. Every run but a dry run is recorded as a
    CrawlRun of kind "digest".

    Raises:
        DigestError: one line; for SMTP failures e.g. "SMTP localhost:2525: connection refused".
    """
    if dry_run:
        draft = build_digest(db, cfg, since=since)
        return DigestResult("dry-run", draft.count, tuple(draft.story_ids), text=render_text(draft))
    run_id = _start_run(db)
    try:
        draft = build_digest(db, cfg, since=since)
        msg = build_message(draft, cfg)
        if out is not None:
            result = _write(db, cfg, draft, msg, Path(out))
        elif draft.count == 0 and not cfg.digest.send_empty:
            result = DigestResult("empty", 0, recipients=tuple(cfg.digest.to))
        else:
            return _deliver(db, cfg, draft, msg, run_id)  # closes the run as it marks the stories
    except DigestError as exc:
        _finish_run(db, run_id, "failed", str(exc))
        raise
    except KeyboardInterrupt:
        _finish_run(db, run_id, "interrupted", "interrupted")
        raise
    except Exception as exc:
        _finish_run(db, run_id, "failed", f"{type(exc).__name__}: {_first_line(exc)}")
        raise
    _finish_run(db, run_id, "ok", result.summary())
    return result


def _deliver(
    db: Database, cfg: Config, draft: DigestDraft, msg: EmailMessage, run_id: int
) -> DigestResult:
    """Create the digest row, send, then mark it sent with its stories in one transaction."""
    to, smtp = list(cfg.digest.to), cfg.digest.smtp
    if not to:
        raise DigestError(f"{cfg.source}: digest.to: no recipients to send the digest to")
    subject, message_id = str(msg["Subject"]), str(msg["Message-ID"])
    busy_since = datetime.now(UTC) - timedelta(seconds=max(300.0, 10 * smtp.timeout))
    with _storage(db, "cannot record the digest") as s:
        busy = q.pending_digest(s, to, busy_since)
        digest_id = q.create_digest(s, to, subject) if busy is None else 0
    if busy is not None:
        raise DigestError(
            f"digest {busy.id} to the same recipients has been sending since "
            f"{draft.local(busy.created_at)}; not sending twice, try again later"
        )
    try:
        refused = send_message(msg, smtp)
    except MailerError as exc:
        try:
            with db.transaction() as s:
                q.mark_digest_failed(s, digest_id, str(exc))
        except SQLAlchemyError:  # the stories are unsent either way; say why it failed
            log.exception("could not mark digest %s failed", digest_id)
        raise DigestError(str(exc)) from None
    result = DigestResult(
        "sent", draft.count, tuple(draft.story_ids), subject, tuple(to),
        digest_id=digest_id, message_id=message_id, refused=tuple(sorted(refused)),
    )  # fmt: skip
    with _storage(db, f"digest {message_id} was sent but recording it failed", after=_REPEAT) as s:
        # another process may have sent some of them meanwhile: record each story once
        unsent = set(q.unsent_story_ids(s, list(cfg.digest.topics), to, None))
        q.mark_digest_sent(s, digest_id, [i for i in draft.story_ids if i in unsent], message_id)
        q.finish_run(s, run_id, "ok", message=result.summary())
    log.info("%s", result.summary())
    return result


def _write(
    db: Database, cfg: Config, draft: DigestDraft, msg: EmailMessage, path: Path
) -> DigestResult:
    """Write the .eml atomically; record it as a "written" digest (its stories stay unsent)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(msg.as_bytes())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DigestError(f"cannot write {path}: {exc.strerror or exc}") from None
    subject, message_id = str(msg["Subject"]), str(msg["Message-ID"])
    with _storage(db, "cannot record the digest") as s:
        digest_id = q.create_digest(s, list(cfg.digest.to), subject)
        q.mark_digest_written(s, digest_id, message_id)
    return DigestResult(
        "written", draft.count, tuple(draft.story_ids), subject, tuple(cfg.digest.to),
        digest_id=digest_id, message_id=message_id, path=path,
    )  # fmt: skip


_REPEAT = "; the next digest may repeat its stories"


@contextmanager
def _storage(db: Database, what: str, after: str = "") -> Iterator[Session]:
    """A transaction whose database errors become one-line DigestErrors."""
    try:
        with db.transaction() as s:
            yield s
    except SQLAlchemyError as exc:
        raise DigestError(f"{describe(db.url)}: {what} ({_first_line(exc)}){after}") from None


def _start_run(db: Database) -> int:
    with _storage(db, "cannot record the run") as s:
        return q.start_run(s, kind="digest")


def _finish_run(db: Database, run_id: int, status: str, message: str) -> None:
    try:
        with db.transaction() as s:
            q.finish_run(s, run_id, status, message=message)
    except SQLAlchemyError:
        log.exception("could not close digest run %s", run_id)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
