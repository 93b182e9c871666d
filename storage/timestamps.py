"""Time on every backend: aware UTC instants in and out (SQLite drops the offset), and
the offset a page stated kept beside them. The one place these helpers live; every layer
imports them from here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, overload

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """Aware as it is; naive read as UTC (what SQLite hands back without an offset)."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def offset_minutes(value: datetime | None) -> int | None:
    """The UTC offset `value` states, in whole minutes; None when it states none."""
    off = value.utcoffset() if value is not None else None
    return None if off is None else round(off.total_seconds() / 60)


def stated(value: datetime | None, offset: int | None) -> datetime | None:
    """The stored instant `value` at the UTC offset its page stated (`offset` minutes), so
    its day and time of day are the page's; in UTC when the offset is not known."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if offset is None or not -1440 < offset < 1440:
        return value.astimezone(UTC)
    try:
        return value.astimezone(timezone(timedelta(minutes=offset)))
    except OverflowError:  # an instant at the edge of the calendar
        return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
