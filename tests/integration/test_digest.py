"""The digest end to end: a real database (SQLite and PostgreSQL), a real SMTP server (aiosmtpd
on 127.0.0.1).

The database is filled directly through the storage models (`seed`): three tracked stories
covered by several outlets (one in Arabic, one whose title carries a <script> tag) and two
distractors (one flagged for a topic the digest does not follow, one flagged for nothing).
The checks read what the server received, parsed back with the email package.
"""

from __future__ import annotations

import email
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from sqlalchemy import select

from tests.smtp_inbox import Inbox, free_port
from veille.digest import EXCERPT_CHARS, DigestError, send_digest
from veille.pipeline.config import Config, config_from_dict
from veille.storage import crawl_runs as run_store
from veille.storage import digests as digest_store
from veille.storage import pages as page_store
from veille.storage.db import Database
from veille.storage.models import (
    Article,
    CrawlRun,
    Digest,
    DigestArticle,
    DigestItem,
    Story,
    TopicMatchRow,
)

TOPIC = "maroc-france-securite"
TOPIC_LABEL = "Coopération sécuritaire Maroc–France"
TO = ["analyst@example.org", "press@example.org"]

# --- the database ------------------------------------------------------------------------

TRACKED: list[dict[str, Any]] = [
    {
        "title": "Hammouchi reçoit le directeur de la DGSI à Rabat",
        "hours": 2,
        "articles": [
            ("le360", "https://le360.ma/societe/hammouchi-dgsi-rabat?utm=rss&id=12", "fr"),
            ("hespress-fr", "https://fr.hespress.com/3001-hammouchi-dgsi.html", "fr"),
            ("bladi", "https://www.bladi.net/hammouchi-dgsi-rabat,1234.html", "fr"),
        ],
        "text": "Le directeur général de la DGSN et de la DGST, Abdellatif Hammouchi, a reçu "
        "mardi à Rabat le directeur de la DGSI française. Les deux responsables ont passé en "
        "revue la coopération sécuritaire entre le Maroc et la France, notamment dans la lutte "
        "contre le terrorisme et la sécurisation des grands événements sportifs prévus. " * 3,
        "matched": [
            {"term": "hammouchi", "field": "title", "count": 1},
            {"term": "dgsi", "field": "title", "count": 1},
            {"term": "dgsi", "field": "text", "count": 3},
            {"term": "coopération sécuritaire", "field": "text", "count": 1},
        ],
        "score": 11.5,
    },
    {
        "title": "تعاون أمني بين المغرب وفرنسا لمواجهة الإرهاب",
        "hours": 5,
        "articles": [
            ("hespress", "https://www.hespress.com/تعاون-أمني-1234.html", "ar"),
            ("alyaoum24", "https://alyaoum24.com/1899.html", "ar"),
        ],
        "text": "أكدت المديرية العامة للأمن الوطني أن التعاون الأمني بين المغرب وفرنسا مكن من "
        "تفكيك خلية إرهابية كانت تخطط لتنفيذ عمليات في البلدين، وذلك بفضل تبادل المعلومات "
        "الاستخباراتية بين الأجهزة المختصة. " * 3,
        "matched": [
            {"term": "المغرب", "field": "title", "count": 1},
            {"term": "فرنسا", "field": "title", "count": 1},
            {"term": "التعاون الأمني", "field": "text", "count": 2},
        ],
        "score": 9.0,
    },
    {
        "title": "<script>alert('x')</script> Extradition d'un suspect vers la France",
        "hours": 8,
        "articles": [
            ("h24info", "https://www.h24info.ma/maroc/extradition-france/", "fr"),
            ("le360", "https://le360.ma/monde/extradition-france-suspect", "fr"),
        ],
        "text": "Un ressortissant recherché par la justice française a été extradé vers Paris "
        "à la suite d'une demande transmise par les autorités françaises à la police marocaine.",
        "matched": [
            {"term": "france", "field": "title", "count": 1},
            {"term": "police", "field": "text", "count": 1},
            {"term": "maroc", "field": "text", "count": 1},
        ],
        "score": 4.0,
    },
]

UNTRACKED: list[dict[str, Any]] = [
    {  # flagged, but for a topic the digest does not follow
        "title": "Le Raja remporte le derby de Casablanca",
        "hours": 1,
        "articles": [("le360", "https://le360.ma/sport/raja-derby", "fr")],
        "text": "Le Raja s'est imposé face au Wydad dans un derby disputé.",
        "topic": "sport",
    },
    {  # flagged for nothing
        "title": "Vague de chaleur attendue dans le Souss",
        "hours": 3,
        "articles": [("hespress-fr", "https://fr.hespress.com/meteo-souss.html", "fr")],
        "text": "La météo annonce des températures élevées.",
        "topic": None,
    },
]


