"""pipeline/prepare: what an extraction worker computes from an article alone.

`Prepared` crosses the process pool (pickled), and the crawl process stores it as it is:
so it must survive pickling, carry its signature in the bytes storage keeps, and derive
every value (hash, signature, features, topics) from the article as capped by
pipeline.limits — never from the oversized original.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from veille.pipeline.config import TopicConfig
from veille.pipeline.dedup import content_hash, signature_from_bytes
from veille.pipeline.limits import MAX_TEXT_CHARS, MAX_TITLE_CHARS
from veille.pipeline.prepare import prepare
from veille.pipeline.types import Article

TOPICS = [
    TopicConfig.model_validate({"name": "securite", "require": [["maroc"], ["france"], ["sécurité"]],
                                "boost": ["hammouchi"], "min_score": 1}),
    TopicConfig.model_validate({"name": "sport", "require": [["raja", "wydad"]], "min_score": 1}),
]
TEXT = ("Le Maroc et la France renforcent leur coopération en matière de sécurité. "
        "Abdellatif Hammouchi a reçu à Rabat une délégation venue de Paris pour préparer "
        "les grands événements sportifs. ") * 6


def article(title: str = "Hammouchi reçoit une délégation française à Rabat", text: str = TEXT) -> Article:
    return Article(url="https://le360.ma/a/1", outlet="le360", title=title, text=text,
                   published=datetime(2025, 3, 1, tzinfo=UTC), author=None, site_name=None,
                   language="fr")


def test_an_article_within_the_limits_is_kept_as_it_is_and_flagged() -> None:
    art = article()
    prep = prepare(art, TOPICS)
    assert prep.article is art and prep.cut == ()
    assert prep.topics == ("securite",)
    (match,) = prep.matches
    assert {h.term for h in match.matched} >= {"maroc", "france", "hammouchi"}
    assert "x:hammouchi" in prep.features and "x:rabat" in prep.features


def test_what_storage_keeps_reads_back_as_the_signature() -> None:
    prep = prepare(article(), TOPICS)
    assert prep.content_hash == content_hash(TEXT)
    assert signature_from_bytes(prep.signature_bytes) == prep.signature
    assert prep.signature.size > 0


def test_it_survives_the_trip_from_a_worker_process() -> None:
    prep = prepare(article(), TOPICS)
    back = pickle.loads(pickle.dumps(prep))
    assert back == prep and back.topics == prep.topics


def test_an_oversized_article_is_cut_before_anything_is_derived_from_it() -> None:
    """A topic's words beyond the text limit do not flag it, and the hash is the stored text's."""
    filler = "Un texte sans rapport avec le moindre sujet suivi, répété encore et encore. "
    text = filler * (MAX_TEXT_CHARS // len(filler) + 1) + "Le Raja et le Wydad jouent le derby."
    title = "Titre " * (MAX_TITLE_CHARS // 6 + 10)
    prep = prepare(article(title=title, text=text), TOPICS)
    assert len(prep.article.text) <= MAX_TEXT_CHARS and len(prep.article.title) <= MAX_TITLE_CHARS
    assert len(prep.cut) == 2 and all(note for note in prep.cut)
    assert "sport" not in prep.topics
    assert prep.content_hash == content_hash(prep.article.text) != content_hash(text)


def test_a_copy_with_other_typography_prepares_to_the_same_hash_and_signature() -> None:
    """How a syndicated copy is recognised: case, accents and punctuation do not count."""
    copy = TEXT.upper().replace("É", "E").replace(".", " ;")
    first, second = prepare(article(), TOPICS), prepare(article(text=copy), TOPICS)
    assert second.content_hash == first.content_hash
    assert second.signature == first.signature
    assert prepare(article(text=TEXT + " Un ajout."), TOPICS).content_hash != first.content_hash
