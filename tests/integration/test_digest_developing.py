"""Developing stories end to end: a story mailed to a recipient list that gains coverage
comes back under "Developing" with only the articles that list was not mailed, each
article at most once per list. Real database (SQLite and PostgreSQL), real SMTP server
(aiosmtpd on 127.0.0.1), the seed of test_digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import lxml.html
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from sqlalchemy import select, update

from tests.integration.test_digest import (
    TO,
    TRACKED,
    Inbox,
    Seeded,
    free_port,
    make_config,
    parts,
    seed,
)
from veille.digest import DigestError, send_digest
from veille.pipeline.config import Config
from veille.storage import digests as digest_store
from veille.storage import pages as page_store
from veille.storage.db import Database
from veille.storage.models import Article, Digest, DigestArticle, DigestItem

OTHERS = ["desk@example.org"]  # a second recipient list
HAMMOUCHI = TRACKED[0]  # le360, hespress-fr, bladi; French
NEW = [  # what the Hammouchi story gains the next day: an Arabic outlet and a French one
    ("hespress", "https://www.hespress.com/حموشي-المديرية-العامة-5001.html", "ar",
     "حموشي يستقبل مدير المخابرات الداخلية الفرنسية"),
    ("yabiladi", "https://www.yabiladi.com/articles/details/5002/hammouchi-dgsi.html", "fr",
     "Sécurité : Hammouchi et la DGSI font le point"),
]


def story_of(seeded: Seeded, spec: dict[str, Any]) -> int:
    return next(sid for sid, s in seeded.tracked.items() if s is spec)


def gain(db: Database, story_id: int, articles: list[tuple[str, str, str, str]],
         seen: datetime | None = None) -> list[int]:
    """Articles joining a story (as a story pass puts them there): not flagged themselves."""
    seen = seen or datetime.now(UTC) - timedelta(hours=3)
    ids = []
    with db.transaction() as s:
        for i, (outlet, url, lang, title) in enumerate(articles):
            outlet_id = page_store.ensure_outlet(s, outlet, f"https://{outlet}.example/", lang)
            art = Article(url=url, outlet_id=outlet_id, story_id=story_id, title=title, text="نص / texte",
                          language=lang, content_hash=digest_store.recipients_key([url]), first_seen=seen + timedelta(minutes=i),
                          published=seen + timedelta(minutes=i))
            s.add(art)
            s.flush()
            ids.append(art.id)
    return ids


def mailed_days_ago(db: Database, days: float) -> None:
    """Every digest so far was sent `days` ago."""
    when = datetime.now(UTC) - timedelta(days=days)
    with db.transaction() as s:
        s.execute(update(Digest).values(created_at=when, sent_at=when))


def with_digest(cfg: Config, **digest: Any) -> Config:
    return cfg.model_copy(update={"digest": cfg.digest.model_copy(update=digest)})


def mailed(db: Database, to: list[str]) -> set[int]:
    """Article ids recorded as mailed to this list."""
    key = digest_store.recipients_key(to)
    with db.transaction() as s:
        return set(s.scalars(select(DigestArticle.article_id).where(DigestArticle.recipients_key == key)))


def article_ids(db: Database, story_id: int) -> set[int]:
    with db.transaction() as s:
        return set(s.scalars(select(Article.id).where(Article.story_id == story_id)))


def developing_part(text: str) -> str:
    head = "== Developing ("
    assert text.count(head) == 1, "no Developing section in the text part"
    return text[text.index(head):]


def urls_in(msg: EmailMessage) -> tuple[set[str], str]:
    """Every URL of the message (HTML links, and the text part) and its text part."""
    text, html = parts(msg)
    hrefs = set(lxml.html.fromstring(html).xpath("//a/@href"))
    return hrefs, text


def test_a_story_that_gains_two_outlets_comes_back_once_with_only_those(
    db: Database, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    seeded = seed(db)
    cfg = make_config(db.url, port)
    assert send_digest(db, cfg).count == 3
    mailed_days_ago(db, 1)  # yesterday's digest
    story = story_of(seeded, HAMMOUCHI)
    new_ids = gain(db, story, NEW)

    result = send_digest(db, cfg)

    assert (result.status, result.count, result.developing, result.story_ids) == ("sent", 1, 1, ())
    assert "1 story (1 developing)" in result.summary()
    msg = inbox.messages[1]
    assert msg["Subject"].endswith(": 1 stories")  # {count}: stories shown, developing ones too
    hrefs, text = urls_in(msg)
    new_urls = {url for _o, url, _l, _t in NEW}
    old_urls = {url for _o, url, _l in HAMMOUCHI["articles"]}
    assert new_urls <= hrefs and old_urls.isdisjoint(hrefs)
    assert all(url in text for url in new_urls) and not any(url in text for url in old_urls)
    section = developing_part(text)
    flat = " ".join(section.split())
    assert HAMMOUCHI["title"] in section
    assert "New: +2 outlets: hespress, yabiladi; first Arabic coverage" in flat
    assert "- hespress (Arabic), " in section and "- yabiladi (French), " in section
    assert NEW[0][3] in section and NEW[1][3] in section
    # no other story came back, and nothing was new
    assert all(spec["title"] not in text for spec in TRACKED[1:])
    assert "== Coopération" not in text
    html_text = lxml.html.fromstring(parts(msg)[1]).text_content()
    assert "Developing" in html_text and "first Arabic coverage" in html_text
    # the Arabic title of the new article reads right to left
    doc = lxml.html.fromstring(parts(msg)[1])
    assert [d.text_content() for d in doc.xpath("//div[@dir='rtl']")] == [NEW[0][3]]
    # recorded: each of the story's articles once for this list; the story once as new
    assert mailed(db, TO) >= article_ids(db, story)
    with db.transaction() as s:
        assert len(s.scalars(select(DigestItem).where(DigestItem.story_id == story)).all()) == 1
        rows = s.scalars(select(DigestArticle).where(DigestArticle.article_id.in_(new_ids))).all()
        assert {(r.digest_id, r.story_id) for r in rows} == {(result.digest_id, story)}

    again = send_digest(db, cfg)

    assert again.status == "empty" and len(inbox.envelopes) == 2


def test_a_follow_up_from_an_outlet_it_had_is_named_so(db: Database, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    seeded = seed(db)
    cfg = make_config(db.url, port)
    send_digest(db, cfg)
    gain(db, story_of(seeded, HAMMOUCHI), [
        ("le360", "https://le360.ma/societe/hammouchi-dgsi-suite", "fr", "Hammouchi–DGSI : la suite"),
    ])
    send_digest(db, cfg)
    section = developing_part(parts(inbox.messages[1])[0])
    assert "   New: +1 follow-up: le360\r\n" in section  # no new outlet, no new language


def test_only_within_developing_days_of_the_first_mail(db: Database, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    seeded = seed(db)
    cfg = make_config(db.url, port)
    send_digest(db, cfg)
    mailed_days_ago(db, 8)  # past the default 7 days
    gain(db, story_of(seeded, HAMMOUCHI), NEW)

    assert send_digest(db, cfg).status == "empty"
    assert len(inbox.envelopes) == 1

    longer = with_digest(cfg, developing_days=9)
    result = send_digest(db, longer)
    assert (result.status, result.developing) == ("sent", 1)
    assert NEW[0][1] in parts(inbox.messages[1])[0]


def test_developing_off(db: Database, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    seeded = seed(db)
    cfg = make_config(db.url, port)
    send_digest(db, cfg)
    gain(db, story_of(seeded, HAMMOUCHI), NEW)
    off = with_digest(cfg, developing=False)

    assert send_digest(db, off).status == "empty"
    dry = send_digest(db, off, dry_run=True)
    assert dry.count == 0 and "Developing" not in (dry.text or "")
    assert len(inbox.envelopes) == 1
    # turned back on, the articles are still unmailed: they come
    assert send_digest(db, cfg).developing == 1


def test_two_recipient_lists_are_tracked_apart(db: Database, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    seeded = seed(db)
    story = story_of(seeded, HAMMOUCHI)
    team, desk = make_config(db.url, port), with_digest(make_config(db.url, port), to=OTHERS)
    send_digest(db, team)
    gain(db, story, NEW)

    # the desk never had the story: it comes as new, with all five articles
    first = send_digest(db, desk)
    assert (first.count, first.developing) == (3, 0)
    hrefs, text = urls_in(inbox.messages[1])
    assert {url for _o, url, _l, _t in NEW} <= hrefs and "Developing" not in text
    assert mailed(db, OTHERS) >= article_ids(db, story)

    # the team had three of them: only the two new ones come back
    back = send_digest(db, team)
    assert (back.count, back.developing) == (1, 1)
    hrefs, _text = urls_in(inbox.messages[2])
    assert hrefs == {url for _o, url, _l, _t in NEW}

    assert send_digest(db, team).status == "empty"
    assert send_digest(db, desk).status == "empty"

    # one more article: each list gets it once
    (late,) = gain(db, story, [("barlamane", "https://www.barlamane.com/hammouchi-5003", "fr", "Barlamane")],
                   seen=datetime.now(UTC) - timedelta(hours=1))
    for cfg in (desk, team):
        result = send_digest(db, cfg)
        assert (result.count, result.developing) == (1, 1)
        assert send_digest(db, cfg).status == "empty"
    assert [set(urls_in(m)[0]) for m in inbox.messages[3:]] == [{"https://www.barlamane.com/hammouchi-5003"}] * 2
    assert late in mailed(db, TO) and late in mailed(db, OTHERS)


class Refusing(Inbox):
    """Refuses the message once its end arrives (after veille recorded it unconfirmed)."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        return "554 5.6.0 message refused"


