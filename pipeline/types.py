"""Plain data passed between stages: crawler → pipeline → storage.

Frozen dataclasses so a stage cannot change what an earlier stage produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Field = Literal["title", "text"]


@dataclass(frozen=True)
class RawPage:
    """A fetched page as the crawler hands it over; nothing parsed yet."""

    url: str  # canonical URL of the request (the article's identity)
    final_url: str  # after redirects
    outlet: str  # outlet name (config slug)
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    fetched_at: datetime
    language_hint: str | None = None


@dataclass(frozen=True)
class Article:
    """What extraction keeps of a page: the article alone, no boilerplate."""

    url: str
    outlet: str
    title: str
    text: str
    published: datetime | None
    author: str | None
    site_name: str | None
    language: str | None
    final_url: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A page that is not an article (listing, tag, video, too short): counted, not an error."""

    url: str
    reason: str


@dataclass(frozen=True)
class TermHit:
    term: str  # the term as configured
    field: Field
    count: int


@dataclass(frozen=True)
class TopicMatch:
    """Why a text was flagged: every matched term, where, and the resulting score."""

    topic: str
    score: float
    matched: tuple[TermHit, ...] = field(default_factory=tuple)

    def terms(self) -> list[str]:
        seen: list[str] = []
        for hit in self.matched:
            if hit.term not in seen:
                seen.append(hit.term)
        return seen
