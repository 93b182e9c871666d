"""What storing an article needs that depends on the article alone, computed once.

Extraction workers (`crawler.pipelines`) call `prepare` right after `extract`, so the
crawl process, which stores one article at a time and is the bottleneck of a big run,
spends its time on the database and the duplicate index only: hashes, MinHash, story
features and topic matches are pure functions of the text and run on every core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from veille.pipeline.classify import classify
from veille.pipeline.config import TopicConfig
from veille.pipeline.dedup import Signature, content_hash, minhash, signature_bytes
from veille.pipeline.limits import cap_article
from veille.pipeline.normalize import tokens
from veille.pipeline.stories import article_features
from veille.pipeline.types import Article, TopicMatch


@dataclass(frozen=True)
class Prepared:
    """An extracted article and everything derived from it alone."""

    article: Article
    content_hash: str
    signature: Signature
    signature_bytes: bytes  # as stored
    features: tuple[str, ...]
    matches: tuple[TopicMatch, ...]
    cut: tuple[str, ...] = ()  # what pipeline.limits cut from the article, for the log

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(m.topic for m in self.matches)


def prepare(article: Article, topics: Sequence[TopicConfig]) -> Prepared:
    """Hash, sign, describe and classify an article (see `Prepared`), its title and text
    first cut to their limits (pipeline.limits): everything after costs by the character."""
    article, cut = cap_article(article)
    toks = tokens(article.text)  # once for the hash, the signature and the topics
    signature = minhash(article.text, toks=toks)
    return Prepared(
        article=article,
        content_hash=content_hash(article.text, toks),
        signature=signature,
        signature_bytes=signature_bytes(signature),
        features=tuple(article_features(article.title, article.text, article.language)),
        matches=tuple(classify(article.title, article.text, topics, toks)),
        cut=cut,
    )
