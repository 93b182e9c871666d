"""Atom 1.0 feeds, one per topic, so an analyst can follow a topic in a feed reader.

Built with xml.etree (every value escaped by the serialiser; characters XML 1.0 forbids
are dropped first). Ids never change: the feed's is its topic's, an entry's is its
story's, so a reader keeps one item per story; an entry's `updated` is when the story last
gained an article, so a story that develops rises again in the reader.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from veille.storage.timestamps import as_utc
from veille.storage.views import StoryView

ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ID_PREFIX = "tag:veille,2025:"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

ET.register_namespace("", ATOM)


def clean(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry (control characters)."""
    return _NOT_XML.sub("", text)


def feed_id(topic: str) -> str:
    return f"{ID_PREFIX}topic/{quote(topic, safe='')}"


def entry_id(story_id: int) -> str:
    return f"{ID_PREFIX}story/{story_id}"


def _stamp(value: datetime) -> str:
    return as_utc(value).astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        el.text = clean(text)
    return el


def summary(view: StoryView) -> str:
    """"3 outlets: le360, hespress, bladi · fr, ar" — who covered the story, in which languages."""
    outlets = list(dict.fromkeys(a.outlet for a in view.articles))
    langs = sorted({a.language for a in view.articles if a.language})
    head = f"{len(outlets)} outlet{'s' if len(outlets) != 1 else ''}: {', '.join(outlets)}"
    return head + (f" · {', '.join(langs)}" if langs else "")


def topic_feed(
    topic: str,
    label: str,
    stories: Sequence[StoryView],
    *,
    self_url: str,
    page_url: str,
    story_url: Callable[[int], str],
    now: datetime,
) -> bytes:
    """The topic's feed as UTF-8 XML, entries most recently developed first.

    Args:
        topic, label: the topic's name (in the feed's id) and what readers show.
        stories: the stories to carry (their `updated` orders them).
        self_url, page_url: the feed's own URL and the topic's page.
        story_url: a story id → the absolute URL of its page.
        now: the feed's `updated` when it has no entry.
    """
    ordered = sorted(stories, key=lambda v: (as_utc(v.updated), v.id), reverse=True)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _add(feed, "id", feed_id(topic))
    _add(feed, "title", f"veille — {label}")
    _add(feed, "subtitle", f"Stories flagged for the topic {topic}, as they develop")
    _add(feed, "updated", _stamp(ordered[0].updated if ordered else now))
    _add(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    _add(feed, "link", rel="alternate", type="text/html", href=page_url)
    author = _add(feed, "author")
    _add(author, "name", "veille")
    _add(feed, "generator", "veille")
    for view in ordered:
        entry = _add(feed, "entry")
        first = view.articles[0] if view.articles else None
        if first is not None and first.language:
            entry.set(XML_LANG, first.language)
        _add(entry, "id", entry_id(view.id))
        _add(entry, "title", " ".join(view.title.split()) or f"story {view.id}", type="text")
        _add(entry, "updated", _stamp(view.updated))
        _add(entry, "published", _stamp(view.published or view.first_seen))
        _add(entry, "link", rel="alternate", type="text/html", href=story_url(view.id))
        _add(entry, "summary", summary(view), type="text")
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))
