"""Topic rules: reasons, score arithmetic, vetoes; the default topic on positives,
distractors and the replay fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.replay_pages import fixture_articles as replay_articles
from veille.pipeline.classify import classify, evaluate, story_topics
from veille.pipeline.config import TopicConfig, load_config
from veille.pipeline.types import TermHit, TopicMatch

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "outlets"
FILLER = " ".join(["Le texte continue ici sans rien dire de particulier."] * 12)  # > 50 words


def topic(**kw: object) -> TopicConfig:
    base: dict[str, object] = {
        "name": "t",
        "require": [["maroc", "المغرب"], ["france", "فرنسا"], ["sécurité", "الأمن"]],
        "boost": ["hammouchi"],
        "exclude": ["conseil de sécurité"],
        "min_score": 1,
    }
    base.update(kw)
    return TopicConfig.model_validate(base)


@pytest.fixture(scope="module")
def default_topic() -> TopicConfig:
    cfg = load_config(ROOT / "config.yaml")
    return next(t for t in cfg.topics if t.name == "maroc-france-securite")


# --------------------------------------------------------------------------- the rules


def test_reasons_name_each_term_its_field_and_count() -> None:
    [m] = classify("Le Maroc et la France", "La France et le Maroc parlent sécurité. Maroc.", [topic()])
    assert set(m.matched) == {
        TermHit("maroc", "title", 1),
        TermHit("maroc", "text", 2),
        TermHit("france", "title", 1),
        TermHit("france", "text", 1),
        TermHit("sécurité", "text", 1),
    }
    # title hits weigh title_weight (3) body hits: 3 + 2 + 3 + 1 + 1
    assert m.score == 10


def test_title_weight_is_configurable() -> None:
    [m] = classify("Maroc", "France, sécurité.", [topic(title_weight=5)])
    assert m.score == 5 + 1 + 1


def test_counts_are_capped() -> None:
    text = "Maroc " * 10 + "France sécurité"
    [m] = classify("", text, [topic()])
    assert TermHit("maroc", "text", 10) in m.matched  # the real count is reported
    assert m.score == 3 + 1 + 1  # but it adds at most 3


def test_boost_terms_add_weight_without_being_required() -> None:
    [plain] = classify("", "Maroc France sécurité", [topic()])
    [boosted] = classify("", "Maroc France sécurité Hammouchi", [topic()])
    assert boosted.score == plain.score + 2  # a boost term counts double
    assert "hammouchi" in boosted.terms()


def test_every_require_group_must_match() -> None:
    assert classify("Le Maroc et la France", "Une visite officielle.", [topic()]) == []
    [ev] = evaluate("Le Maroc et la France", "Une visite officielle.", [topic()])
    assert ev.missing_groups == (2,)
    assert "require group 2" in ev.reason()


def test_min_score() -> None:
    text = "Maroc France sécurité"
    assert classify("", text, [topic(min_score=3)])
    assert classify("", text, [topic(min_score=4)]) == []
    [ev] = evaluate("", text, [topic(min_score=4)])
    assert not ev.passed and ev.score == 3 and "below 4" in ev.reason()


def test_exclude_in_title_vetoes() -> None:
    assert classify("Le Conseil de sécurité", "Maroc France sécurité", [topic()]) == []
    [ev] = evaluate("Le Conseil de sécurité", "Maroc France sécurité", [topic()])
    assert ev.vetoed_by == (TermHit("conseil de sécurité", "title", 1),)


def test_exclude_in_lead_vetoes() -> None:
    text = "Au Conseil de sécurité, le Maroc et la France. " + FILLER + " La sécurité."
    assert classify("Diplomatie", text, [topic()]) == []


def test_exclude_deep_in_body_does_not_veto_but_its_words_do_not_count() -> None:
    text = "Le Maroc et la France renforcent leur sécurité. " + FILLER
    [base] = classify("", text, [topic()])
    [m] = classify("", text + " Rappel : le Conseil de sécurité s'est réuni.", [topic()])
    assert m.score == base.score  # "sécurité" inside the excluded phrase is no evidence
    assert TermHit("sécurité", "text", 1) in m.matched
    # and when the only "sécurité" is inside the excluded phrase, group 2 is missing
    only = "Le Maroc et la France. " + FILLER + " Le Conseil de sécurité."
    assert classify("", only, [topic()]) == []


def test_matching_folds_case_accents_and_arabic_clitics_on_word_boundaries() -> None:
    assert classify("", "MAROC, FRANCE et SECURITE", [topic()])
    assert classify("", "والمغرب وفرنسا والأمن", [topic()])
    assert classify("", "marocaine francaise securitaire", [topic()]) == []  # whole words only


def test_multi_word_terms() -> None:
    t = topic(require=[["coopération sécuritaire"]])
    assert classify("", "La coopération sécuritaire progresse.", [t])
    assert classify("", "La coopération est sécuritaire.", [t]) == []


def test_spellings_that_normalise_alike_count_once() -> None:
    t = topic(require=[["sécurité", "securite", "SÉCURITÉ"]])
    [m] = classify("", "sécurité", [t])
    assert m.matched == (TermHit("sécurité", "text", 1),) and m.score == 1


def test_several_topics_in_config_order() -> None:
    a, b = topic(name="a"), topic(name="b", require=[["hammouchi"]])
    out = classify("Hammouchi", "Maroc France sécurité", [a, b])
    assert [m.topic for m in out] == ["a", "b"]


def test_story_topics_merge_best_score_and_union_of_terms() -> None:
    a = [TopicMatch("t", 5.0, (TermHit("maroc", "title", 1), TermHit("france", "text", 2)))]
    b = [TopicMatch("t", 9.0, (TermHit("france", "text", 4), TermHit("الأمن", "text", 1)))]
    c = [TopicMatch("u", 2.0, (TermHit("x", "text", 1),))]
    merged = story_topics([a, b, c, []])
    assert [m.topic for m in merged] == ["t", "u"]
    t = merged[0]
    assert t.score == 9.0
    assert set(t.matched) == {
        TermHit("maroc", "title", 1),
        TermHit("france", "text", 4),
        TermHit("الأمن", "text", 1),
    }


# --------------------------------------------------------------------------- the default topic

POSITIVES = {
    "fr": (
        "Hammouchi reçoit à Rabat le directeur de la DGSI",
        "Abdellatif Hammouchi, directeur général de la DGSN et de la DGST, a reçu jeudi à Rabat "
        "son homologue français de la Direction générale de la sécurité intérieure. Les deux "
        "responsables ont passé en revue la coopération sécuritaire entre le Maroc et la France, "
        "notamment l'échange de renseignements sur la menace terroriste au Sahel.",
    ),
    "ar": (
        "حموشي يستقبل المدير العام للأمن الداخلي الفرنسي بالرباط",
        "استقبل عبد اللطيف حموشي، المدير العام للأمن الوطني ولمراقبة التراب الوطني، بالرباط "
        "المدير العام للأمن الداخلي الفرنسي، حيث تباحث الجانبان سبل تعزيز التعاون الأمني بين "
        "المغرب وفرنسا في مجال مكافحة الإرهاب وتبادل المعلومات الاستخباراتية.",
    ),
    "en": (
        "Moroccan police arrest French fugitive wanted by Interpol in Tangier",
        "Morocco's DGSN arrested a French national in Tangier who was the subject of an "
        "Interpol red notice issued at the request of French authorities. The suspect faces "
        "extradition to France, where he is wanted for drug trafficking and money laundering.",
    ),
}

DISTRACTORS = {
    "morocco-spain security": (
        "Hammouchi reçoit la directrice de la Guardia Civil",
        "Abdellatif Hammouchi a reçu à Rabat la directrice générale de la Guardia Civil "
        "espagnole. Les entretiens ont porté sur la coopération sécuritaire entre le Maroc et "
        "l'Espagne, la lutte contre le terrorisme et la migration irrégulière dans le détroit.",
    ),
    "france-algeria talks": (
        "بارو في الجزائر لاستئناف التعاون الأمني",
        "حل وزير الخارجية الفرنسي بالجزائر العاصمة، حيث اتفق البلدان على استئناف التعاون الأمني "
        "وتبادل المعلومات حول التهديدات الإرهابية في الساحل، بعد أشهر من التوتر بين باريس والجزائر.",
    ),
    "morocco-france trade": (
        "Maroc-France : les échanges commerciaux au plus haut",
        "Les échanges entre le Maroc et la France ont atteint un record, portés par l'automobile "
        "et l'aéronautique. Les investisseurs français saluent un climat des affaires stable. "
        + FILLER
        + " Les entreprises réclament toutefois davantage de sécurité juridique.",
    ),
    "dgsn recruitment": (
        "Police : la DGSN lance un concours de recrutement",
        "La Direction générale de la Sûreté nationale ouvre un concours pour recruter des "
        "gardiens de la paix et des inspecteurs de police. Les candidats marocains s'inscrivent "
        "en ligne ; les épreuves auront lieu dans plusieurs villes du royaume.",
    ),
    "football in paris": (
        "Les Lions de l'Atlas s'imposent à Paris",
        "Portés par leurs supporters, les Marocains se sont qualifiés pour les demi-finales en "
        "battant leur adversaire au Parc des Princes, à Paris. Le Maroc jouera à Marseille. "
        + FILLER
        + " Un important dispositif de sécurité avait été déployé autour du stade par la police.",
    ),
    "french terror trial": (
        "Paris: four men on trial for plotting an attack on a police station",
        "The special court of Paris opened the trial of four men accused of a jihadist plot "
        "against a police station. They were arrested by France's DGSI in 2021. The trial is "
        "held under tight security; French anti-terrorism prosecutors seek long sentences.",
    ),
}


@pytest.mark.parametrize("lang", sorted(POSITIVES))
def test_default_topic_flags_on_topic_stories(default_topic: TopicConfig, lang: str) -> None:
    title, text = POSITIVES[lang]
    [ev] = evaluate(title, text, [default_topic])
    assert ev.passed, ev.reason()
    assert ev.score >= default_topic.min_score
    fields = {h.field for h in ev.matched}
    assert fields == {"title", "text"}


@pytest.mark.parametrize("kind", sorted(DISTRACTORS))
def test_default_topic_rejects_distractors(default_topic: TopicConfig, kind: str) -> None:
    title, text = DISTRACTORS[kind]
    [ev] = evaluate(title, text, [default_topic])
    assert not ev.passed, ev.reason()


def test_football_distractor_is_vetoed_by_match_report_vocabulary(default_topic: TopicConfig) -> None:
    title, text = DISTRACTORS["football in paris"]
    [ev] = evaluate(title, text, [default_topic])
    assert ev.vetoed_by and not ev.missing_groups  # all groups matched; the veto decides


def test_trade_distractor_fails_because_legal_security_is_no_security(
    default_topic: TopicConfig,
) -> None:
    title, text = DISTRACTORS["morocco-france trade"]
    [ev] = evaluate(title, text, [default_topic])
    assert ev.missing_groups == (2,) and not ev.vetoed_by


# --------------------------------------------------------------------------- replay fixtures


def _fixture_articles() -> list[tuple[str, dict[str, object], object]]:
    return list(replay_articles())


@pytest.fixture(scope="module")
def fixture_articles() -> list[tuple[str, dict[str, object], object]]:
    arts = _fixture_articles()
    assert len(arts) >= 25, "the replay fixtures (tests/fixtures/outlets) are missing"
    return arts


def test_default_topic_on_replay_fixtures(
    default_topic: TopicConfig, fixture_articles: list[tuple[str, dict[str, object], object]]
) -> None:
    from veille.pipeline.types import Article

    wrong = []
    labelled = 0
    for key, item, art in fixture_articles:
        if "on_topic" not in item or not isinstance(art, Article):
            continue
        labelled += 1
        [ev] = evaluate(art.title, art.text, [default_topic])
        if ev.passed != bool(item["on_topic"]):
            wrong.append(f"{key}: expected on_topic={item['on_topic']}: {ev.reason()}")
    assert labelled >= 10
    assert not wrong, "\n".join(wrong)  # precision and recall 1.0
