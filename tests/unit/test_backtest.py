"""The topic back-test on hand-made stories: an added term adds, a removed term drops, an
added exclusion drops, an unchanged rule changes nothing; a story is flagged when one of
its originals is; every change says why."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from veille.pipeline.backtest import backtest
from veille.pipeline.classify import classify
from veille.pipeline.config import TopicConfig
from veille.storage.archive import ArchivedArticle, ArchivedStory, StoredMatch

FILLER = " ".join(["Le texte continue ici sans rien dire de particulier."] * 12)  # past the lead


def rule(**kw: object) -> TopicConfig:
    base: dict[str, object] = {
        "name": "secu",
        "require": [["maroc"], ["france"], ["sécurité", "police"]],
        "exclude": ["conseil de sécurité"],
        "min_score": 1,
    }
    base.update(kw)
    return TopicConfig.model_validate(base)


def archive(stories: Sequence[Sequence[tuple[str, str]]], stored_with: Sequence[TopicConfig],
            ) -> list[ArchivedStory]:
    """Stories of (title, text) originals, their topics stored as a crawl with the rules
    `stored_with` stored them; story i is dated 2025-01-i (ids 1, 2, …)."""
    out, next_id = [], 1
    for n, arts in enumerate(stories, start=1):
        members = []
        for title, text in arts:
            matches = {m.topic: StoredMatch(m.score, tuple(dict.fromkeys(h.term for h in m.matched)))
                       for m in classify(title, text, stored_with)}
            members.append(ArchivedArticle(next_id, title, text, matches))
            next_id += 1
        out.append(ArchivedStory(n, arts[0][0], datetime(2025, 1, n, tzinfo=UTC), tuple(members)))
    return out


SECURITE = ("Maroc et France", "Coopération de sécurité entre le Maroc et la France.")
POLICE = ("Maroc et France", "La police du Maroc aide la France.")
GENDARMERIE = ("Maroc et France", "La gendarmerie du Maroc aide la France.")
ECONOMIE = ("Maroc et France", "Le commerce entre le Maroc et la France.")


def test_an_unchanged_rule_changes_nothing() -> None:
    topics = [rule()]
    result = backtest(archive([[SECURITE], [POLICE], [ECONOMIE]], topics), topics)
    assert result.changes == ()
    assert result.stories == 3
    (tally,) = result.tallies
    assert (tally.topic, tally.added, tally.dropped, tally.kept) == ("secu", 0, 0, 2)


def test_an_added_term_adds_the_stories_it_now_matches_and_says_so() -> None:
    old = rule()
    new = rule(require=[["maroc"], ["france"], ["sécurité", "police", "gendarmerie"]])
    result = backtest(archive([[SECURITE], [GENDARMERIE], [ECONOMIE]], [old]), [new])
    (change,) = result.changes
    assert (change.kind, change.story_id, change.topic) == ("add", 2, "secu")
    assert "gendarmerie (text ×1)" in change.reason
    assert change.evaluation.passed and change.stored_score is None
    assert (result.tallies[0].added, result.tallies[0].kept) == (1, 1)


def test_a_removed_term_drops_the_stories_only_it_matched() -> None:
    old = rule()
    new = rule(require=[["maroc"], ["france"], ["sécurité"]])
    result = backtest(archive([[SECURITE], [POLICE]], [old]), [new])
    (change,) = result.changes
    assert (change.kind, change.story_id) == ("drop", 2)
    assert change.reason.startswith("no term of require group 3/3 (sécurité); no longer counted: police;")
    assert change.lost == ("police",)
    assert change.evaluation.missing_groups == (2,)
    assert change.as_json()["missing_groups"] == [3]  # numbered as the reason numbers them
    assert change.stored_score is not None and change.stored_score > 0


def test_an_added_exclusion_drops_with_the_term_and_where_it_hit() -> None:
    old = rule()
    new = rule(exclude=["conseil de sécurité", "match amical"])
    friendly = ("Match amical Maroc France", "La police encadre le match amical au Maroc, en France.")
    result = backtest(archive([[friendly], [SECURITE]], [old]), [new])
    (change,) = result.changes
    assert (change.kind, change.story_id) == ("drop", 1)
    assert change.reason.startswith("excluded by match amical (title), match amical (text)")
    assert change.lost == () and "no longer counted" not in change.reason  # its terms still count
    assert f"(was {change.stored_score:g})" in change.reason


def test_a_stricter_score_drops_with_the_score_before_and_now() -> None:
    old = rule()
    result = backtest(archive([[POLICE]], [old]), [rule(min_score=50)])
    (change,) = result.changes
    assert change.kind == "drop"
    assert change.reason.startswith(f"score {change.evaluation.score:g} (was {change.stored_score:g}) below 50")


def test_a_story_keeps_its_topic_while_one_original_still_matches() -> None:
    """One original loses the topic, another of the same story still has it: no drop.
    The story is dropped only once none matches, explained by the best of those that did."""
    old = rule()
    new = rule(require=[["maroc"], ["france"], ["sécurité"]])
    weak = ("Maroc", "La police du Maroc aide la France. " + FILLER)
    strong = ("Maroc et France: la police", "La police du Maroc aide la France.")
    result = backtest(archive([[POLICE, SECURITE], [weak, strong]], [old]), [new])
    (change,) = result.changes
    assert (change.kind, change.story_id) == ("drop", 2)
    assert change.article_id == 4  # `strong`: the best score of the two that were flagged
    assert result.tallies[0].kept == 1


def test_an_add_is_explained_by_the_best_matching_original() -> None:
    old = rule(require=[["maroc"], ["france"], ["sécurité"]])
    new = rule()
    weak = ("Maroc", "La police du Maroc aide la France. " + FILLER)
    strong = ("Maroc et France: la police", "La police du Maroc aide la France.")
    (change,) = backtest(archive([[weak, strong, ECONOMIE]], [old]), [new]).changes
    assert (change.kind, change.article_id) == ("add", 2)
    assert change.evaluation.score == max(
        m.score for t, x in (weak, strong) for m in classify(t, x, [new]))


def test_each_topic_is_compared_with_its_own_stored_matches() -> None:
    """A second topic, new in the config, adds its stories; the first is untouched, and
    changes come per topic in config order, adds first, newest first."""
    first = rule()
    second = rule(name="commerce", require=[["commerce", "police"]])
    result = backtest(archive([[SECURITE], [POLICE], [ECONOMIE]], [first]), [first, second])
    assert [(c.topic, c.kind, c.story_id) for c in result.changes] == [("commerce", "add", 3),
                                                                       ("commerce", "add", 2)]
    assert [(t.topic, t.added, t.kept) for t in result.tallies] == [("secu", 0, 2), ("commerce", 2, 0)]


def test_the_archive_is_read_once_as_a_stream() -> None:
    topics = [rule()]
    stories = archive([[SECURITE], [POLICE]], topics)
    served: list[int] = []

    def stream() -> Iterator[ArchivedStory]:
        for st in stories:
            served.append(st.id)
            yield st

    assert backtest(stream(), [rule(exclude=["police"])]).tallies[0].dropped == 1
    assert served == [1, 2]
