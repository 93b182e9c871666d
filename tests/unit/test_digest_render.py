"""The digest's pure half: StoryView lists → draft → text, HTML and the email message."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import lxml.html
import pytest

from veille.digest import (
    EXCERPT_CHARS,
    Development,
    DigestError,
    build_message,
    draft_from_stories,
    excerpt,
    is_rtl,
    render_html,
    render_text,
)
from veille.digest_draft import language_name
from veille.pipeline.config import Config, config_from_dict
from veille.storage.views import ArticleView, StoryView, TimelineEntry, TopicView

NOW = datetime(2024, 7, 2, 6, 30, tzinfo=UTC)  # 07:30 in Casablanca (UTC+1)


def config(**digest: Any) -> Config:
    return config_from_dict(
        {
            "topics": [
                {"name": "securite", "label": "Sécurité Maroc–France", "require": [["dgsn"]]},
                {"name": "extraditions", "label": "Extraditions", "require": [["extradition"]]},
                {"name": "sport", "require": [["raja"]]},
            ],
            "schedule": {"timezone": "Africa/Casablanca"},
            "digest": {
                "topics": ["securite", "extraditions"],
                "to": ["a@example.org"],
                "from": "veille@news.example.ma",
                **digest,
            },
        }
    )


def article(i: int, outlet: str, url: str, text: str = "Texte.", lang: str = "fr", title: str = "T") -> ArticleView:
    return ArticleView(i, url, outlet, title, NOW, lang, text, None)


def story(
    sid: int,
    title: str,
    topics: list[TopicView],
    articles: list[ArticleView],
    hours: float = 1,
) -> StoryView:
    seen = NOW - timedelta(hours=hours)
    timeline = [TimelineEntry(a.id, seen, a.outlet, a.language, a.title, a.url, a.published, a.duplicate_of)
                for a in articles]
    return StoryView(sid, title, seen, seen, None, topics, articles, seen, timeline)


SEC = TopicView("securite", 7.5, [
    {"term": "dgsn", "field": "title", "count": 1},
    {"term": "dgsn", "field": "text", "count": 3},
    {"term": "france", "field": "text", "count": 1},
])
EXT = TopicView("extraditions", 4.0, [{"term": "extradition", "field": "title", "count": 1}])


def stories() -> list[StoryView]:
    return [
        story(1, "La DGSN et la DGSI renforcent leur coopération", [SEC], [
            article(11, "le360", "https://le360.ma/a?x=1&y=2", "Le360 écrit. " * 40),
            article(12, "hespress", "https://fr.hespress.com/b.html"),
            article(13, "le360", "https://le360.ma/a-bis"),
        ]),
        story(2, "Extradition d'un suspect <b>vers</b> la France", [EXT], [
            article(21, "h24info", "https://h24info.ma/c"),
            article(22, "evil", "javascript:alert(1)"),
        ], hours=2),
        story(3, "المغرب وفرنسا: تعاون أمني", [SEC, EXT], [
            article(31, "hespress", "https://hespress.com/d", "تعاون أمني بين البلدين " * 30, "ar"),
        ], hours=3),
        story(4, "Le Raja gagne", [TopicView("sport", 3.0, [])], [article(41, "le360", "https://le360.ma/raja")]),
    ]


# --- the draft -----------------------------------------------------------------------------


def test_grouped_by_first_digest_topic_each_story_once() -> None:
    draft = draft_from_stories(stories(), config(), now=NOW)
    assert [(s.topic, s.label, [x.id for x in s.stories]) for s in draft.sections] == [
        ("securite", "Sécurité Maroc–France", [1, 3]),
        ("extraditions", "Extraditions", [2]),
    ]
    assert draft.count == 3 and draft.story_ids == [1, 3, 2]
    both = draft.sections[0].stories[1]
    assert [r.topic for r in both.reasons] == ["securite", "extraditions"]


def test_reasons_links_and_local_time() -> None:
    first = draft_from_stories(stories(), config(), now=NOW).sections[0].stories[0]
    assert [(t.term, t.where) for t in first.reasons[0].terms] == [
        ("dgsn", "title, text ×3"),
        ("france", "text"),
    ]
    assert first.reasons[0].score == 7.5
    assert [link.label for link in first.links] == ["le360", "hespress", "le360 (2)"]
    assert first.outlets == ["le360", "hespress"]
    assert first.first_seen_local == "2024-07-02 06:30"  # 05:30 UTC in Casablanca


def test_excerpt_is_about_two_lines_cut_at_a_word() -> None:
    text = "Le directeur de la DGSN a reçu son homologue. " * 20
    cut = excerpt(text)
    assert len(cut) <= EXCERPT_CHARS + 1 and cut.endswith("…")
    assert text.startswith(cut[:-1])
    assert excerpt("Titre. Corps   du\n\ntexte.", "Titre") == "Corps du texte."
    assert excerpt("court") == "court"


def test_arabic_detection() -> None:
    assert is_rtl("المغرب وفرنسا: تعاون أمني")
    assert is_rtl("DGSN: تعاون أمني بين المغرب وفرنسا")
    assert not is_rtl("La DGSN et la DGSI")
    assert not is_rtl("")


# --- rendering -----------------------------------------------------------------------------


def test_html_is_escaped_self_contained_and_rtl_where_arabic() -> None:
    html = render_html(draft_from_stories(stories(), config(), now=NOW))
    doc = lxml.html.fromstring(html)
    assert "&lt;b&gt;vers&lt;/b&gt;" in html and "<b>vers</b>" not in html
    assert doc.xpath("//script|//img|//style|//link|//iframe") == []
    assert "src=" not in html
    hrefs = doc.xpath("//a/@href")
    assert "https://le360.ma/a?x=1&y=2" in hrefs  # parsed back from &amp;
    assert not any(h.lower().startswith("javascript:") for h in hrefs)
    assert "evil" in doc.text_content()  # the outlet is named, just not linked
    rtl = doc.xpath("//*[@dir='rtl']")
    assert len(rtl) == 2 and all(el.get("lang") == "ar" for el in rtl)
    assert rtl[0].text_content().strip() == "المغرب وفرنسا: تعاون أمني"
    assert "Le Raja gagne" not in doc.text_content()


def test_text_part_lists_stories_reasons_and_links() -> None:
    text = render_text(draft_from_stories(stories(), config(), now=NOW))
    assert "== Sécurité Maroc–France (2) ==" in text
    assert "1. La DGSN et la DGSI renforcent leur coopération" in text
    flat = " ".join(text.split())
    assert "Why: Sécurité Maroc–France, score 7.5 — dgsn (title, text ×3); france (text)" in flat
    assert "   - le360 (2): https://le360.ma/a-bis" in text
    assert "<b>vers</b>" in text  # plain text is not HTML-escaped
    assert "Le Raja" not in text
    assert all(len(line) <= 110 for line in text.splitlines() if not line.startswith("   - "))


def test_empty_draft_renders_a_no_news_message() -> None:
    draft = draft_from_stories([], config(), now=NOW)
    assert draft.count == 0 and draft.sections == ()
    assert "No new tracked stories." in render_text(draft)
    assert "No new tracked stories." in render_html(draft)


# --- the message ---------------------------------------------------------------------------


def test_message_headers_and_parts() -> None:
    draft = draft_from_stories(stories(), config(), now=NOW)
    msg = build_message(draft, config(subject="Veille {date} — {count} nouvelles"))
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == "Veille 2024-07-02 — 3 nouvelles"
    assert parsed["From"] == "veille@news.example.ma"
    assert parsed["To"] == "a@example.org"
    assert parsed["Message-ID"].endswith("@news.example.ma>")
    assert parsed["Date"].datetime == NOW
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    for part in parsed.iter_parts():
        assert part.get_content_charset() == "utf-8"
    html_part = list(parsed.iter_parts())[1]
    assert isinstance(html_part, EmailMessage)
    assert "المغرب وفرنسا" in html_part.get_content()


@pytest.mark.parametrize("subject", ["Veille {day}", "Veille {0}", "Veille {count:q}"])
def test_bad_subject_template_is_a_one_line_error(subject: str) -> None:
    draft = draft_from_stories(stories(), config(), now=NOW)
    with pytest.raises(DigestError, match=r"^digest\.subject: .*use only \{date\} and \{count\}$"):
        build_message(draft, config(subject=subject))


def test_reasons_show_the_strongest_terms_and_count_the_rest() -> None:
    from veille.digest_draft import REASON_TERMS, _terms

    matched = [{"term": f"t{i}", "field": "text", "count": i} for i in range(1, 13)]
    matched.append({"term": "t1", "field": "title", "count": 1})
    terms, more = _terms(matched)
    assert [t.term for t in terms][:3] == ["t1", "t12", "t11"]  # title hit first, then frequency
    assert len(terms) == REASON_TERMS and more == 12 - REASON_TERMS
    assert terms[0].where == "text, title"


# --- developing stories ----------------------------------------------------------------------


def developing_story() -> Development:
    """Story 1 mailed yesterday (le360, hespress); since then an Arabic outlet, a new
    French one with two articles, and a javascript: link joined it."""
    s = story(1, "La DGSN et la DGSI renforcent leur coopération", [SEC], [
        article(11, "le360", "https://le360.ma/a"),
        article(12, "hespress", "https://fr.hespress.com/b.html"),
        article(13, "alyaoum24", "https://alyaoum24.com/1.html", lang="ar", title="تعاون <b>أمني</b>"),
        article(14, "yabiladi", "https://yabiladi.com/2", title="Suite <script>"),
        article(15, "yabiladi", "javascript:alert(1)"),
    ])
    return Development(s, frozenset({13, 14, 15}), NOW - timedelta(days=1))


def test_what_a_developing_story_adds_is_said_in_words() -> None:
    draft = draft_from_stories([], config(), now=NOW, developing=[developing_story()])
    (dev,) = draft.developing
    assert dev.news == "+2 outlets: alyaoum24, yabiladi; first Arabic coverage; +1 follow-up: yabiladi"
    assert [(a.id, a.language) for a in dev.articles] == [(13, "Arabic"), (14, "French"), (15, "French")]
    assert dev.topic == "Sécurité Maroc–France" and dev.first_mailed_local == "2024-07-01 07:30"
    assert draft.count == 1 and draft.story_ids == [] and draft.carried == {1: (13, 14, 15)}
    assert language_name("en") == "English" and language_name("xx-zz") == "xx-zz" and language_name(None) == ""


def test_a_story_both_new_and_developing_is_shown_once_as_new() -> None:
    draft = draft_from_stories(stories(), config(), now=NOW, developing=[developing_story()])
    assert draft.developing == () and draft.count == 3
    assert draft.carried[1] == (11, 12, 13)  # a new story carries every article


def test_developing_section_in_both_parts_escaped() -> None:
    draft = draft_from_stories([], config(), now=NOW, developing=[developing_story()])
    text, html = render_text(draft), render_html(draft)
    assert "1 story (1 developing)" in text and "== Developing (1) ==" in text
    assert "   - alyaoum24 (Arabic), 2024-07-02 07:30: تعاون <b>أمني</b>" in text
    assert "https://le360.ma/a" not in text and "No new tracked stories." not in text
    doc = lxml.html.fromstring(html)
    assert "Suite &lt;script&gt;" in html and doc.xpath("//script") == []
    assert doc.xpath("//a/@href") == ["https://alyaoum24.com/1.html", "https://alyaoum24.com/1.html",
                                       "https://yabiladi.com/2"]  # the title, then each safe article
    assert [d.text_content() for d in doc.xpath("//div[@dir='rtl']")] == ["تعاون <b>أمني</b>"]
