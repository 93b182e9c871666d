"""veille.pipeline.template: which lines of an article are its outlet's template, and why."""

from __future__ import annotations

import random

import pytest

from veille.pipeline.learn import Evidence
from veille.pipeline.template import (
    MAX_LINE,
    MIN_PAGES,
    Template,
    fingerprint,
    line_fingerprints,
    line_key,
    strip,
)

TITLE = "Hammouchi reçoit à Rabat le patron de la police française"
BODY = [
    "Abdellatif Hammouchi a reçu mercredi à Rabat le directeur général de la police nationale "
    "française, accompagné d’une délégation de la place Beauvau.",
    "Les entretiens ont porté sur la lutte contre le terrorisme et le trafic de drogue.",
]
FOLLOW = "Chamal Press — l’actualité du Nord, sans détour"  # no generic rule knows this one


def _page(*extra: str, body: list[str] = BODY) -> str:
    return "\n".join([*body, *extra])


def _evidence(pages: list[str], titles: tuple[str, ...] = ()) -> Evidence:
    ev = Evidence("chamal")
    for i, text in enumerate(pages):
        ev.learn(line_fingerprints(text), titles[i] if i < len(titles) else f"Titre numéro {i} assez long")
    return ev


def test_no_history_no_learnt_drop() -> None:
    text = _page(FOLLOW)
    assert strip(TITLE, text, Template()) == (text, ())


def test_a_line_on_many_pages_is_template_with_its_count() -> None:
    others = [_page(FOLLOW, body=[f"Un autre article, numéro {i}, sur un autre sujet."]) for i in range(MIN_PAGES)]
    text, dropped = strip(TITLE, _page(FOLLOW), _evidence(others).snapshot())
    assert FOLLOW not in text and all(b in text for b in BODY)
    assert [(d.line, d.reason) for d in dropped] == [
        (FOLLOW, f"recurs on {MIN_PAGES} of {MIN_PAGES} pages of this outlet")]


def test_never_on_a_single_page_s_evidence() -> None:
    one = _evidence([_page(FOLLOW)] * 1).snapshot()
    few = _evidence([_page(FOLLOW)] * (MIN_PAGES - 1)).snapshot()
    for template in (one, few):
        assert FOLLOW in strip(TITLE, _page(FOLLOW), template)[0]


def test_a_line_now_rare_among_the_outlet_s_pages_is_text_again() -> None:
    ev = _evidence([_page(FOLLOW)] * MIN_PAGES + [_page("autre")] * 40)
    assert FOLLOW in strip(TITLE, _page(FOLLOW), ev.snapshot())[0]  # 3 of 43 pages since it appeared


def test_long_paragraphs_are_never_template() -> None:
    long = "Une longue phrase de contexte répétée d’article en article par la rédaction. " * 4
    assert len(long) > MAX_LINE
    ev = _evidence([_page(long)] * 10)
    assert long.strip() in strip(TITLE, _page(long.strip()), ev.snapshot())[0]
    assert fingerprint(line_key(long)) not in ev.counts  # not even counted


def test_titles_of_other_articles_are_teasers() -> None:
    other = "Tanger Med bat son record mensuel de conteneurs"
    ev = _evidence([], )
    ev.add_title(other)
    ev.add_title(TITLE)  # stored already, e.g. an earlier version of this page
    text = _page(other, f"À la une : {other}", TITLE, "- " + other)
    out, dropped = strip(TITLE, text, ev.snapshot())
    assert other not in out and TITLE in out  # its own headline is not another article's
    assert {d.reason for d in dropped} == {"title of another article of this outlet"}
    assert len(dropped) == 3


def test_short_titles_do_not_count() -> None:
    ev = Evidence("x")
    ev.add_title("Éditorial")
    assert "Éditorial" in strip(TITLE, _page("Éditorial"), ev.snapshot())[0]


@pytest.mark.parametrize("line, reason", [
    ("Suivez-nous sur Google News pour ne rien manquer de l’actualité.", "generic: follow line"),
    ("Chamal Press est aussi sur WhatsApp : rejoignez notre chaîne", "generic: follow line"),
    ("تابعونا على فيسبوك", "generic: follow line"),
    ("تابعوا هسبريس على أخبار Google", "generic: follow line"),
    ("Follow us on Telegram for breaking news", "generic: follow line"),
    ("اشترك في النشرة اليومية لتصلك أهم الأخبار", "generic: newsletter line"),
    ("Inscrivez-vous à notre newsletter", "generic: newsletter line"),
    ("Chaque matin, l’essentiel de l’actualité dans votre boîte mail : inscrivez-vous.", "generic: newsletter line"),
    ("Subscribe to our newsletter", "generic: newsletter line"),
])
def test_generic_lines(line: str, reason: str) -> None:
    out, dropped = strip(TITLE, _page(line), Template())
    assert line not in out and [(d.line, d.reason) for d in dropped] == [(line, reason)]


@pytest.mark.parametrize("heading", ["Sujets associés :", "Les plus lus cette semaine",
                                     "الأكثر قراءة هذا الأسبوع", "مقالات ذات صلة", "Most read"])
def test_a_related_heading_takes_its_titles_with_it(heading: str) -> None:
    titles = ["- Cellule terroriste démantelée en France : un signalement de la DGST",
              "- Extradition : le Maroc remet à la France un baron présumé"]
    after = "La suite de l’article reprend ici, avec une phrase complète et un point final."
    out, dropped = strip(TITLE, _page(heading, *titles, after), Template())
    assert out == _page(after)
    assert [d.line for d in dropped] == [heading, *titles]


def test_body_sentences_that_mention_platforms_stay() -> None:
    line = ("La DGSN a rappelé que les fausses annonces de recrutement circulent sur Facebook et "
            "WhatsApp, et invite les candidats à la prudence avant de suivre ces liens.")
    assert strip(TITLE, _page(line), Template())[0] == _page(line)


def test_nothing_left_means_the_page_is_kept() -> None:
    text = "Suivez-nous sur Google News"
    assert strip(TITLE, text, Template()) == (text, ())


def test_strip_never_adds_text() -> None:
    """Property: the result's lines are the input's, in order, fewer or equal (seeded random)."""
    rng = random.Random(12)
    pool = [*BODY, FOLLOW, "Sujets associés :", "- Un titre d’article quelconque", "تابعونا على فيسبوك",
            "Les plus lus", "", "x" * 300, TITLE, "Inscrivez-vous à notre newsletter", "Fin."]
    for _ in range(400):
        pages = ["\n".join(rng.choices(pool, k=rng.randint(0, 8))) for _ in range(rng.randint(0, 6))]
        ev = _evidence(pages, tuple(rng.choice(pool) for _ in pages))
        text = "\n".join(rng.choices(pool, k=rng.randint(1, 10)))
        out, dropped = strip(TITLE, text, ev.snapshot())
        it = iter(text.split("\n"))
        assert all(any(line == other for other in it) for line in out.split("\n"))  # a subsequence
        assert len(out) <= len(text)
        assert all(d.line.strip() in text for d in dropped)


def test_evidence_snapshot_is_frozen_and_rebuilt_when_it_grows() -> None:
    ev = _evidence([_page(FOLLOW)] * MIN_PAGES)
    first = ev.snapshot()
    assert ev.snapshot() is first
    ev.learn(line_fingerprints(_page(FOLLOW)), "Un titre de plus pour la page suivante")
    second = ev.snapshot()
    key = fingerprint(line_key(FOLLOW))
    assert first.lines[key] == (MIN_PAGES, 0) and second.lines[key] == (MIN_PAGES + 1, 0)
    assert second.pages == first.pages + 1
