"""veille.pipeline.dates on values real pages carry: placeholders, odd offsets, stated days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from veille.pipeline.dates import find_dates, parse_iso
from veille.pipeline.extract import extract
from veille.pipeline.types import Article, RawPage

BODY = "".join(f"<p>{s}</p>" for s in (
    "La DGSN et la DGSI ont tenu une réunion de coordination à Rabat ce mardi, consacrée à la "
    "lutte antiterroriste et au partage du renseignement entre les deux pays.",
    "Les deux délégations ont passé en revue les menaces communes et les dispositifs prévus pour "
    "les grands événements sportifs de l'été, selon un communiqué publié à l'issue de la séance.",
    "Les responsables ont convenu de renforcer l'échange d'informations opérationnelles et de "
    "multiplier les rencontres techniques entre leurs services au cours des prochains mois."))


@pytest.mark.parametrize("value", [
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00", "0000-00-00 00:00:00", "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59+14:00", "not a date", "", "2024-13-45T99:99:99Z", "Mon, 99 Foo 0001 00:00",
])
def test_placeholder_and_malformed_dates_are_none_or_plausible(value: str) -> None:
    found = parse_iso(value)
    assert found is None or found.year >= 1995


def test_stated_offset_keeps_the_stated_day() -> None:
    found = parse_iso("2020-06-07T23:30:00-04:00")
    assert found is not None and found.date().isoformat() == "2020-06-07"
    assert found == datetime(2020, 6, 8, 3, 30, tzinfo=UTC)  # the same instant


def test_time_element_offset_is_read_back() -> None:
    (pos, value), *_ = find_dates("2024-07-01T23:30+00:00")
    assert pos == 0 and value == datetime(2024, 7, 1, 23, 30, tzinfo=timezone(timedelta(0)))


def test_placeholder_jsonld_date_does_not_crash_extraction() -> None:
    html = ('<html><head><title>Réunion DGSN-DGSI à Rabat</title><script type="application/ld+json">'
            '{"@type": "NewsArticle", "headline": "Réunion DGSN-DGSI à Rabat", '
            '"datePublished": "0001-01-01T00:00:00Z", "dateModified": "0001-01-01T00:00:00Z"}'
            f'</script></head><body><article><h1>Réunion DGSN-DGSI à Rabat</h1>{BODY}'
            '</article></body></html>')
    page = RawPage(url="https://example.ma/reunion-dgsn-dgsi-rabat", final_url="", outlet="x",
                   status=200, headers={"content-type": "text/html"}, body=html.encode(),
                   fetched_at=datetime(2024, 7, 2, tzinfo=UTC))
    art = extract(page)
    assert isinstance(art, Article), art
    assert art.published is None or art.published.year >= 1995


def test_a_utc_stamp_a_day_off_the_url_day_takes_the_url_day() -> None:
    from veille.pipeline.dates import _on_url_day, url_day

    day = url_day("https://laprensa.example/2020/02/17/una-nota/")
    assert day is not None and day.date().isoformat() == "2020-02-17"
    assert url_day("https://x.example/news/20200413/story") is not None
    assert url_day("https://x.example/article/825076-title") is None
    stamp = datetime(2020, 2, 18, 2, 18, tzinfo=UTC)
    assert _on_url_day(stamp, day).date().isoformat() == "2020-02-17"
    far = datetime(2020, 3, 18, 2, 18, tzinfo=UTC)
    assert _on_url_day(far, day) == far  # a URL day far off proves nothing
