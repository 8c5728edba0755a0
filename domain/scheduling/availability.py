"""Vets' availability: weekly windows in the vet's own IANA time zone plus dated exceptions,
turned into UTC windows and free slots. Local wall-clock times go through zoneinfo, so windows
keep their local hours across daylight-saving changes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated, Self, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo, available_timezones

import asyncpg
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from domain.errors import NotFound

HHMM = Annotated[str, StringConstraints(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")]
Interval = tuple[datetime, datetime]
MinuteWindow = tuple[int, int]
T = TypeVar("T", int, datetime)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


class WeeklyWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weekday: int = Field(ge=0, le=6, description="Monday 0 ... Sunday 6")
    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if _minutes(self.start) >= _minutes(self.end):
            raise ValueError("start must be before end")
        return self


class AvailabilityException(BaseModel):
    """A date's change: a day off (no times, available false), a blocked window (times,
    available false) or an extra window (times, available true)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: date
    start: HHMM | None = None
    end: HHMM | None = None
    available: bool

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end, or neither")
        if self.start is None and self.available:
            raise ValueError("an available exception needs start and end")
        if self.start and self.end and _minutes(self.start) >= _minutes(self.end):
            raise ValueError("start must be before end")
        return self


class Availability(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: str = Field(max_length=64, examples=["Europe/Paris"])
    weekly: list[WeeklyWindow] = Field(max_length=100)
    exceptions: list[AvailabilityException] = Field(default_factory=list, max_length=500)
    buffer_min: int = Field(default=10, ge=0, le=120, description="kept free after each booking")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError("not an IANA time zone")
        return value

    @property
    def buffer(self) -> timedelta:
        return timedelta(minutes=self.buffer_min)


_weekly = TypeAdapter(list[WeeklyWindow])
_exceptions = TypeAdapter(list[AvailabilityException])


def _subtract(windows: list[MinuteWindow], cut: MinuteWindow) -> list[MinuteWindow]:
    kept: list[MinuteWindow] = []
    for start, end in windows:
        if cut[1] <= start or end <= cut[0]:
            kept.append((start, end))
            continue
        if start < cut[0]:
            kept.append((start, cut[0]))
        if cut[1] < end:
            kept.append((cut[1], end))
    return kept


def _merge(windows: Iterable[tuple[T, T]]) -> list[tuple[T, T]]:
    """Union of windows: overlapping or touching ones become one."""
    merged: list[tuple[T, T]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def local_windows(availability: Availability, day: date) -> list[MinuteWindow]:
    """The day's open windows in local minutes since midnight, merged and ordered."""
    exceptions = [e for e in availability.exceptions if e.date == day]
    day_off = any(e.start is None for e in exceptions)
    windows: list[MinuteWindow] = (
        []
        if day_off
        else [
            (_minutes(w.start), _minutes(w.end))
            for w in availability.weekly
            if w.weekday == day.weekday()
        ]
    )
    windows += [
        (_minutes(e.start), _minutes(e.end))
        for e in exceptions
        if e.available and e.start and e.end
    ]
    for e in exceptions:
        if not e.available and e.start and e.end:
            windows = _subtract(windows, (_minutes(e.start), _minutes(e.end)))
    return _merge(windows)


def _instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def utc_windows(availability: Availability, start: datetime, end: datetime) -> list[Interval]:
    """Open windows, in UTC, that intersect [start, end); touching windows are merged."""
    zone = ZoneInfo(availability.time_zone)
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    found: list[Interval] = []
    while day <= last:
        for a, b in local_windows(availability, day):
            window = (_instant(day, a, zone), _instant(day, b, zone))
            if window[0] < end and start < window[1]:
                found.append(window)
        day += timedelta(days=1)
    return _merge(found)


def fits(availability: Availability, start: datetime, end: datetime) -> bool:
    return any(a <= start and end <= b for a, b in utc_windows(availability, start, end))


def free_slots(
    windows: Iterable[Interval],
    busy: list[Interval],
    duration: timedelta,
    buffer: timedelta,
    start: datetime,
    end: datetime,
) -> Iterator[Interval]:
    """Slots on each window's grid (duration plus buffer apart) inside [start, end) whose span
    and trailing buffer touch no busy interval."""
    for window_start, window_end in windows:
        slot = window_start
        while slot + duration <= window_end:
            slot_end = slot + duration
            if (
                start <= slot
                and slot_end <= end
                and not any(slot < b_end and b_start < slot_end + buffer for b_start, b_end in busy)
            ):
                yield slot, slot_end
            slot += duration + buffer


async def set_availability(
    conn: asyncpg.Connection | asyncpg.Pool, vet_id: UUID, availability: Availability
) -> Availability:
    stored = await conn.fetchval(
        """INSERT INTO vet_availability (vet_id, time_zone, buffer_min, weekly, exceptions)
           SELECT id, $2, $3, $4::jsonb, $5::jsonb FROM users WHERE id = $1 AND role = 'vet'
           ON CONFLICT (vet_id) DO UPDATE
              SET time_zone = excluded.time_zone, buffer_min = excluded.buffer_min,
                  weekly = excluded.weekly, exceptions = excluded.exceptions, updated_at = now()
           RETURNING vet_id""",
        vet_id,
        availability.time_zone,
        availability.buffer_min,
        _weekly.dump_json(availability.weekly).decode(),
        _exceptions.dump_json(availability.exceptions).decode(),
    )
    if stored is None:
        raise NotFound("no such vet")
    return availability


async def get_availability(
    conn: asyncpg.Connection | asyncpg.Pool, vet_id: UUID
) -> Availability | None:
    """The vet's availability; None when they have published none. NotFound if not a vet."""
    row = await conn.fetchrow(
        """SELECT a.time_zone, a.buffer_min, a.weekly::text, a.exceptions::text
             FROM users u LEFT JOIN vet_availability a ON a.vet_id = u.id
            WHERE u.id = $1 AND u.role = 'vet'""",
        vet_id,
    )
    if row is None:
        raise NotFound("no such vet")
    if row["time_zone"] is None:
        return None
    return Availability(
        time_zone=row["time_zone"],
        buffer_min=row["buffer_min"],
        weekly=_weekly.validate_json(row["weekly"]),
        exceptions=_exceptions.validate_json(row["exceptions"]),
    )