def add_story(
    db: Database,
    spec: dict[str, Any],
    *,
    topic: str | None = TOPIC,
    first_seen: datetime | None = None,
) -> int:
    """Write one story, its articles (one per outlet) and the topic match on each article."""
    seen = first_seen or datetime.now(UTC) - timedelta(hours=spec["hours"])
    with db.transaction() as s:
        story = Story(title=spec["title"], first_seen=seen, last_seen=seen, features=[])
        s.add(story)
        s.flush()
        for i, (outlet, url, lang) in enumerate(spec["articles"]):
            outlet_id = page_store.ensure_outlet(s, outlet, f"https://{outlet}.example/", lang)
            art = Article(
                url=url,
                outlet_id=outlet_id,
                story_id=story.id,
                title=spec["title"],
                text=spec["text"],
                language=lang,
                content_hash=f"{story.id}-{i}",
                first_seen=seen + timedelta(minutes=i),
                published=seen + timedelta(minutes=i),
            )
            if topic:
                art.topics.append(
                    TopicMatchRow(topic=topic, score=spec.get("score", 5.0), matched=spec.get("matched", []))
                )
            s.add(art)
        return story.id


@dataclass
class Seeded:
    tracked: dict[int, dict[str, Any]] = field(default_factory=dict)
    untracked: dict[int, dict[str, Any]] = field(default_factory=dict)


def seed(db: Database) -> Seeded:
    out = Seeded()
    for spec in TRACKED:
        out.tracked[add_story(db, spec)] = spec
    for spec in UNTRACKED:
        out.untracked[add_story(db, spec, topic=spec["topic"])] = spec
    return out


def make_config(db_url: str, port: int, **smtp: Any) -> Config:
    return config_from_dict(
        {
            "database": {"url": db_url},
            "topics": [
                {"name": TOPIC, "label": TOPIC_LABEL, "require": [["maroc"], ["france"]]},
                {"name": "sport", "require": [["raja", "wydad"]]},
            ],
            "schedule": {"timezone": "Africa/Casablanca"},
            "digest": {
                "topics": [TOPIC],
                "to": TO,
                "from": "Veille <veille@veille.example.org>",
                "subject": "Veille — {date}: {count} stories",
                "smtp": {"host": "127.0.0.1", "port": port, "timeout": 5, **smtp},
            },
        },
        source="test-config.yaml",
    )


# --- the SMTP server ---------------------------------------------------------------------


