"""pipeline.body: how the two trafilatura passes are combined, chunks, the lead."""

from __future__ import annotations

import re

from lxml import html as lxml_html

from veille.pipeline.body import combine, lead_of, link_texts, twins

LONG = "x" * 210
PARAS = ["La DGSN et la DGSI ont tenu une réunion de coordination à Rabat ce mardi matin, "
         "consacrée à la lutte antiterroriste et au partage du renseignement opérationnel.",
         "Les deux services ont passé en revue les menaces communes avant l'été prochain, "
         "et les dispositifs prévus pour les grands événements sportifs des deux pays.",
         "Ils ont convenu de renforcer l'échange d'informations opérationnelles entre eux "
         "et de multiplier les rencontres techniques au cours des prochains mois."]


def test_precision_vouches_for_the_lines_kept() -> None:
    full = "\n".join(["Abonnez-vous à notre newsletter", PARAS[0], "Un intertitre", PARAS[1],
                      "Lire aussi : Hammouchi à Paris", PARAS[2], "Suivez-nous sur Facebook", LONG])
    precise = "\n".join([PARAS[0], PARAS[1], PARAS[2]])
    links = {"Lire aussi : Hammouchi à Paris"}
    out = combine(full, precise, links).splitlines()
    assert out == [PARAS[0], "Un intertitre", PARAS[1], PARAS[2], LONG]
    # short edge lines go, a subhead between vouched lines stays, a teaser link does not,
    # a long paragraph at an edge (no link) stays


def test_untrustworthy_precision_keeps_the_full_text() -> None:
    full = "\n".join(PARAS * 3)
    assert combine(full, PARAS[0], set()) == full  # precision text far too short
    assert combine(full, "", set()) == full
    assert combine(full, "nothing in common with the page", set()) == full


def test_chunked_body_is_put_back_in_page_order() -> None:
    page = lxml_html.fromstring(
        "<html><body><article><div class='chunks'>"
        f"<div class='body'><p>{PARAS[0]}</p></div><div class='ad'>Publicité</div>"
        f"<div class='body'><p>{PARAS[1]}</p><p>{PARAS[2]}</p></div>"
        "</div></article><aside><div class='teaser'><p>Autre chose entièrement.</p></div></aside>"
        "</body></html>")
    assert twins(page, PARAS[0]).splitlines() == PARAS
    assert twins(page, PARAS[1]).splitlines() == [PARAS[0], PARAS[1]]  # earlier chunk first


def test_lead_only_when_it_is_the_pages_own_description() -> None:
    lead = "Rabat accueille une réunion sécuritaire de haut niveau entre la DGSN et la DGSI."
    page = lxml_html.fromstring(
        f"<html><body><p class='chapo'>{lead}</p><p class='caption'>Photo : archives, "
        "droits réservés, agence.</p><a href='/x'>Un autre article</a></body></html>")
    pattern = re.compile(r"chap[oô]|caption", re.I)
    assert lead_of(page, [lead], pattern) == lead
    assert lead_of(page, ["Un tout autre texte de description, sans rapport aucun."], pattern) is None
    assert lead_of(page, [], pattern) is None
    assert link_texts(page) == {"Un autre article"}


BYLINE_PAGE = ("<html><head><title>Réunion à Rabat</title></head><body><article>"
               "<h1>Réunion de coordination à Rabat</h1>"
               "<p class='author'>Par <a rel='author' href='/auteur/karim'>Karim Benali</a></p>"
               + "".join(f"<p>{p}</p>" for p in PARAS) + "</article></body></html>")


def test_trafilaturas_metadata_is_read_on_demand_and_is_what_it_would_have_said() -> None:
    import trafilatura

    from veille.pipeline.body import DATE_PARAMS, extract_body
    from veille.pipeline.dates import prune

    url = "https://example.org/2024/05/02/reunion-a-rabat"
    tree = lxml_html.fromstring(BYLINE_PAGE)
    body = extract_body(tree, prune(tree, None)[0], url, link_texts(tree))
    assert body is not None and "_metadata" not in body.__dict__  # nothing read yet
    eager = trafilatura.bare_extraction(tree, url=url, with_metadata=True, include_comments=False,
                                        date_extraction_params=DATE_PARAMS)
    assert body.author == eager.author and "Karim Benali" in str(eager.author)
    assert (body.title, body.sitename) == (eager.title, eager.sitename)
