"""REST fixtures: an HTTP client on the live API, and ready-made owners, vets and pets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import httpx
import pytest

from domain.identity import Role, User

MakeUser = Callable[..., Awaitable[tuple[User, str]]]

# Open around the clock, in UTC, with a 10-minute buffer after each booking.
ALWAYS_OPEN: dict[str, Any] = {
    "time_zone": "UTC",
    "weekly": [{"weekday": day, "start": "00:00", "end": "24:00"} for day in range(7)],
    "exceptions": [],
    "buffer_min": 10,
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tomorrow_at(hour: int, minute: int = 0) -> datetime:
    day = datetime.now(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture
async def http(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        yield client


@pytest.fixture
async def owner(make_user: MakeUser) -> tuple[User, str]:
    return await make_user(Role.owner, name="Olive Owner")


@pytest.fixture
async def vet(make_user: MakeUser, http: httpx.AsyncClient) -> tuple[User, str]:
    """A vet open around the clock."""
    user, token = await make_user(Role.vet, name="Dr. Vera Vet")
    response = await http.put(
        f"/v1/vets/{user.id}/availability", json=ALWAYS_OPEN, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    return user, token


@pytest.fixture
async def pet(http: httpx.AsyncClient, owner: tuple[User, str]) -> dict[str, Any]:
    response = await http.post(
        "/v1/pets", json={"name": "Rex", "species": "dog"}, headers=bearer(owner[1])
    )
    assert response.status_code == 201, response.text
    pet: dict[str, Any] = response.json()
    return pet


async def book(
    http: httpx.AsyncClient,
    owner_token: str,
    vet_id: object,
    pet_id: object,
    start: datetime,
    *,
    duration_min: int = 30,
    kind: str = "video",
) -> httpx.Response:
    return await http.post(
        "/v1/bookings",
        json={
            "vet_id": str(vet_id),
            "pet_id": str(pet_id),
            "start": start.isoformat(),
            "duration_min": duration_min,
            "kind": kind,
        },
        headers=bearer(owner_token),
    )


@pytest.fixture
async def booked_vet(
    http: httpx.AsyncClient,
    owner: tuple[User, str],
    vet: tuple[User, str],
    pet: dict[str, Any],
) -> tuple[User, str]:
    """The vet, with a video booking for the pet (so they see it)."""
    response = await book(http, owner[1], vet[0].id, pet["id"], tomorrow_at(9))
    assert response.status_code == 201, response.text
    return vet


class Visit(NamedTuple):
    """An owner and a vet (each with a token) and the owner's pet."""

    owner: tuple[User, str]
    vet: tuple[User, str]
    pet: dict[str, Any]


@pytest.fixture
def visit(owner: tuple[User, str], vet: tuple[User, str], pet: dict[str, Any]) -> Visit:
    """The vet is open around the clock; nothing is booked yet."""
    return Visit(owner, vet, pet)


@pytest.fixture
def booked_visit(
    owner: tuple[User, str], booked_vet: tuple[User, str], pet: dict[str, Any]
) -> Visit:
    """The vet has a video booking for the pet, so sees it and may write its records."""
    return Visit(owner, booked_vet, pet)
