"""Availability, slots, bookings (no overlap, even under a race), cancellation, consults."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from domain.identity import Role, User
from tests.rest.conftest import ALWAYS_OPEN, MakeUser, Visit, bearer, book, tomorrow_at


async def test_only_that_vet_or_an_admin_publishes_hours(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    vet, _ = await make_user(Role.vet)
    _, other_vet = await make_user(Role.vet)
    _, admin = await make_user(Role.admin)
    path = f"/v1/vets/{vet.id}/availability"
    assert (await http.put(path, json=ALWAYS_OPEN, headers=bearer(other_vet))).status_code == 403
    assert (await http.put(path, json=ALWAYS_OPEN, headers=bearer(admin))).status_code == 200
    bad_zone = {**ALWAYS_OPEN, "time_zone": "Mars/Olympus"}
    assert (await http.put(path, json=bad_zone, headers=bearer(admin))).status_code == 400
    backwards = {**ALWAYS_OPEN, "weekly": [{"weekday": 0, "start": "10:00", "end": "09:00"}]}
    assert (await http.put(path, json=backwards, headers=bearer(admin))).status_code == 400
    not_a_vet, _ = await make_user(Role.owner)
    missing = await http.put(
        f"/v1/vets/{not_a_vet.id}/availability", json=ALWAYS_OPEN, headers=bearer(admin)
    )
    assert missing.status_code == 404


async def test_slots_follow_the_vets_zone_and_skip_bookings(
    http: httpx.AsyncClient, make_user: MakeUser, owner: tuple[User, str], pet: dict[str, Any]
) -> None:
    vet, vet_token = await make_user(Role.vet)
    day = tomorrow_at(0)
    hours = {
        "time_zone": "Asia/Tokyo",  # UTC+9, no daylight saving
        "weekly": [{"weekday": day.weekday(), "start": "18:00", "end": "20:00"}],
        "exceptions": [],
        "buffer_min": 10,
    }
    assert (
        await http.put(f"/v1/vets/{vet.id}/availability", json=hours, headers=bearer(vet_token))
    ).is_success
    query = {
        "from": day.isoformat(),
        "to": (day + timedelta(days=1)).isoformat(),
        "duration_min": 30,
    }
    slots = (
        await http.get(f"/v1/vets/{vet.id}/slots", params=query, headers=bearer(owner[1]))
    ).json()
    # 18:00-20:00 in Tokyo is 09:00-11:00 UTC; 30-minute slots 40 minutes apart.
    assert [s["start"][11:16] for s in slots] == ["09:00", "09:40", "10:20"]

    booked = await book(http, owner[1], vet.id, pet["id"], day + timedelta(hours=9, minutes=40))
    assert booked.status_code == 201
    slots = (
        await http.get(f"/v1/vets/{vet.id}/slots", params=query, headers=bearer(owner[1]))
    ).json()
    assert [s["start"][11:16] for s in slots] == ["09:00", "10:20"]
    outside = await book(http, owner[1], vet.id, pet["id"], day + timedelta(hours=12))
    assert outside.status_code == 422
    too_wide = {**query, "to": (day + timedelta(days=40)).isoformat()}
    wide = await http.get(f"/v1/vets/{vet.id}/slots", params=too_wide, headers=bearer(owner[1]))
    assert wide.status_code == 422


async def test_a_video_booking_opens_a_consult_with_its_chat_room(
    http: httpx.AsyncClient, make_user: MakeUser, visit: Visit
) -> None:
    owner, vet, pet = visit
    response = await book(http, owner[1], vet[0].id, pet["id"], tomorrow_at(14))
    assert response.status_code == 201
    booking = response.json()
    assert booking["status"] == "confirmed" and booking["consult_id"]

    consult = await http.get(f"/v1/consults/{booking['consult_id']}", headers=bearer(vet[1]))
    assert consult.status_code == 200
    body = consult.json()
    assert body["booking_id"] == booking["id"]
    assert sorted((p["user_id"], p["role"]) for p in body["participants"]) == sorted(
        [(str(owner[0].id), "owner"), (str(vet[0].id), "vet")]
    )
    rooms = (await http.get("/v1/conversations", headers=bearer(owner[1]))).json()
    assert [r["id"] for r in rooms] == [body["room"]]
    assert sorted(rooms[0]["member_ids"]) == sorted([str(owner[0].id), str(vet[0].id)])

    _, stranger = await make_user(Role.owner)
    assert (
        await http.get(f"/v1/consults/{body['id']}", headers=bearer(stranger))
    ).status_code == 404
    assert (
        await http.get(f"/v1/bookings/{booking['id']}", headers=bearer(stranger))
    ).status_code == 404

    in_person = await book(http, owner[1], vet[0].id, pet["id"], tomorrow_at(16), kind="in_person")
    assert in_person.status_code == 201 and in_person.json()["consult_id"] is None


async def test_overlaps_including_the_buffer_are_409(http: httpx.AsyncClient, visit: Visit) -> None:
    owner, vet, pet = visit
    start = tomorrow_at(10)
    assert (await book(http, owner[1], vet[0].id, pet["id"], start)).status_code == 201
    overlapping = await book(http, owner[1], vet[0].id, pet["id"], start + timedelta(minutes=15))
    assert overlapping.status_code == 409
    assert overlapping.headers["content-type"].startswith("application/problem+json")
    in_buffer = await book(http, owner[1], vet[0].id, pet["id"], start + timedelta(minutes=35))
    assert in_buffer.status_code == 409
    after_buffer = await book(http, owner[1], vet[0].id, pet["id"], start + timedelta(minutes=40))
    assert after_buffer.status_code == 201


async def test_cancel_keeps_the_row_and_its_history_and_frees_the_time(
    http: httpx.AsyncClient, visit: Visit, pool: asyncpg.Pool
) -> None:
    owner, vet, pet = visit
    start = tomorrow_at(11)
    booking = (await book(http, owner[1], vet[0].id, pet["id"], start)).json()
    cancelled = await http.post(f"/v1/bookings/{booking['id']}/cancel", headers=bearer(vet[1]))
    assert cancelled.status_code == 200
    assert [h["status"] for h in cancelled.json()["history"]] == ["confirmed", "cancelled"]
    assert (
        await pool.fetchval("SELECT status FROM bookings WHERE id = $1", booking["id"])
        == "cancelled"
    )
    again = await http.post(f"/v1/bookings/{booking['id']}/cancel", headers=bearer(owner[1]))
    assert again.status_code == 409
    assert (await book(http, owner[1], vet[0].id, pet["id"], start)).status_code == 201


async def test_one_slot_fifty_racers_one_winner(http: httpx.AsyncClient, visit: Visit) -> None:
    owner, vet, pet = visit
    start = tomorrow_at(13)
    responses = await asyncio.gather(
        *(book(http, owner[1], vet[0].id, pet["id"], start) for _ in range(50))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 49


async def test_bookings_need_the_owners_own_pet_and_a_real_vet(
    http: httpx.AsyncClient, make_user: MakeUser, vet: tuple[User, str], pet: dict[str, Any]
) -> None:
    _, stranger = await make_user(Role.owner)
    assert (await book(http, stranger, vet[0].id, pet["id"], tomorrow_at(8))).status_code == 404
    owner_as_vet, _ = await make_user(Role.owner)
    response = await book(http, stranger, owner_as_vet.id, pet["id"], tomorrow_at(8))
    assert response.status_code == 404
    assert (await book(http, vet[1], vet[0].id, pet["id"], tomorrow_at(8))).status_code == 403


async def test_conversations_are_created_listed_and_private(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice, alice_token = await make_user(Role.owner)
    bob, bob_token = await make_user(Role.vet)
    _, eve_token = await make_user(Role.owner)
    created = await http.post(
        "/v1/conversations",
        json={"member_ids": [str(bob.id)], "title": "Rex"},
        headers=bearer(alice_token),
    )
    assert created.status_code == 201
    room = created.json()
    assert sorted(room["member_ids"]) == sorted([str(alice.id), str(bob.id)])
    listed = (await http.get("/v1/conversations", headers=bearer(bob_token))).json()
    assert [(r["id"], r["title"], r["last_seq"], r["unread"]) for r in listed] == [
        (room["id"], "Rex", 0, 0)
    ]
    assert (
        await http.get(f"/v1/conversations/{room['id']}", headers=bearer(eve_token))
    ).status_code == 404
    assert (await http.get(f"/v1/conversations/{room['id']}", headers=bearer(bob_token))).is_success
    unknown = await http.post(
        "/v1/conversations",
        json={"member_ids": ["00000000-0000-0000-0000-000000000000"]},
        headers=bearer(alice_token),
    )
    assert unknown.status_code == 422