class Logins:
    """aiosmtpd authenticator accepting one user, remembering every attempt."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()
        self.attempts: list[tuple[str, bytes, bool]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        self.attempts.append((mechanism, getattr(auth_data, "login", b""), ok))
        return AuthResult(success=ok, handled=False)



@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


# --- checks ------------------------------------------------------------------------------


def parts(msg: EmailMessage) -> tuple[str, str]:
    assert msg.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in msg.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    text_part, html_part = list(msg.iter_parts())
    assert isinstance(text_part, EmailMessage) and isinstance(html_part, EmailMessage)
    return text_part.get_content(), html_part.get_content()


def assert_lists_exactly(msg: EmailMessage, seeded: Seeded, ids: list[int] | None = None) -> None:
    """Every expected story with every article link, in both parts; no distractor."""
    text, html = parts(msg)
    doc = lxml.html.fromstring(html)
    hrefs = set(doc.xpath("//a/@href"))
    page_text = doc.text_content()
    wanted = ids if ids is not None else list(seeded.tracked)
    for sid in wanted:
        spec = seeded.tracked[sid]
        assert spec["title"] in text, spec["title"]
        assert spec["title"] in page_text, spec["title"]
        for outlet, url, _lang in spec["articles"]:
            assert url in hrefs, f"no link to {url} in the HTML part"
            assert url in text, f"no {url} in the text part"
            assert outlet in page_text
    others = [s for sid, s in seeded.tracked.items() if sid not in wanted]
    for spec in list(seeded.untracked.values()) + others:
        assert spec["title"] not in text
        assert spec["title"] not in page_text
        for _outlet, url, _lang in spec["articles"]:
            assert url not in hrefs and url not in text


def sent_items(db: Database) -> list[int]:
    with db.transaction() as s:
        return sorted(s.scalars(select(DigestItem.story_id)))


def digests(db: Database) -> list[tuple[str, int]]:
    with db.transaction() as s:
        return [(d.status, len(d.items)) for d in s.scalars(select(Digest).order_by(Digest.id))]


def digest_runs(db: Database) -> list[tuple[str, str | None]]:
    with db.transaction() as s:
        rows = s.scalars(select(CrawlRun).where(CrawlRun.kind == "digest").order_by(CrawlRun.id))
        return [(r.status, r.message) for r in rows]


# --- tests -------------------------------------------------------------------------------


def test_digest_mails_every_tracked_story_with_all_outlets(db: Database, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    seeded = seed(db)
    cfg = make_config(db.url, port)

    result = send_digest(db, cfg)

    assert result.status == "sent" and result.count == 3
    assert len(inbox.envelopes) == 1
    assert sorted(inbox.envelopes[0].rcpt_tos) == sorted(TO)
    msg = inbox.messages[0]
    assert_lists_exactly(msg, seeded)
    assert msg["From"] == "Veille <veille@veille.example.org>"
    assert sorted(a.addr_spec for a in msg["To"].addresses) == sorted(TO)
    assert msg["Message-ID"].endswith("@veille.example.org>")
    assert msg["Date"].datetime is not None
    assert abs(msg["Date"].datetime - datetime.now(UTC)) < timedelta(minutes=5)
    assert msg["Subject"].startswith("Veille — 20") and msg["Subject"].endswith(": 3 stories")
    # grouped under the topic's label, newest first
    text, html = parts(msg)
    assert TOPIC_LABEL in text and TOPIC_LABEL in lxml.html.fromstring(html).text_content()
    order = [text.index(spec["title"]) for spec in TRACKED]
    assert order == sorted(order)
    # why it was flagged: terms with their fields, and the score
    flat = " ".join(text.split())
    # strongest evidence first: title hits, then the most frequent
    assert "score 11.5 — dgsi (title, text ×3); hammouchi (title); coopération sécuritaire (text)" in flat
    # recorded: one sent digest holding exactly the tracked stories, and an ok run
    assert sent_items(db) == sorted(seeded.tracked)
    assert digests(db) == [("sent", 3)]
    assert [status for status, _ in digest_runs(db)] == ["ok"]


def test_arabic_story_renders_right_to_left(db: Database, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    seed(db)
    send_digest(db, make_config(db.url, port))
    _text, html = parts(inbox.messages[0])
    doc = lxml.html.fromstring(html)
    arabic = TRACKED[1]
    title_cell = doc.xpath("//td[@dir='rtl'][.//a]")
    assert [c.text_content().strip() for c in title_cell] == [arabic["title"]]
    assert title_cell[0].get("lang") == "ar"
    excerpts = [c.text_content() for c in doc.xpath("//td[@dir='rtl'][not(.//a)]")]
    assert len(excerpts) == 1 and excerpts[0].startswith("أكدت المديرية العامة")
    assert len(excerpts[0]) <= EXCERPT_CHARS + 1
    # the French stories stay left to right
    french = doc.xpath("//td[.//a[contains(., 'Hammouchi')]]")
    assert french and all(c.get("dir") is None for c in french)


def test_script_in_title_arrives_escaped(db: Database, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    seed(db)
    send_digest(db, make_config(db.url, port))
    _text, html = parts(inbox.messages[0])
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    doc = lxml.html.fromstring(html)
    assert doc.xpath("//script") == []
    assert "<script>alert('x')</script> Extradition" in doc.text_content()
    # nothing remote: no images, no external stylesheets or frames
    assert doc.xpath("//img|//link|//iframe|//object|//style") == []


def test_second_digest_right_after_sends_nothing(db: Database, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    seed(db)
    cfg = make_config(db.url, port)
    assert send_digest(db, cfg).status == "sent"

    again = send_digest(db, cfg)

    assert again.status == "empty" and again.count == 0
    assert len(inbox.envelopes) == 1
    assert digests(db) == [("sent", 3)]
    assert [status for status, _ in digest_runs(db)] == ["ok", "ok"]

    # with send_empty the (empty) message goes out, still without any story in it
    loud = cfg.model_copy(update={"digest": cfg.digest.model_copy(update={"send_empty": True})})
    assert send_digest(db, loud).status == "sent"
    assert len(inbox.envelopes) == 2
    text, _html = parts(inbox.messages[1])
    assert "No new tracked stories." in text
    assert all(spec["title"] not in text for spec in TRACKED)
    assert inbox.messages[1]["Subject"].endswith(": 0 stories")


def test_new_story_after_a_digest_comes_in_the_next_one_only(db: Database, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    seeded = seed(db)
    cfg = make_config(db.url, port)
    send_digest(db, cfg)
    # a story committed while the first digest was being built: first seen before it was sent
    late = dict(TRACKED[2], title="Coopération: un officier de la DGST à Paris",
                articles=[("bladi", "https://www.bladi.net/dgst-paris,99.html", "fr")])
    late_id = add_story(db, late, first_seen=datetime.now(UTC) - timedelta(minutes=30))
    seeded.tracked[late_id] = late

    send_digest(db, cfg)
    send_digest(db, cfg)

    assert len(inbox.envelopes) == 2
    assert_lists_exactly(inbox.messages[1], seeded, ids=[late_id])
    assert sent_items(db) == sorted(seeded.tracked)


def test_smtp_down_fails_in_one_line_and_loses_nothing(db: Database, smtp_server: tuple[Inbox, int]) -> None:
    inbox, up_port = smtp_server
    seeded = seed(db)
    down_port = free_port()  # nothing listens there

    with pytest.raises(DigestError) as err:
        send_digest(db, make_config(db.url, down_port))

    assert str(err.value) == f"SMTP 127.0.0.1:{down_port}: connection refused"
    assert sent_items(db) == []
    assert digests(db) == [("failed", 0)]
    assert digest_runs(db) == [("failed", f"SMTP 127.0.0.1:{down_port}: connection refused")]

    result = send_digest(db, make_config(db.url, up_port))

    assert result.status == "sent" and result.count == 3
    assert len(inbox.envelopes) == 1
    assert_lists_exactly(inbox.messages[0], seeded)
    assert digests(db) == [("failed", 0), ("sent", 3)]
    assert sent_items(db) == sorted(seeded.tracked)


def test_silent_server_times_out_in_one_line(db: Database) -> None:
    seed(db)
    with socket.socket() as listener:  # accepts connections (backlog) but never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        port = listener.getsockname()[1]
        with pytest.raises(DigestError) as err:
            send_digest(db, make_config(db.url, port, timeout=0.5))
    assert str(err.value) == f"SMTP 127.0.0.1:{port}: timed out after 0.5s (connect)"
    assert sent_items(db) == []


def test_dry_run_and_out_file_mark_nothing_sent(db: Database, smtp_server: tuple[Inbox, int], tmp_path: Path) -> None:
    inbox, port = smtp_server
    seeded = seed(db)
    cfg = make_config(db.url, port)

    dry = send_digest(db, cfg, dry_run=True)
    assert dry.status == "dry-run" and dry.text is not None
    assert all(spec["title"] in dry.text for spec in TRACKED)
    assert digests(db) == [] and digest_runs(db) == []

    eml = tmp_path / "out" / "digest.eml"
    written = send_digest(db, cfg, out=eml)
    assert written.status == "written" and written.path == eml
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert_lists_exactly(msg, seeded)
    assert inbox.envelopes == []
    assert sent_items(db) == [] and digests(db) == [("written", 0)]

    # a written file is not a delivery: the next real digest still carries every story
    assert send_digest(db, cfg).count == 3
    assert_lists_exactly(inbox.messages[0], seeded)


def test_digest_in_progress_is_not_sent_twice(db: Database, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    seed(db)
    with db.transaction() as s:  # another live process (this one) is sending to the same list
        run_store.start_run(s, kind="digest")
        digest_store.create_digest(s, TO, "in flight")
    with pytest.raises(DigestError, match=r"^digest 1 to the same recipients has been sending since"):
        send_digest(db, make_config(db.url, port))
    assert inbox.envelopes == [] and sent_items(db) == []


def test_first_digest_skips_the_old_backlog_unless_since(db: Database, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    seeded = seed(db)
    old = dict(TRACKED[0], title="Vieille affaire DGSN–DGSI",
               articles=[("bladi", "https://www.bladi.net/vieille-affaire,1.html", "fr")])
    old_id = add_story(db, old, first_seen=datetime.now(UTC) - timedelta(days=30))
    seeded.tracked[old_id] = old
    cfg = make_config(db.url, port)

    send_digest(db, cfg)
    assert_lists_exactly(inbox.messages[0], seeded, ids=[i for i in seeded.tracked if i != old_id])

    send_digest(db, cfg, since=datetime.now(UTC) - timedelta(days=60))
    assert_lists_exactly(inbox.messages[1], seeded, ids=[old_id])


# --- TLS and login -------------------------------------------------------------------------


def test_starttls_with_login(db: Database, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded = seed(db)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    inbox, logins, port = Inbox(), Logins("veille", "s3cret pass"), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls_server_context(ca),
        require_starttls=True,
        auth_require_tls=True,
        authenticator=logins,
    )
    controller.start()
    try:
        settings = {"security": "starttls", "username": "veille",
                    "password_env": "VEILLE_TEST_SMTP_PASSWORD", "ca_file": str(ca_file)}

        # no password in the environment: refused before connecting
        monkeypatch.delenv("VEILLE_TEST_SMTP_PASSWORD", raising=False)
        with pytest.raises(DigestError, match="VEILLE_TEST_SMTP_PASSWORD"):
            send_digest(db, make_config(db.url, port, **settings))
        assert logins.attempts == []

        # wrong password
        monkeypatch.setenv("VEILLE_TEST_SMTP_PASSWORD", "wrong")
        with pytest.raises(DigestError) as err:
            send_digest(db, make_config(db.url, port, **settings))
        assert str(err.value).startswith(f"SMTP 127.0.0.1:{port}: login refused for 'veille' (535")
        assert "\n" not in str(err.value)

        # a client that does not trust the test CA refuses the server
        monkeypatch.setenv("VEILLE_TEST_SMTP_PASSWORD", "s3cret pass")
        untrusted = {**settings, "ca_file": None}
        with pytest.raises(DigestError, match="TLS certificate verification failed"):
            send_digest(db, make_config(db.url, port, **untrusted))
        assert inbox.envelopes == [] and sent_items(db) == []

        result = send_digest(db, make_config(db.url, port, **settings))
    finally:
        controller.stop()

    assert result.status == "sent"
    assert len(inbox.envelopes) == 1
    assert_lists_exactly(inbox.messages[0], seeded)
    mechanism, login, ok = logins.attempts[-1]
    assert (login, ok) == (b"veille", True) and mechanism in {"PLAIN", "LOGIN"}
    assert sent_items(db) == sorted(seeded.tracked)
    assert [s for s, _ in digests(db)] == ["failed", "failed", "failed", "sent"]


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_starttls_login_mechanisms(db: Database, ca: trustme.CA, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch, mechanism: str) -> None:
    seed(db)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other = {"LOGIN": ["PLAIN"], "PLAIN": ["LOGIN"]}[mechanism]
    inbox, logins, port = Inbox(), Logins("veille", "pw"), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=tls_server_context(ca),
                            require_starttls=True, auth_require_tls=True, authenticator=logins,
                            auth_exclude_mechanism=other)
    controller.start()
    monkeypatch.setenv("VEILLE_SMTP_PASSWORD", "pw")
    try:
        send_digest(db, make_config(db.url, port, security="starttls", username="veille",
                                    ca_file=str(ca_file)))
    finally:
        controller.stop()
    assert logins.attempts == [(mechanism, b"veille", True)]
    assert len(inbox.envelopes) == 1


def test_implicit_tls(db: Database, ca: trustme.CA, tmp_path: Path) -> None:
    seeded = seed(db)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=tls_server_context(ca))
    controller.start()
    try:
        # a plain client talking to a TLS port fails in one line, and marks nothing
        with pytest.raises(DigestError, match=rf"^SMTP 127\.0\.0\.1:{port}: "):
            send_digest(db, make_config(db.url, port, security="none", timeout=2))
        result = send_digest(db, make_config(db.url, port, security="ssl", ca_file=str(ca_file)))
    finally:
        controller.stop()
    assert result.status == "sent"
    assert len(inbox.envelopes) == 1
    assert_lists_exactly(inbox.messages[0], seeded)
    assert sent_items(db) == sorted(seeded.tracked)


# --- through the command line ----------------------------------------------------------------


def test_cli_digest_exits_1_with_one_line_when_smtp_is_down(
    db: Database, smtp_server: tuple[Inbox, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from veille.cli import main

    inbox, up_port = smtp_server
    seeded = seed(db)
    down_port = free_port()
    cfg_file = tmp_path / "config.yaml"

    def write_config(port: int) -> None:
        data = make_config(db.url, port).model_dump(mode="json", by_alias=True, exclude={"source"})
        cfg_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    write_config(down_port)
    code = main(["digest", "--config", str(cfg_file), "--log-format", "text"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1] == f"veille: error: SMTP 127.0.0.1:{down_port}: connection refused"
    assert not any("Traceback" in line for line in err)
    assert sent_items(db) == []

    write_config(up_port)
    assert main(["digest", "--config", str(cfg_file), "--log-format", "text"]) == 0
    assert "digest sent to analyst@example.org, press@example.org: 3 stories" in capsys.readouterr().out
    assert_lists_exactly(inbox.messages[0], seeded)


# --- a story pass while the digest is on its way ---------------------------------------

EVENT_B = ["x:b1", "x:b2", "x:b3", "n:601", "k:lat:police"]
EVENT_A = ["x:a1", "x:a2", "x:a3", "x:a4", "n:501", "k:lat:police"]
BOTH = list(dict.fromkeys(EVENT_A + EVENT_B))  # closer to A, close enough to B alone
T0 = datetime(2025, 3, 1, 8, tzinfo=UTC)


def add_flagged(db: Database, url: str, features: list[str], published: datetime) -> None:
    with db.transaction() as s:
        outlet_id = page_store.ensure_outlet(s, "bladi", "https://www.bladi.net", "fr")
        art = Article(url=url, outlet_id=outlet_id, title=f"Maroc France {url}", text="texte",
                      language="fr", content_hash=url, features=features, published=published)
        art.topics.append(TopicMatchRow(topic=TOPIC, score=9.0, matched=[]))
        s.add(art)


class PassDuringDelivery(Inbox):
    """Runs `during` (a crawl's story pass) at the first recipient, before the message's
    end is sent: once it is, the digest's stories are recorded and no pass moves them."""

    def __init__(self, during: Any) -> None:
        super().__init__()
        self.during = during

    async def handle_RCPT(self, server: Any, session: Any, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if not envelope.rcpt_tos:
            self.during()
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_story_pass_during_sending_cannot_move_what_was_mailed(db: Database) -> None:
    """Story X (reports b and c) is drafted and mailed; while the server receives it, a
    crawl stores an earlier report a and its pass would move c to a's story. What is
    recorded as sent must be what was mailed: c stays in X, and X is marked sent."""
    from veille.pipeline.settle import settle_stories

    add_flagged(db, "https://www.bladi.net/b,1.html", EVENT_B, T0 + timedelta(days=1))
    add_flagged(db, "https://www.bladi.net/c,2.html", BOTH, T0 + timedelta(days=1, hours=12))
    settle_stories(db)
    with db.transaction() as s:
        (story_x,) = set(s.scalars(select(Article.story_id)))

    moved: dict[str, int | None] = {}

    def crawl_meanwhile() -> None:
        add_flagged(db, "https://www.bladi.net/a,0.html", EVENT_A, T0 + timedelta(hours=12))
        settle_stories(db)
        with db.transaction() as s:
            moved.update({url: sid for url, sid in s.execute(select(Article.url, Article.story_id))})

    inbox, port = PassDuringDelivery(crawl_meanwhile), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        result = send_digest(db, make_config(db.url, port))
    finally:
        controller.stop()
    assert result.status == "sent" and result.story_ids == (story_x,)
    assert moved["https://www.bladi.net/c,2.html"] != story_x  # the pass did move it
    with db.transaction() as s:
        now = {url: sid for url, sid in s.execute(select(Article.url, Article.story_id))}
        sent = set(s.scalars(select(DigestItem.story_id)))
        ids = {url: i for url, i in s.execute(select(Article.url, Article.id))}
        mailed = set(s.execute(select(DigestArticle.article_id, DigestArticle.story_id)))
    assert now["https://www.bladi.net/b,1.html"] == now["https://www.bladi.net/c,2.html"] == story_x
    assert sent == {story_x}
    # the articles recorded as mailed are the ones the message carried, in the story it showed
    assert mailed == {(ids["https://www.bladi.net/b,1.html"], story_x), (ids["https://www.bladi.net/c,2.html"], story_x)}
    assert now["https://www.bladi.net/a,0.html"] not in (None, story_x)  # a was not mailed
    settle_stories(db, since=T0)  # later passes leave the mailed story alone
    with db.transaction() as s:
        assert s.scalar(select(Article.story_id).where(Article.url == "https://www.bladi.net/c,2.html")) == story_x
