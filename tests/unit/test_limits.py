"""pipeline.limits: what one page may cost, cut where it cannot break the page."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from veille.pipeline.limits import (
    MAX_META_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    cap_article,
    cap_page,
    shorten,
)
from veille.pipeline.types import Article, RawPage


def page(body: bytes) -> RawPage:
    return RawPage(url="https://x.example/a-1", final_url="", outlet="x", status=200,
                   headers={}, body=body, fetched_at=datetime(2025, 1, 1, tzinfo=UTC))


def article(title: str = "Titre", text: str = "Texte.", author: str | None = None) -> Article:
    return Article(url="https://x.example/a-1", outlet="x", title=title, text=text,
                   published=None, author=author, site_name=None, language="fr")


def test_a_small_page_is_untouched() -> None:
    raw = page(b"<p>court</p>")
    assert cap_page(raw, 100) == (raw, None)


def test_a_big_page_is_cut_before_a_tag_and_said_so() -> None:
    body = ("<p>" + "é" * 40 + "</p>").encode() * 50
    capped, note = cap_page(page(body), 1000)
    assert len(capped.body) <= 1000 and capped.body.endswith(b"</p>")
    capped.body.decode("utf-8")  # no character split
    assert note is not None and f"{len(body):,} bytes" in note


def test_an_article_within_limits_is_the_same_object() -> None:
    art = article()
    assert cap_article(art) == (art, ())


def test_every_field_is_cut_to_its_limit_with_a_note_each() -> None:
    art = article(title="t " * MAX_TITLE_CHARS, text="mot " * MAX_TEXT_CHARS,
                  author="a" * (MAX_META_CHARS + 1))
    capped, notes = cap_article(art)
    assert len(capped.title) <= MAX_TITLE_CHARS and len(capped.text) <= MAX_TEXT_CHARS
    assert capped.author is not None and len(capped.author) <= MAX_META_CHARS
    assert [n.split(" of ")[0] for n in notes] == ["title", "text", "author"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.integers(2, 200))
def test_shorten_never_exceeds_its_limit_and_keeps_short_values(value: str, limit: int) -> None:
    out = shorten(value, limit)
    assert len(out) <= limit
    assert out == value if len(value) <= limit else out.endswith("…")
