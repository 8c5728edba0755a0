from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.scheduling.availability import (
    Availability,
    fits,
    free_slots,
    local_windows,
    utc_windows,
)


def hours(**changes: object) -> Availability:
    base: dict[str, object] = {
        "time_zone": "Europe/Paris",
        "weekly": [
            {"weekday": 0, "start": "09:00", "end": "12:00"},
            {"weekday": 0, "start": "14:00", "end": "18:00"},
        ],
        "exceptions": [],
        "buffer_min": 10,
    }
    return Availability.model_validate({**base, **changes})


MONDAY = date(2026, 3, 23)  # the Monday before Europe's spring clock change (29 March)


def test_exceptions_take_days_off_block_windows_and_add_hours() -> None:
    availability = hours(
        exceptions=[
            {"date": "2026-03-23", "start": "10:00", "end": "11:00", "available": False},
            {"date": "2026-03-23", "start": "18:00", "end": "19:00", "available": True},
            {"date": "2026-03-30", "available": False},
        ]
    )
    assert local_windows(availability, MONDAY) == [(540, 600), (660, 720), (840, 1140)]
    assert local_windows(availability, MONDAY + timedelta(days=7)) == []
    assert local_windows(availability, MONDAY + timedelta(days=1)) == []


def test_local_hours_survive_daylight_saving() -> None:
    availability = hours()
    before = utc_windows(
        availability, datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 3, 24, tzinfo=UTC)
    )
    after = utc_windows(
        availability, datetime(2026, 3, 30, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)
    )
    assert [w[0].hour for w in before] == [8, 13]  # CET, UTC+1
    assert [w[0].hour for w in after] == [7, 12]  # CEST, UTC+2


def test_bookings_must_fit_inside_a_window() -> None:
    availability = hours()
    start = datetime(2026, 3, 23, 8, 0, tzinfo=UTC)
    assert fits(availability, start, start + timedelta(minutes=30))
    assert not fits(
        availability, start + timedelta(hours=3, minutes=45), start + timedelta(hours=4, minutes=15)
    )


def test_free_slots_step_by_duration_plus_buffer_and_skip_busy_time() -> None:
    day = datetime(2026, 3, 23, tzinfo=UTC)
    window = (day.replace(hour=9), day.replace(hour=11))
    busy = [(day.replace(hour=9, minute=40), day.replace(hour=10, minute=20))]
    slots = list(
        free_slots(
            [window],
            busy,
            timedelta(minutes=30),
            timedelta(minutes=10),
            day,
            day + timedelta(days=1),
        )
    )
    assert [(s.strftime("%H:%M"), e.strftime("%H:%M")) for s, e in slots] == [
        ("09:00", "09:30"),
        ("10:20", "10:50"),
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"time_zone": "Mars/Olympus"},
        {"weekly": [{"weekday": 7, "start": "09:00", "end": "10:00"}]},
        {"weekly": [{"weekday": 1, "start": "9:00", "end": "10:00"}]},
        {"weekly": [{"weekday": 1, "start": "11:00", "end": "10:00"}]},
        {"exceptions": [{"date": "2026-03-23", "available": True}]},
        {"exceptions": [{"date": "2026-03-23", "start": "10:00", "available": False}]},
        {"buffer_min": -1},
    ],
)
def test_bad_availability_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        hours(**changes)
