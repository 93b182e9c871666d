"""The morning digest: which stories, how they read, and their delivery.

Three layers, each usable alone:

- `draft_from_stories` (veille.digest_draft) turns `StoryView`s into a `DigestDraft` (pure: grouping by topic,
  excerpts, reasons, local times); `build_digest` queries the stories first.
- `render_text` / `render_html` / `build_message` turn a draft into an email (pure).
- `send_digest` delivers it and records it: a story is mailed at most once per recipient
  list. The digest row is created "pending" before sending. Just before the message's
  last line (the "." that lets the server accept it) is sent, the digest becomes
  "unconfirmed" with its stories, in one transaction; the server's 250 makes it "sent".
  A failure before that line marks the digest failed and raises `DigestError` with one
  line; the stories stay unsent and come in the next digest. A refusal of the message
  does the same (its stories are unsent again).

The one undecidable case is a send cut after the last line (no reply within
`smtp.deadline`, connection lost, process killed): the server may have accepted the
message. veille then counts its stories as sent, so they are never mailed twice; the
error names the Message-ID to look for in the server's log if they were not. A pending
digest left by a dead process (or older than `smtp.deadline` + `STALE_MARGIN`) never
reached that line: the next digest marks it failed and mails its stories.

Which stories: tracked (flagged for a topic of `digest.topics`) and not yet in a sent
digest for this recipient list, first seen since `since` when given. Otherwise the lower
bound is the list's first digest attempt minus `FIRST_DIGEST_LOOKBACK` (so a first
digest, or a new recipient list, does not mail the whole history); after that, every
unsent tracked story comes, including one committed while the previous digest was being
built or flagged only later: never lost, never twice. Once a digest was sent, only the
stories with an article stored or updated since it (less `digest.developing_days`, at
least `SENT_MARGIN`: a story pass places and moves articles without updating them) are looked at: any other was already there, as it is now, when that
digest was built, so the look-back follows the new work and not the list's history.

Developing stories (`digest.developing`): a story mailed to this list within the last
`digest.developing_days` that is still tracked and gained articles the list was never
mailed (a new outlet, a new language, a follow-up) comes back under "Developing" with
only those articles. Every article a digest carries is recorded with its stories
(`digest_articles`, one row per article and list), so each goes to a list at most once;
a failed send records nothing, a written file neither.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from veille.digest_draft import (  # noqa: F401 - re-exported: the digest's public API
    EXCERPT_CHARS,
    REASON_TERMS,
    DevelopingStory,
    Development,
    DigestDraft,
    DigestSection,
    DigestStory,
    Link,
    NewArticle,
    Reason,
    Term,
    draft_from_stories,
    excerpt,
    is_rtl,
)
from veille.mailer import MailerError, send_message
from veille.pipeline.config import Config
from veille.pipeline.settle import pin_mailed
from veille.pipeline.stories import MAX_STORY_FEATURES, WINDOW_DAYS
from veille.procs import process_alive
from veille.storage import articles as article_store
from veille.storage import crawl_runs as run_store
from veille.storage import digests as digest_store
from veille.storage import views as view_store
from veille.storage.db import Database, describe
from veille.storage.models import Digest
from veille.storage.timestamps import as_utc

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
FIRST_DIGEST_LOOKBACK = timedelta(days=2)
# A pending digest older than smtp.deadline plus this was abandoned (its process is stuck
# outside the SMTP conversation, e.g. on the database, or gone on another host).
STALE_MARGIN = timedelta(minutes=2)
# After a sent digest, the next looks for unsent stories among those with an article
# stored or updated since it, less `digest.developing_days` and at least this: a story
# committed while that digest was being built, and articles placed (or moved between
# stories) by a later story pass, which keep their `updated_at` and are published within
# the pass's window of the crawl's pages.
SENT_MARGIN = timedelta(days=WINDOW_DAYS)


class DigestError(Exception):
    """The digest could not be built, written or sent; one line, worded for the user."""


def build_digest(
    db: Database, cfg: Config, *, since: datetime | None = None, now: datetime | None = None
) -> DigestDraft:
    """The draft of the next digest for `digest.to` (see the module docstring for which stories)."""
    now = now or datetime.now(UTC)
    topics, to = list(cfg.digest.topics), list(cfg.digest.to)
    with _storage(db, "cannot read stories") as s:
        last = digest_store.last_sent_digest(s, to)
        lower, active = since, None
        if lower is None:
            first = digest_store.first_digest_at(s, to)
            lower = (first or now) - FIRST_DIGEST_LOOKBACK
            if last is not None and last.sent_at is not None:
                active = as_utc(last.sent_at) - max(timedelta(days=cfg.digest.developing_days), SENT_MARGIN)
        ids = digest_store.unsent_story_ids(s, topics, to, lower, active_since=active) if topics else []
        views = view_store.list_stories(s, topics=topics, story_ids=ids) if ids else []
        developing = _developments(s, cfg, now) if topics and cfg.digest.developing else []
    return draft_from_stories(
        views, cfg, now=now, since=since, last_sent=last.sent_at if last else None,
        developing=developing,
    )


def _developments(s: Session, cfg: Config, now: datetime) -> list[Development]:
    """Stories mailed to `digest.to` within `digest.developing_days`, with their new articles."""
    topics, to = list(cfg.digest.topics), list(cfg.digest.to)
    mailed_since = now - timedelta(days=cfg.digest.developing_days)
    unmailed = {u.story_id: u for u in digest_store.unmailed_articles(s, topics, to, mailed_since)}
    if not unmailed:
        return []
    views = view_store.list_stories(s, topics=topics, story_ids=list(unmailed))
    return [
        Development(v, frozenset(unmailed[v.id].article_ids), unmailed[v.id].first_mailed)
        for v in views
    ]


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
    count: int  # stories in the message, new and developing (`DigestDraft.count`)
    story_ids: tuple[int, ...] = ()  # the new ones
    subject: str = ""
    recipients: tuple[str, ...] = ()
    digest_id: int | None = None
    message_id: str | None = None
    path: Path | None = None
    text: str | None = None
    refused: tuple[str, ...] = field(default=())
    developing: int = 0  # of `count`, stories back with new articles

    def summary(self) -> str:
        n = f"{self.count} stor{'y' if self.count == 1 else 'ies'}"
        if self.developing:
            n += f" ({self.developing} developing)"
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
        return DigestResult("dry-run", draft.count, tuple(draft.story_ids), text=render_text(draft),
                            developing=len(draft.developing))
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
    """Create the digest row, send, then mark it sent with its stories in one transaction.

    Just before the message's last line goes, the digest is recorded "unconfirmed" with
    its stories (see the module docstring): whatever happens next, they are not mailed
    twice. A refusal by the server puts them back; a sent digest keeps them.
    """
    to, smtp = list(cfg.digest.to), cfg.digest.smtp
    if not to:
        raise DigestError(f"{cfg.source}: digest.to: no recipients to send the digest to")
    subject, message_id = str(msg["Subject"]), str(msg["Message-ID"])
    with _storage(db, "cannot record the digest") as s:
        busy = _busy_digest(s, to, smtp.deadline, run_id)
        digest_id = digest_store.create_digest(s, to, subject) if busy is None else 0
    if busy is not None:
        raise DigestError(
            f"digest {busy.id} to the same recipients has been sending since "
            f"{draft.local(busy.created_at)}; not sending twice, try again later"
        )
    mailed = {st.id: [link.url for link in st.links] for st in draft.stories}
    mailed.update((st.id, [a.url for a in st.articles]) for st in draft.developing)
    carried = draft.carried
    news = [a.id for st in draft.developing for a in st.articles]

    def hand_over() -> None:
        with _storage(db, "cannot record the digest before its end was sent; nothing was delivered") as s:
            article_store.serialise_writers(s)  # no story pass between what is mailed and what is recorded
            _pin(s, digest_id, mailed)
            unsent = set(digest_store.unsent_story_ids(s, list(cfg.digest.topics), to, None,
                                                       among=draft.story_ids))
            taken = [i for i in draft.story_ids if i not in unsent]
            taken += sorted(digest_store.mailed_articles(s, to, news))  # developing articles
            if taken or not digest_store.mark_digest_unconfirmed(
                s, digest_id, draft.story_ids, message_id, carried
            ):
                raise DigestError(  # a digest this one took for abandoned was not
                    f"another digest sent {len(taken) or 'some'} of these stories or articles meanwhile; "
                    "this one was not delivered, try again"
                )

    try:
        refused = send_message(msg, smtp, before_end=hand_over)
    except MailerError as exc:
        if exc.unconfirmed:
            with _storage(db, "cannot record the digest") as s:
                digest_store.note_digest_error(s, digest_id, str(exc))
            raise DigestError(
                f"{exc}; digest {digest_id} may have been delivered: its stories count as sent, "
                f"never mailed twice (look for {message_id} in the server's log)"
            ) from None
        _mark_failed(db, digest_id, str(exc))
        raise DigestError(str(exc)) from None
    except DigestError:
        _mark_failed(db, digest_id, "could not record the handover; not delivered")
        raise
    result = DigestResult(
        "sent", draft.count, tuple(draft.story_ids), subject, tuple(to),
        digest_id=digest_id, message_id=message_id, refused=tuple(sorted(refused)),
        developing=len(draft.developing),
    )  # fmt: skip
    with _storage(db, f"digest {message_id} was sent but recording it failed", after=_REPEAT) as s:
        article_store.serialise_writers(s)
        _pin(s, digest_id, mailed)
        unsent = set(digest_store.unsent_story_ids(s, list(cfg.digest.topics), to, None,
                                                     among=draft.story_ids))
        digest_store.mark_digest_sent(
            s, digest_id, [i for i in draft.story_ids if i in unsent], message_id, carried
        )
        run_store.finish_run(s, run_id, "ok", message=result.summary())
    log.info("%s", result.summary())
    return result


def _pin(s: Session, digest_id: int, mailed: dict[int, list[str]]) -> None:
    """Put back any article a story pass moved out of a mailed story while sending."""
    moved = pin_mailed(s, mailed, MAX_STORY_FEATURES)
    if moved:
        log.info("digest %s: %d article(s) a story pass moved while sending were put back", digest_id, moved)


def _mark_failed(db: Database, digest_id: int, error: str) -> None:
    try:
        with db.transaction() as s:
            digest_store.mark_digest_failed(s, digest_id, error)
    except SQLAlchemyError:  # the stories are unsent either way; say why it failed
        log.exception("could not mark digest %s failed", digest_id)


def _busy_digest(s: Session, to: list[str], deadline: float, own_run: int) -> Digest | None:
    """A digest to this list that another live process is sending, or None.

    A pending digest is one whose end was never handed to the server, so it cannot have
    been delivered. It is abandoned when no live digest process of this host started
    before it, or once older than the deadline plus a margin (a process of another host,
    or one stuck outside the SMTP conversation): then it is marked failed and its stories,
    which it never recorded, come in this digest.
    """
    host, now = socket.gethostname(), datetime.now(UTC)
    runs = [r for r in run_store.running_runs(s) if r.kind == "digest" and r.id != own_run]
    dead = [r.id for r in runs if r.host == host and not process_alive(r.pid, r.started_at)]
    if dead:
        run_store.close_runs(s, dead, "interrupted", "process ended mid-run")
    for d in digest_store.pending_digests(s, to):
        created = as_utc(d.created_at)
        young = now - created < timedelta(seconds=deadline) + STALE_MARGIN
        senders = [r for r in runs if r.id not in dead and as_utc(r.started_at) <= created]
        if young and senders:
            return d
        log.warning("digest %s (pending since %s) was abandoned by its process: marked failed, "
                    "its stories come in this digest", d.id, created.isoformat(timespec="seconds"))
        digest_store.mark_digest_failed(s, d.id, "abandoned before its end was sent to the server; not delivered")
    return None




def _write(
    db: Database, cfg: Config, draft: DigestDraft, msg: EmailMessage, path: Path
) -> DigestResult:
    """Write the .eml atomically; record it as a "written" digest (its stories and
    articles stay unsent: a file is not a delivery)."""
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
        digest_id = digest_store.create_digest(s, list(cfg.digest.to), subject)
        digest_store.mark_digest_written(s, digest_id, message_id)
    return DigestResult(
        "written", draft.count, tuple(draft.story_ids), subject, tuple(cfg.digest.to),
        digest_id=digest_id, message_id=message_id, path=path, developing=len(draft.developing),
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
        return run_store.start_run(s, kind="digest")


def _finish_run(db: Database, run_id: int, status: str, message: str) -> None:
    try:
        with db.transaction() as s:
            run_store.finish_run(s, run_id, status, message=message)
    except SQLAlchemyError:
        log.exception("could not close digest run %s", run_id)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