def test_failed_or_written_digests_record_no_article(db: Database, smtp_server: tuple[Inbox, int],
                                                    tmp_path: Any) -> None:
    inbox, port = smtp_server
    seeded = seed(db)
    story = story_of(seeded, HAMMOUCHI)
    cfg = make_config(db.url, port)
    send_digest(db, cfg)
    before = mailed(db, TO)
    gain(db, story, NEW)

    down = make_config(db.url, free_port())  # nothing listens there
    with pytest.raises(DigestError, match="connection refused"):
        send_digest(db, down)
    assert mailed(db, TO) == before

    refusing, refusing_port = Refusing(), free_port()
    controller = Controller(refusing, hostname="127.0.0.1", port=refusing_port)
    controller.start()
    try:
        with pytest.raises(DigestError, match="554"):
            send_digest(db, make_config(db.url, refusing_port))
    finally:
        controller.stop()
    assert mailed(db, TO) == before  # recorded at the handover, taken back on the refusal

    written = send_digest(db, cfg, out=tmp_path / "digest.eml")
    assert (written.status, written.developing) == ("written", 1)
    assert mailed(db, TO) == before  # a file is not a delivery

    result = send_digest(db, cfg)
    assert result.developing == 1 and len(inbox.envelopes) == 2
    assert mailed(db, TO) == before | article_ids(db, story)
