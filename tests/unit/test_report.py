"""app/report: the terminal tables of `veille stories` and `veille extract`.

Rendered on a recording Rich console and read back as text: which day a story shows, its
outlets once each, why it was flagged (title hits first, each term once, the rest
counted), and what outlets wrote shown as written — brackets included ("[sic]", a stray
"[/i]"), which Rich would otherwise read as markup.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from rich.console import Console

from veille.report import print_extract, print_stories
from veille.storage.views import ArticleView, StoryView, TopicView

SEEN = datetime(2025, 3, 2, 9, tzinfo=UTC)


def console() -> Console:
    return Console(record=True, width=250, file=io.StringIO())


def shown(draw: Any, *args: Any) -> str:
    out = console()
    draw(*args, out)
    return out.export_text()


def article(i: int, outlet: str) -> ArticleView:
    return ArticleView(id=i, url=f"https://{outlet}.example/{i}", outlet=outlet, title=f"t{i}",
                       published=None, language="fr", text="", duplicate_of=None)


def story(sid: int, title: str, published: datetime | None, outlets: list[str],
          topics: list[TopicView]) -> StoryView:
    return StoryView(id=sid, title=title, first_seen=SEEN, last_seen=SEEN, published=published,
                     topics=topics, articles=[article(i, o) for i, o in enumerate(outlets)],
                     updated=SEEN, timeline=[])


def hit(term: str, field: str, count: int = 1) -> dict[str, Any]:
    return {"term": term, "field": field, "count": count}


def test_no_story_says_so() -> None:
    assert shown(print_stories, []).strip() == "No tracked stories yet."


def test_a_story_row_shows_the_stated_day_its_outlets_once_and_why() -> None:
    stated = datetime(2025, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-4)))  # 03-02 in UTC
    flagged = story(7, "Hammouchi reçoit le directeur de la DGSI", stated, ["le360", "bladi", "le360"],
                    [TopicView("maroc-france-securite", 7.5,
                               [hit("dgsi", "text", 3), hit("hammouchi", "title"), hit("dgsi", "title")])])
    quiet = story(8, "Une autre affaire", None, ["bladi"], [])
    text = shown(print_stories, [flagged, quiet])
    assert "2 stories" in text
    line7 = next(ln for ln in text.splitlines() if "│ 7 " in ln or ln.lstrip("│ ").startswith("7 "))
    assert "2025-03-01" in line7 and "le360, bladi" in line7 and "le360, bladi, le360" not in line7
    assert "maroc-france-securite (7.5)" in text
    assert "title: hammouchi, dgsi" in text and "text: dgsi" not in text  # each term once, title first
    line8 = next(ln for ln in text.splitlines() if "Une autre affaire" in ln)
    assert "2025-03-02" in line8 and line8.rstrip(" │").endswith("-")  # first seen; nothing flagged


def test_what_outlets_wrote_is_shown_as_written() -> None:
    title = "[Vidéo] Le préfet [sic] répond [/i] aux [bold]critiques[/bold]"
    text = shown(print_stories, [story(1, title, None, ["bladi"], [])])
    assert title in text
    result = {"url": "https://b.example/[x]", "title": title, "text": "Il a dit [sic] que [/] non.",
              "published": None, "author": "[la rédaction]", "language": "fr", "topics": [],
              "template": [{"line": "Suivez [nous]", "reason": "generic: listed under '[/]'"}]}
    out = shown(print_extract, result)
    for written in (title, "Il a dit [sic] que [/] non.", "author [la rédaction]", "'Suivez [nous]'",
                    "listed under '[/]'"):
        assert written in out, written


def test_an_extract_lists_the_article_then_each_topic_and_its_reasons() -> None:
    matched = [hit("france", "text", 2), hit("maroc", "title"), hit("maroc", "text", 4)]
    matched += [hit(f"terme{i}", "text") for i in range(7)]
    result = {"url": "https://le360.ma/a", "title": "Le Maroc et la France", "text": "Le corps.",
              "published": "2025-03-01T10:00:00+01:00", "author": None, "language": "fr",
              "topics": [{"name": "maroc-france-securite", "score": 6.0, "matched": matched}],
              "template": [{"line": "Les plus lus", "reason": "generic: heading of a related or most-read list"}]}
    out = shown(print_extract, result).splitlines()
    assert out[0] == "Le Maroc et la France"
    assert out[1] == "published 2025-03-01T10:00:00+01:00 · language fr · author ?"
    assert "Le corps." in out
    (why,) = [ln for ln in out if ln.startswith("maroc-france-securite")]
    assert why == ("maroc-france-securite score 6: title: maroc · text: france, terme0, terme1, "
                   "terme2, terme3 (+3 more)")  # six terms shown, title hits first
    assert "template, dropped 'Les plus lus': generic: heading of a related or most-read list" in out


def test_an_extract_with_no_topic_or_no_article_says_so() -> None:
    base = {"url": "https://le360.ma/a", "title": "T", "text": "x", "published": None,
            "author": None, "language": None, "topics": [], "template": []}
    out = shown(print_extract, base)
    assert "published ? · language ? · author ?" in out and "topics: none matched" in out
    skipped = {**base, "skipped": "listing page: 80% of the text is headlines", "url": "https://le360.ma/politique"}
    assert shown(print_extract, skipped).strip() == (
        "not an article: listing page: 80% of the text is headlines (https://le360.ma/politique)")
