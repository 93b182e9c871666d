"""storage/timestamps.py: aware UTC in and out, and the offset a page stated kept apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from veille.storage.timestamps import UTCDateTime, as_utc, offset_minutes, stated

instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60)


def test_as_utc_reads_naive_as_utc_and_keeps_aware() -> None:
    assert as_utc(datetime(2024, 6, 30, 12)) == datetime(2024, 6, 30, 12, tzinfo=UTC)
    paris = datetime(2024, 6, 30, 14, tzinfo=timezone(timedelta(hours=2)))
    assert as_utc(paris) is paris
    assert as_utc(None) is None


@given(instants, offsets)
def test_stated_is_the_same_instant_at_the_page_offset(instant: datetime, minutes: int) -> None:
    """Storing the instant in UTC and its offset apart loses nothing: the page's own day
    and time come back, and the instant compares equal."""
    page = instant.astimezone(timezone(timedelta(minutes=minutes)))
    shown = stated(instant, offset_minutes(page))
    assert shown == instant and shown is not None
    assert (shown.date(), shown.time(), offset_minutes(shown)) == (page.date(), page.time(), minutes)


def test_stated_without_a_known_offset_is_utc() -> None:
    when = datetime(2020, 6, 8, 3, 30, tzinfo=UTC)
    assert offset_minutes(stated(when, None)) == 0
    assert offset_minutes(stated(when, 5000)) == 0  # not an offset any clock shows
    assert stated(None, 60) is None
    assert offset_minutes(None) is None


def test_the_column_type_writes_utc_and_reads_aware() -> None:
    col = UTCDateTime()
    paris = datetime(2024, 6, 30, 14, tzinfo=timezone(timedelta(hours=2)))
    assert col.process_bind_param(paris, None) == datetime(2024, 6, 30, 12, tzinfo=UTC)
    assert col.process_bind_param(datetime(2024, 6, 30, 12), None) == datetime(2024, 6, 30, 12, tzinfo=UTC)
    assert col.process_result_value(datetime(2024, 6, 30, 12), None) == datetime(2024, 6, 30, 12, tzinfo=UTC)
    assert col.process_bind_param(None, None) is None
