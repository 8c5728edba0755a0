"""How a booking ended: completed or no_show, said by its vet or an admin, only from confirmed
(and, for no_show, once it has started); every other transition is a 409 problem."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from domain.identity import Role, User
from tests.rest.conftest import MakeUser, Visit, bearer, book, tomorrow_at


async def _booking(
    http: httpx.AsyncClient, owner: tuple[User, str], vet: User, pet: dict[str, Any], hour: int
) -> str:
    response = await book(http, owner[1], vet.id, pet["id"], tomorrow_at(hour))
    assert response.status_code == 201, response.text
    booking_id: str = response.json()["id"]
    return booking_id


async def _started_an_hour_ago(pool: asyncpg.Pool, booking_id: str) -> None:
    await pool.execute(
        "UPDATE bookings SET starts_at = now() - interval '1 hour', "
        "ends_at = now() - interval '30 minutes', "
        "blocked = tstzrange(now() - interval '1 hour', now() - interval '20 minutes', '[)') "
        "WHERE id = $1",
        booking_id,
    )


async def test_the_vet_completes_a_confirmed_booking_once(
    http: httpx.AsyncClient, make_user: MakeUser, visit: Visit
) -> None:
    owner, vet, pet = visit
    booking_id = await _booking(http, owner, vet[0], pet, 9)
    path = f"/v1/bookings/{booking_id}"
    by_owner = await http.post(f"{path}/complete", headers=bearer(owner[1]))
    assert by_owner.status_code == 403
    _, other_vet = await make_user(Role.vet)
    unseen = await http.post(f"{path}/complete", headers=bearer(other_vet))
    assert unseen.status_code == 404

    completed = await http.post(f"{path}/complete", headers=bearer(vet[1]))
    assert completed.status_code == 200, completed.text
    body = completed.json()
    assert body["status"] == "completed"
    assert [(h["status"], h["changed_by"]) for h in body["history"]] == [
        ("confirmed", str(owner[0].id)),
        ("completed", str(vet[0].id)),
    ]
    for action in ("complete", "no-show", "cancel"):
        again = await http.post(f"{path}/{action}", headers=bearer(vet[1]))
        assert again.status_code == 409, action
        assert again.headers["content-type"].startswith("application/problem+json")
    seen = await http.get(path, headers=bearer(owner[1]))
    assert seen.json()["status"] == "completed"


async def test_no_show_only_once_the_booking_has_started(
    http: httpx.AsyncClient, visit: Visit, pool: asyncpg.Pool
) -> None:
    owner, vet, pet = visit
    booking_id = await _booking(http, owner, vet[0], pet, 11)
    path = f"/v1/bookings/{booking_id}/no-show"
    early = await http.post(path, headers=bearer(vet[1]))
    assert early.status_code == 409 and "started" in early.json()["detail"]
    await _started_an_hour_ago(pool, booking_id)
    marked = await http.post(path, headers=bearer(vet[1]))
    assert marked.status_code == 200, marked.text
    assert marked.json()["status"] == "no_show"
    complete = await http.post(f"/v1/bookings/{booking_id}/complete", headers=bearer(vet[1]))
    assert complete.status_code == 409


async def test_an_admin_records_outcomes_but_not_for_cancelled_bookings(
    http: httpx.AsyncClient, make_user: MakeUser, visit: Visit, pool: asyncpg.Pool
) -> None:
    owner, vet, pet = visit
    admin, admin_token = await make_user(Role.admin)
    first = await _booking(http, owner, vet[0], pet, 13)
    await _started_an_hour_ago(pool, first)
    marked = await http.post(f"/v1/bookings/{first}/no-show", headers=bearer(admin_token))
    assert marked.status_code == 200, marked.text
    last = marked.json()["history"][-1]
    assert (last["status"], last["changed_by"]) == ("no_show", str(admin.id))

    second = await _booking(http, owner, vet[0], pet, 15)
    cancelled = await http.post(f"/v1/bookings/{second}/cancel", headers=bearer(owner[1]))
    assert cancelled.status_code == 200
    for action in ("complete", "no-show"):
        refused = await http.post(f"/v1/bookings/{second}/{action}", headers=bearer(admin_token))
        assert refused.status_code == 409, action
    status = await pool.fetchval("SELECT status FROM bookings WHERE id = $1", second)
    assert status == "cancelled"
