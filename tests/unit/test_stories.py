"""pipeline/stories.py on small hand-made reports: features, the index, the window, the IDF.

The bigger corpus tests (the replay fixtures, 5,000 synthetic articles) stay in
test_dedup.py; here each test is one rule of the module on a few sentences.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from veille.pipeline.stories import (
    MIN_IDF_STORIES,
    NEW,
    WINDOW_DAYS,
    Placed,
    StoryIndex,
    article_features,
    assign_stories,
    kind,
    namespace,
)

T0 = datetime(2025, 2, 12, 9, 0, tzinfo=UTC)

# one event, a French fugitive arrested in Tangier, told in French and in Arabic
FR = (
    "Tanger : la DGSN arrête un fugitif français visé par une notice rouge d'Interpol",
    "Les services de la Sûreté nationale ont interpellé le 12 février à Tanger un ressortissant "
    "français de 38 ans, recherché par Interpol pour trafic de cocaïne. La France a demandé son "
    "extradition. Le suspect a été présenté au parquet de Tanger.",
    "fr",
)
AR = (
    "طنجة: توقيف فرنسي مبحوث عنه بموجب نشرة حمراء للأنتربول",
    "أوقفت عناصر المديرية العامة للأمن الوطني يوم 12 فبراير بطنجة مواطنا فرنسيا يبلغ من العمر 38 "
    "سنة، مبحوثا عنه من طرف الانتربول بسبب الاتجار في الكوكايين. وطلبت فرنسا تسليمه.",
    "ar",
)
# other events of the same week, in the same words: police, sécurité, DGSN, Maroc, France
ROAD = (
    "Rabat : la police lance une campagne de sécurité routière",
    "La Direction générale de la Sûreté nationale a lancé le 14 février à Rabat une campagne de "
    "sensibilisation à la sécurité routière. Les agents de police distribueront 5000 dépliants "
    "aux conducteurs. Le Maroc s'inspire de la France, selon la DGSN.",
    "fr",
)
RECRUIT = (
    "La DGSN recrute 4000 policiers",
    "La Sûreté nationale ouvre un concours de recrutement de 4000 gardiens de la paix et "
    "inspecteurs de police. Les candidats seront formés à l'institut de police de Kénitra. "
    "La sécurité au Maroc demande des effectifs, dit la DGSN.",
    "fr",
)


def feats(report: tuple[str, str, str]) -> list[str]:
    return article_features(*report)


# -- article_features ----------------------------------------------------------------------


def test_french_and_arabic_reports_meet_through_the_lexicon_aliases() -> None:
    fr, ar = set(feats(FR)), set(feats(AR))
    # Interpol / الانتربول, Tanger / بطنجة (a clitic), Sûreté nationale / المديرية العامة للأمن الوطني,
    # notice rouge / نشرة حمراء, 12 février / 12 فبراير
    meeting = {"x:interpol", "x:tanger", "x:dgsn", "x:france", "c:red-notice", "d:02-12", "n:38"}
    assert meeting <= fr & ar
    # keywords never cross scripts
    assert {namespace(f) for f in fr if kind(f) == "k"} == {"k:lat"}
    assert {namespace(f) for f in ar if kind(f) == "k"} == {"k:ar"}


def test_features_are_ordered_by_kind_names_first_keywords_last() -> None:
    order = "xcednk"
    kinds = [order.index(kind(f)) for f in feats(FR)]
    assert kinds == sorted(kinds)
    assert len(set(feats(FR))) == len(feats(FR))


def test_numbers_need_two_digits_and_no_leading_zero_and_thousands_are_joined() -> None:
    found = set(article_features("", "À 07:34, 4.000 policiers et 7 chiens, 2024 fois 12.", "fr"))
    assert {"n:4000", "n:2024", "n:12", "n:34"} <= found
    assert not {"n:07", "n:7", "n:4", "n:000"} & found


def test_kind_and_namespace() -> None:
    assert kind("x:dgsn") == "x" and namespace("x:dgsn") == "x"
    assert namespace("k:lat:securi") == "k:lat" and namespace("k:ar:توقيف") == "k:ar"


# -- StoryIndex ----------------------------------------------------------------------------


def test_same_event_in_french_and_arabic_is_one_story_across_scripts() -> None:
    idx = StoryIndex()
    idx.add("tanger", feats(FR), T0)
    [best] = idx.candidates(feats(AR), T0 + timedelta(hours=5))
    assert best.story == "tanger" and best.accepted
    assert best.cross_language  # compared on names, notions, dates and numbers only
    assert not any(f.startswith("k:") for f in best.shared)
    assert idx.match(feats(AR), T0 + timedelta(hours=5)) == "tanger"


def test_other_events_sharing_generic_words_stay_apart() -> None:
    idx = StoryIndex()
    idx.add("tanger", feats(FR), T0)
    idx.add("tanger", feats(AR), T0)
    for key, report in (("road", ROAD), ("recruit", RECRUIT)):
        found = idx.candidates(feats(report), T0 + timedelta(days=2))
        assert not any(c.accepted for c in found), key
        assert idx.match(feats(report), T0 + timedelta(days=2)) is None
        idx.add(key, feats(report), T0 + timedelta(days=2))
    assert idx.match(feats(ROAD), T0 + timedelta(days=2)) == "road"  # itself, sure
    assert idx.match(feats(FR), T0) == "tanger"
    assert len(idx) == 3 and "road" in idx and "nope" not in idx


def test_seven_day_window() -> None:
    assert WINDOW_DAYS == 7.0
    idx = StoryIndex()
    idx.add("tanger", feats(FR), T0)
    ar = feats(AR)
    assert idx.match(ar, T0 + timedelta(days=7)) == "tanger"
    assert idx.match(ar, T0 - timedelta(days=7)) == "tanger"  # a report stored late
    assert idx.match(ar, T0 + timedelta(days=7, hours=1)) is None
    assert idx.match(ar, T0 - timedelta(days=8)) is None
    assert idx.candidates(ar, T0 + timedelta(days=8)) == []
    # dates alone (no time) are compared in days
    assert idx.match(ar, date(2025, 2, 19)) == "tanger"


def test_a_story_is_matched_by_its_latest_article_too() -> None:
    idx = StoryIndex()
    idx.add("tanger", feats(FR), T0)
    idx.add("tanger", feats(AR), T0 + timedelta(days=6))  # the story now spans six days
    assert idx.match(feats(FR), T0 + timedelta(days=12)) == "tanger"
    assert idx.match(feats(FR), T0 + timedelta(days=14)) is None


def test_forget_before_takes_old_stories_out_of_the_idf() -> None:
    idx = StoryIndex(df_days=30)
    for i in range(25):  # "DGSN" in 25 stories: it weighs nearly nothing
        idx.add(f"old{i}", ["x:dgsn", f"x:person{i}"], T0)
    idx.add("recent", ["x:dgsn", "x:tanger"], T0 + timedelta(days=20))
    common = idx.weight("x:dgsn")
    assert common == pytest.approx(1.5 * math.log(28 / 27))

    idx.forget_before(T0 + timedelta(days=30))  # born exactly df_days before: still counted
    assert idx.weight("x:dgsn") == common
    idx.forget_before(T0 + timedelta(days=31))

    fresh = StoryIndex(df_days=30)
    fresh.add("recent", ["x:dgsn", "x:tanger"], T0 + timedelta(days=20))
    for f in ("x:dgsn", "x:tanger", "x:person3", "k:lat:police"):
        assert idx.weight(f) == fresh.weight(f), f  # as if the pass had begun after them
    assert idx.weight("x:dgsn") == pytest.approx(1.5 * math.log((MIN_IDF_STORIES + 1) / 2))
    assert len(idx) == 26  # forgotten by the IDF, still known (and past the window anyway)


def test_df_days_never_shorter_than_the_window() -> None:
    idx = StoryIndex(df_days=1)
    assert idx.df_days == math.ceil(WINDOW_DAYS) + 1
    idx.add("tanger", feats(FR), T0)
    idx.forget_before(T0 + timedelta(days=7))
    assert idx.weight("x:tanger") < StoryIndex().weight("x:tanger")  # still counted
    assert idx.match(feats(AR), T0 + timedelta(days=7)) == "tanger"


def test_undated_stories_are_kept_but_never_matched() -> None:
    idx = StoryIndex()
    idx.add("undated", feats(FR), None)
    assert "undated" in idx
    assert idx.match(feats(AR), T0) is None
    assert idx.candidates(feats(AR), None) == []


# -- assign_stories ------------------------------------------------------------------------


def placed() -> list[Placed]:
    return [
        Placed("https://a.ma/fr", feats(FR), T0),
        Placed("https://b.ma/ar", feats(AR), T0 + timedelta(hours=3)),
        Placed("https://a.ma/road", feats(ROAD), T0 + timedelta(days=2)),
        Placed("https://c.ma/recruit", feats(RECRUIT), T0 + timedelta(days=2)),
        Placed("https://c.ma/ar-late", feats(AR), T0 + timedelta(days=9)),  # past the window
    ]


def test_assign_stories_names_new_stories_after_their_first_article() -> None:
    out = assign_stories(placed())
    assert out == {
        "https://a.ma/fr": NEW + "https://a.ma/fr",
        "https://b.ma/ar": NEW + "https://a.ma/fr",
        "https://a.ma/road": NEW + "https://a.ma/road",
        "https://c.ma/recruit": NEW + "https://c.ma/recruit",
        "https://c.ma/ar-late": NEW + "https://c.ma/ar-late",
    }


def test_assign_stories_does_not_depend_on_arrival_order() -> None:
    expected = assign_stories(placed())
    rng = random.Random(7)
    for _ in range(10):
        shuffled = placed()
        rng.shuffle(shuffled)
        assert assign_stories(shuffled) == expected


def test_fixed_articles_keep_their_story_and_free_ones_join_it() -> None:
    articles = [
        Placed("https://a.ma/fr", feats(FR), T0, story="42", fixed=True),
        Placed("https://b.ma/ar", feats(AR), T0 + timedelta(hours=3), story="7"),
        Placed("https://a.ma/road", feats(ROAD), T0 + timedelta(days=2), story="42", fixed=False),
    ]
    out = assign_stories(articles)
    assert out["https://a.ma/fr"] == "42"
    assert out["https://b.ma/ar"] == "42"  # a free article's old story is not kept
    assert out["https://a.ma/road"] == NEW + "https://a.ma/road"  # nor is a wrong one


def _random_features(rng: random.Random) -> list[str]:
    """A report drawn from a small vocabulary, so that stories share many features."""
    names = [f"x:n{i}" for i in rng.sample(range(12), rng.randint(1, 4))]
    dates = [f"d:06-{d:02d}" for d in rng.sample(range(1, 9), rng.randint(0, 2))]
    numbers = [f"n:{n}" for n in rng.sample(range(10, 30), rng.randint(0, 3))]
    words = [f"k:{rng.choice(('lat', 'ar'))}:w{i}" for i in rng.sample(range(40), rng.randint(2, 12))]
    return names + dates + numbers + words


@pytest.mark.parametrize("seed", range(12))
def test_could_take_prefilters_never_change_its_answer(seed: int) -> None:
    """`could_take` skips watched stories on necessary conditions of acceptance (shared
    features, a bound on the similarity) before ranking: it answers as ranking every
    watched candidate would."""
    rng = random.Random(seed)
    index = StoryIndex()
    keys = [f"s{i}" for i in range(60)]
    for i in range(400):
        when = T0 + timedelta(hours=rng.randint(0, 24 * 20))
        index.add(rng.choice(keys), _random_features(rng), when, opener=f"a{i}")
    for key in rng.sample(keys, 15):
        index.watch(key)
    watched = {k for k in keys if index.watched(k)}
    answers = []
    for _ in range(300):
        query = frozenset(_random_features(rng))
        when = T0 + timedelta(hours=rng.randint(0, 24 * 20))
        reference = any(c.accepted for c in index._rank(query, index._near(query, when, watched)))
        answers.append(reference)
        assert index.could_take(query, when) == reference
    assert any(answers) and not all(answers)  # both answers occur: the test can fail
