"""extract / decode_html / dates on small hand-written pages (tests/unit/pages)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from veille.pipeline.charset import decode_html
from veille.pipeline.dates import LOCAL_TZ, find_dates, relative_date, visible_date
from veille.pipeline.extract import detect_language, extract, reset_caches, strip_site_name
from veille.pipeline.types import Article, RawPage, Skipped

PAGES = Path(__file__).parent / "pages"
FETCHED = datetime(2025, 10, 15, 9, 0, tzinfo=UTC)
CASABLANCA_SUMMER = timezone(timedelta(hours=1))
AR_TITLE = "الحموشي يبحث في باريس تعزيز التعاون الأمني مع فرنسا"
AR_SENTENCE = "وتناولت المباحثات سبل تعزيز التعاون الأمني بين المغرب وفرنسا"


def page(name: str | None = None, *, body: bytes | None = None, headers: dict | None = None,
         url: str = "https://example.org/actualite/article-123.html", status: int = 200,
         hint: str | None = None) -> RawPage:
    if body is None:
        assert name is not None
        body = (PAGES / name).read_bytes()
    return RawPage(url=url, final_url=url, outlet="test", status=status,
                   headers=headers if headers is not None else {}, body=body,
                   fetched_at=FETCHED, language_hint=hint)


def article(raw: RawPage) -> Article:
    result = extract(raw)
    assert isinstance(result, Article), result
    return result


# --- French page with boilerplate ----------------------------------------------------------

def test_french_article_keeps_body_and_drops_boilerplate() -> None:
    art = article(page("fr_article.html", headers={"content-type": "text/html; charset=utf-8"}))
    assert art.title == "Abdellatif Hammouchi reçu à Paris par le directeur de la Police nationale"
    assert art.language == "fr"
    assert art.site_name == "Le360"
    assert art.author == "Karim Benali"
    for kept in (
        "Les deux responsables ont passé en revue les dispositifs de coopération opérationnelle",
        "la Médaille d’honneur de la Police nationale, échelon or",
        "Le directeur général de la DGSN et de la DGST a effectué une visite de travail",  # chapô
    ):
        assert kept in art.text
    for dropped in ("À lire aussi", "Accepter les cookies", "Nous utilisons des cookies",
                    "Laisser un commentaire", "Sur le même sujet", "Guardia Civil",
                    "Tous droits réservés", "Économie", "DGSN lance une nouvelle campagne"):
        assert dropped not in art.text
    assert not art.text.startswith(art.title)  # the h1 is the title, not the first line


def test_visible_date_is_the_one_under_the_headline() -> None:
    # the page also shows today's date in its top bar and older dates in "Sur le même sujet"
    art = article(page("fr_article.html"))
    assert art.published == datetime(2024, 7, 2, 15, 0, tzinfo=CASABLANCA_SUMMER)
    assert art.published is not None and art.published.utcoffset() == timedelta(hours=1)


def test_update_date_loses_to_publication_date() -> None:
    body = (PAGES / "fr_article.html").read_bytes().replace(
        "Publié le 2 juillet 2024 à 15h00".encode(),
        "Mis à jour le 3 juillet 2024 à 09h00 | Publié le 2 juillet 2024 à 15h00".encode())
    assert article(page(body=body)).published == datetime(2024, 7, 2, 15, tzinfo=CASABLANCA_SUMMER)


def test_time_element_in_utc_keeps_the_day_it_states() -> None:
    body = (PAGES / "fr_article.html").read_bytes().replace(
        "Publié le 2 juillet 2024 à 15h00".encode(),
        b'<time datetime="2024-07-01T23:30:00Z">hier soir</time>')
    published = article(page(body=body)).published
    assert published == datetime(2024, 7, 1, 23, 30, tzinfo=UTC)
    # the day the page states, not the next day on the Moroccan clock (display converts)
    assert published is not None and published.date().isoformat() == "2024-07-01"


def test_no_date_is_none_not_the_date_in_the_top_bar() -> None:
    body = (PAGES / "fr_article.html").read_bytes().replace(
        "— Publié le 2 juillet 2024 à 15h00".encode(), b"")
    assert b"15 octobre 2025" in body and b"12 mars 2024" in body
    assert article(page(body=body)).published is None


def test_jsonld_date_wins_and_keeps_its_offset() -> None:
    art = article(page("jsonld_date.html"))
    assert art.published == datetime(2024, 3, 14, 9, 45, tzinfo=UTC)
    assert art.title == "Moroccan and French intelligence foil attack plot"
    assert art.language == "en"
    assert art.author == "Sara Alami"


# --- Arabic windows-1256 ----------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"content-type": "text/html"},  # charset only in <meta http-equiv>
    {"Content-Type": "text/html; charset=utf-8"},  # wrong header: bytes are not UTF-8
    {"content-type": "text/html; charset=iso-8859-1"},  # wrong header: decodes, as mojibake
    {"content-type": "text/html; charset=windows-1256"},
])
def test_arabic_windows_1256_page(headers: dict) -> None:
    raw = page("ar_article.html", headers=headers)
    assert not raw.body.isascii() and AR_SENTENCE.encode("cp1256") in raw.body
    art = article(raw)
    assert art.title == AR_TITLE  # " - هسبريس" stripped from <title>
    assert AR_SENTENCE in art.text
    assert "اقرأ أيضا" not in art.text and "الحرس المدني" not in art.text
    assert art.language == "ar"
    # Moroccan month name (يوليوز), time after a dash; the related list's date is ignored
    assert art.published == datetime(2024, 7, 2, 14, 20, tzinfo=CASABLANCA_SUMMER)


def test_decode_html_meta_header_and_detection() -> None:
    arabic = (PAGES / "ar_article.html").read_bytes()
    assert AR_TITLE in decode_html(arabic, {})
    undeclared = arabic.replace(b"charset=windows-1256", b"")
    assert AR_TITLE in decode_html(undeclared, {})
    french = (PAGES / "fr_article.html").read_text("utf-8").replace('<meta charset="utf-8">', "")
    assert "coopération opérationnelle" in decode_html(french.encode("cp1252"), {})
    # header claims windows-1256 but the body is valid UTF-8
    assert "coopération opérationnelle" in decode_html(
        french.encode("utf-8"), {"Content-Type": "text/html; charset=windows-1256"})
    # meta lies (UTF-8), no header charset, body is windows-1256
    lying = arabic.replace(b"charset=windows-1256", b"charset=utf-8")
    assert AR_SENTENCE in decode_html(lying, {"content-type": "text/html"})
    snippet = "<p>المغرب وفرنسا</p>".encode("cp1256")  # too short for statistics
    assert decode_html(snippet, {}) == "<p>المغرب وفرنسا</p>"
    assert decode_html(b"", {}) == ""
    assert decode_html("<p>été</p>".encode("utf-8-sig"), {"content-type": "charset=latin-1"}) \
        == "<p>été</p>"


# --- not articles -----------------------------------------------------------------------------

def test_listing_page_is_skipped() -> None:
    result = extract(page("listing.html", url="https://example.org/securite.html"))
    assert result == Skipped("https://example.org/securite.html",
                             "listing page: 100% of the text is headlines and their excerpts")


@pytest.mark.parametrize("url, reason", [
    ("https://example.org/", "listing URL /"),
    ("https://example.org", "listing URL /"),
    ("https://example.org/tag/securite/", "listing URL /tag/securite/"),
    ("https://example.org/category/maroc/page/2/", "listing URL /category/maroc/page/2/"),
    ("https://example.org/videos/hammouchi-paris-123.html",
     "listing URL /videos/hammouchi-paris-123.html"),
])
def test_listing_urls_are_skipped(url: str, reason: str) -> None:
    assert extract(page("fr_article.html", url=url)) == Skipped(url, reason)


def test_garbage_empty_truncated_and_errors_never_raise() -> None:
    rng = random.Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(20_000))
    assert extract(page(body=garbage)) == Skipped(
        "https://example.org/actualite/article-123.html", "empty or undecodable body")
    assert extract(page(body=b"")).reason == "empty or undecodable body"  # type: ignore[union-attr]
    short = extract(page(body=b"<html><body><p>Bref.</p></body></html>"))
    assert isinstance(short, Skipped) and short.reason.startswith("too short")
    pdf = extract(page(body=b"%PDF-1.4", headers={"content-type": "application/pdf"}))
    assert pdf == Skipped("https://example.org/actualite/article-123.html",
                          "not HTML: application/pdf")
    assert extract(page("fr_article.html", status=404)).reason == "HTTP status 404"  # type: ignore[union-attr]
    full = (PAGES / "fr_article.html").read_bytes()
    for cut in (50, 900, len(full) // 2):
        assert isinstance(extract(page(body=full[:cut])), (Article, Skipped))
    truncated = extract(page(body=full[:len(full) * 3 // 4]))
    assert isinstance(truncated, Article) and "passé en revue" in truncated.text


def test_min_chars_applies_to_pages_that_do_not_say_they_are_articles() -> None:
    raw = page("jsonld_date.html")  # a JSON-LD NewsArticle: a short text is still an article
    assert isinstance(extract(raw, min_chars=400), Article)
    assert isinstance(extract(raw, min_chars=5000), Article)
    untyped = page(body=("<html><body><h1>Sécurité et coopération</h1><p>La DGSN et la DGSI ont "
                         "tenu à Rabat une réunion de coordination consacrée au partage du "
                         "renseignement.</p></body></html>").encode(), url="https://example.org/x")
    assert isinstance(extract(untyped, min_chars=50), Article)
    result = extract(untyped, min_chars=5000)
    assert isinstance(result, Skipped) and result.reason.startswith("too short: ")


# --- dates in text ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Publié le 16 décembre 2023 - 15h00", datetime(2023, 12, 16, 15, 0)),
    ("Le 07/04/2025 à 12h18", datetime(2025, 4, 7, 12, 18)),
    ("الأحد 30 يونيو 2024 - 14:20", datetime(2024, 6, 30, 14, 20)),
    ("الإثنين 2 شتنبر 2024", datetime(2024, 9, 2)),
    ("٣ غشت ٢٠٢٤", datetime(2024, 8, 3)),
    ("الخميس 5 دجنبر 2024 على الساعة 10:05", datetime(2024, 12, 5, 10, 5)),
    ("15 أغسطس 2024", datetime(2024, 8, 15)),
    ("July 2, 2024", datetime(2024, 7, 2)),
    ("Jul 2, 2024 at 10:30 pm", datetime(2024, 7, 2, 22, 30)),
    ("1er juillet 2024, 3 hommes arrêtés", datetime(2024, 7, 1)),  # "3 h…" is not a time
])
def test_find_dates(text: str, expected: datetime) -> None:
    found = [value for _, value in find_dates(text)]
    assert found == [expected.replace(tzinfo=found[0].tzinfo)]
    assert str(found[0].tzinfo) == "Africa/Casablanca"


def test_visible_date_prefers_the_dateline_over_dates_in_sentences() -> None:
    latest = datetime(2025, 1, 1, tzinfo=UTC)
    lines = [("Mardi 15 octobre 2024", False), ("Hammouchi à Paris", True),
             ("Le 28 juin 2024, le patron de la DGSN est arrivé à Paris pour une visite.", False),
             ("Publié le 2 juillet 2024", False), ("Le 26 juillet 2024 s'ouvriront les Jeux.", False)]
    assert visible_date(lines, latest) == datetime(2024, 7, 2, tzinfo=LOCAL_TZ)
    lines[3] = ("Mis à jour le 3 juillet 2024 à 10h00", False)
    assert visible_date(lines, latest) == datetime(2024, 6, 28, tzinfo=LOCAL_TZ)
    assert visible_date(lines, datetime(2024, 6, 1, tzinfo=UTC)) is None  # all after the fetch


def test_find_dates_rejects_impossible_dates() -> None:
    assert list(find_dates("31/02/2024 et 45 juin 2024")) == []


# --- language -----------------------------------------------------------------------------------

def test_language_hint_breaks_ties_only() -> None:
    ambiguous = "Abdellatif Hammouchi DGSN DGSI Paris 2024"
    assert detect_language(ambiguous, "fr") == "fr"
    assert detect_language(ambiguous, "en") == "en"
    clear = "Le Maroc et la France renforcent leur coopération en matière de sécurité"
    assert detect_language(clear, "en") == "fr"
    assert detect_language("المغرب وفرنسا", "fr") == "ar"
    assert detect_language("Morocco and France strengthen security cooperation", "fr") == "en"


def test_reset_caches_runs() -> None:
    reset_caches()
    assert isinstance(extract(page("jsonld_date.html")), Article)


# --- replay fixtures of real-looking outlets (tests/fixtures/outlets/*/expected.yaml) ----------

FIXTURES = Path(__file__).parents[1] / "fixtures" / "outlets"
BASE = "http://127.0.0.1:8000"


def _fixture_cases() -> list:
    cases = []
    for expected in sorted(FIXTURES.glob("*/expected.yaml")):
        spec = yaml.safe_load(expected.read_text("utf-8")) or {}
        for item in spec.get("articles") or []:
            cases.append(pytest.param(expected.parent, item["path"], item,
                                      id=f"{expected.parent.name}:{item['path']}"))
        for path in spec.get("skipped") or []:
            cases.append(pytest.param(expected.parent, path, None,
                                      id=f"{expected.parent.name}:{path}"))
    return cases


def _replay(outlet: Path, path: str) -> RawPage:
    """The page as crawler/replay.py serves it: re-encoded, with its Content-Type."""
    route = yaml.safe_load((outlet / "routes.yaml").read_text("utf-8"))[path]
    config = yaml.safe_load((outlet / "outlet.yaml").read_text("utf-8"))
    ctype = route.get("type", "text/html")
    body = (outlet / route["file"]).read_bytes()
    if ctype.startswith("text/") or "html" in ctype or "xml" in ctype:
        charset = route.get("charset", "utf-8")
        text = body.decode("utf-8").replace("{{BASE}}", BASE)
        body = text.encode(charset, errors="xmlcharrefreplace")
        if route.get("header_charset", True):
            ctype = f"{ctype}; charset={charset}"
    return RawPage(url=BASE + path, final_url=BASE + path, outlet=config["name"], status=200,
                   headers={"content-type": ctype}, body=body,
                   fetched_at=datetime(2025, 11, 20, 10, tzinfo=UTC),
                   language_hint=config.get("language"))


@pytest.mark.parametrize("outlet, path, expected", _fixture_cases())
def test_fixture_outlets(outlet: Path, path: str, expected: dict | None) -> None:
    result = extract(_replay(outlet, path))
    if expected is None:
        assert isinstance(result, Skipped), f"{path} must not become an article"
        return
    assert isinstance(result, Article), result
    assert result.title == expected["title"]
    assert result.published is not None
    assert result.published.date().isoformat() == str(expected["published"])
    assert result.language == expected["language"]
    for sentence in expected.get("keep") or []:
        assert sentence in result.text
    for boilerplate in expected.get("drop") or []:
        assert boilerplate not in result.text


@pytest.mark.parametrize("title, names, expected", [
    ("Maroc : la DGSN recrute | Maroc Hebdo", ["Maroc Hebdo"], "Maroc : la DGSN recrute"),
    ("Le360 | Hammouchi à Paris", ["Le360"], "Hammouchi à Paris"),
    ("Hammouchi à Paris - Hespress FR", ["hespress"], "Hammouchi à Paris"),
    ("Tanger : un fugitif arrêté - Bladi.net", ["Bladi.net"], "Tanger : un fugitif arrêté"),
    ("Le point sur la coopération", ["Le360"], "Le point sur la coopération"),
    ("حموشي في باريس - هسبريس", ["هسبريس"], "حموشي في باريس"),
])
def test_strip_site_name(title: str, names: list[str], expected: str) -> None:
    assert strip_site_name(title, names) == expected


# --- relative datelines ----------------------------------------------------------------------

@pytest.mark.parametrize(("dateline", "ago"), [
    ("Il y a 3 heures", timedelta(hours=3)),
    ("Publié il y a une heure", timedelta(hours=1)),
    ("il y a 2 jours", timedelta(days=2)),
    ("5 hours ago", timedelta(hours=5)),
    ("an hour ago", timedelta(hours=1)),
    ("منذ 3 ساعات", timedelta(hours=3)),
    ("منذ ساعتين", timedelta(hours=2)),
    ("منذ يومين", timedelta(days=2)),
    ("منذ ساعة", timedelta(hours=1)),
])
def test_relative_dateline_under_the_headline(dateline: str, ago: timedelta) -> None:
    lines = [("Menu", False), ("Le titre de l'article", True), (dateline, False), ("Le texte.", False)]
    assert relative_date(lines, FETCHED) == FETCHED - ago


def test_relative_words_in_the_body_are_not_a_dateline() -> None:
    story = "Il y a 3 jours, la police a arrêté à Tanger un homme recherché par Interpol, selon nos sources."
    far = [("Titre", True), *[("Paragraphe.", False)] * 7, ("Il y a 3 heures", False)]
    assert relative_date([("Titre", True), (story, False)], FETCHED) is None
    assert relative_date(far, FETCHED) is None  # too far from the headline
    assert relative_date([("Il y a 3 heures", False)], FETCHED) is None  # no headline


def test_a_page_dated_only_relatively_gets_that_date() -> None:
    body = (PAGES / "fr_article.html").read_bytes().replace(
        "— Publié le 2 juillet 2024 à 15h00".encode(), "— Il y a 4 heures".encode())
    assert article(page(body=body)).published == FETCHED - timedelta(hours=4)
