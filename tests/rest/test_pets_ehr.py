"""Pets and health records over HTTP: ownership, vets' access through bookings, kinds, the 24-hour
lock, amendments, no deletion, and the audit trail."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from domain.identity import Role, User
from tests.rest.conftest import MakeUser, Visit, bearer

WEIGHT = {"kind": "weight", "data": {"kg": 12.5}}
NOTE = {
    "kind": "note",
    "data": {
        "subjective": "limping",
        "objective": "swollen paw",
        "assessment": "sprain",
        "plan": "rest",
    },
}


async def test_owner_creates_reads_and_patches_a_pet(
    http: httpx.AsyncClient, owner: tuple[User, str]
) -> None:
    created = await http.post(
        "/v1/pets",
        json={"name": "Mia", "species": "cat", "breed": "Siamese", "sex": "female"},
        headers=bearer(owner[1]),
    )
    assert created.status_code == 201
    pet_id = created.json()["id"]
    patched = await http.patch(
        f"/v1/pets/{pet_id}", json={"name": "Mimi", "breed": None}, headers=bearer(owner[1])
    )
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["breed"]) == ("Mimi", None)
    read = await http.get(f"/v1/pets/{pet_id}", headers=bearer(owner[1]))
    assert read.json() == patched.json()
    listed = await http.get("/v1/pets", headers=bearer(owner[1]))
    assert [p["id"] for p in listed.json()] == [pet_id]
    cleared = await http.patch(f"/v1/pets/{pet_id}", json={"name": None}, headers=bearer(owner[1]))
    assert cleared.status_code == 400


async def test_another_owners_pet_and_records_are_404(
    http: httpx.AsyncClient, make_user: MakeUser, booked_visit: Visit
) -> None:
    _, booked_vet, pet = booked_visit
    record = await http.post(
        f"/v1/pets/{pet['id']}/records", json=WEIGHT, headers=bearer(booked_vet[1])
    )
    assert record.status_code == 201
    _, stranger = await make_user(Role.owner)
    _, other_vet = await make_user(Role.vet)
    for token in (stranger, other_vet):
        for path in (
            f"/v1/pets/{pet['id']}",
            f"/v1/pets/{pet['id']}/records",
            f"/v1/records/{record.json()['id']}",
        ):
            response = await http.get(path, headers=bearer(token))
            assert response.status_code == 404, (path, response.text)
            assert pet["name"] not in response.text
        assert (await http.get("/v1/pets", headers=bearer(token))).json() == []
    patched = await http.patch(
        f"/v1/pets/{pet['id']}", json={"name": "X"}, headers=bearer(stranger)
    )
    assert patched.status_code == 404
    written = await http.post(
        f"/v1/pets/{pet['id']}/records", json=WEIGHT, headers=bearer(other_vet)
    )
    assert written.status_code == 404


async def test_a_booked_vet_sees_the_pet_but_may_not_edit_it(
    http: httpx.AsyncClient, booked_visit: Visit
) -> None:
    _, booked_vet, pet = booked_visit
    assert (await http.get(f"/v1/pets/{pet['id']}", headers=bearer(booked_vet[1]))).is_success
    listed = await http.get("/v1/pets", headers=bearer(booked_vet[1]))
    assert [p["id"] for p in listed.json()] == [pet["id"]]
    patched = await http.patch(
        f"/v1/pets/{pet['id']}", json={"name": "X"}, headers=bearer(booked_vet[1])
    )
    assert patched.status_code == 403


async def test_vets_write_owners_read_and_each_kind_is_checked(
    http: httpx.AsyncClient, booked_visit: Visit
) -> None:
    owner, (vet, vet_token), pet = booked_visit
    path = f"/v1/pets/{pet['id']}/records"
    records = [
        NOTE,
        WEIGHT,
        {
            "kind": "vaccination",
            "data": {
                "vaccine": "Rabies",
                "lot": "L1",
                "given_on": "2026-01-02",
                "next_due": "2027-01-02",
            },
        },
        {
            "kind": "prescription",
            "data": {
                "drug": "Meloxicam",
                "dose": "1.5 mg",
                "route": "oral",
                "frequency": "daily",
                "duration_days": 5,
                "refills": 1,
            },
        },
        {"kind": "allergy", "data": {"allergen": "chicken", "severity": "mild"}},
        {
            "kind": "lab",
            "data": {
                "test": "ALT",
                "value": 45.0,
                "units": "U/L",
                "reference_range": {"low": 10, "high": 100},
            },
        },
    ]  # attachments: tests/rest/test_attachments.py
    for body in records:
        created = await http.post(path, json=body, headers=bearer(vet_token))
        assert created.status_code == 201, created.text
        signed = created.json()
        assert signed["author_id"] == str(vet.id) and len(signed["content_sha256"]) == 64

    refused = [
        {"kind": "weight", "data": {"kg": 12.5, "colour": "brown"}},  # unknown field
        {"kind": "weight", "data": {"kg": -3}},
        {"kind": "note", "data": {"subjective": "only one part"}},
        {"kind": "x-ray", "data": {}},
        {
            "kind": "vaccination",
            "data": {
                "vaccine": "R",
                "lot": "L",
                "given_on": "2026-02-01",
                "next_due": "2025-01-01",
            },
        },
    ]
    for body in refused:
        response = await http.post(path, json=body, headers=bearer(vet_token))
        assert response.status_code == 400, body
        assert response.headers["content-type"].startswith("application/problem+json")

    by_owner = await http.post(path, json=WEIGHT, headers=bearer(owner[1]))
    assert by_owner.status_code == 403
    read = await http.get(path, headers=bearer(owner[1]))
    assert read.status_code == 200
    assert [r["kind"] for r in read.json()] == [body["kind"] for body in records]


async def test_records_are_never_deleted(
    http: httpx.AsyncClient, booked_visit: Visit, pool: asyncpg.Pool
) -> None:
    _, booked_vet, pet = booked_visit
    record = (
        await http.post(f"/v1/pets/{pet['id']}/records", json=WEIGHT, headers=bearer(booked_vet[1]))
    ).json()
    for path in (f"/v1/records/{record['id']}", f"/v1/pets/{pet['id']}/records"):
        response = await http.delete(path, headers=bearer(booked_vet[1]))
        assert response.status_code == 405
        assert response.json()["status"] == 405
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await pool.execute("DELETE FROM ehr_records WHERE id = $1", record["id"])


async def test_a_record_is_corrected_within_24h_then_only_amended(
    http: httpx.AsyncClient, make_user: MakeUser, booked_visit: Visit, pool: asyncpg.Pool
) -> None:
    owner, (_, vet_token), pet = booked_visit
    record = (
        await http.post(f"/v1/pets/{pet['id']}/records", json=WEIGHT, headers=bearer(vet_token))
    ).json()
    path = f"/v1/records/{record['id']}"

    corrected = await http.patch(path, json={"data": {"kg": 13.0}}, headers=bearer(vet_token))
    assert corrected.status_code == 200
    assert corrected.json()["data"] == {"kg": 13.0}
    assert corrected.json()["content_sha256"] != record["content_sha256"]
    wrong_shape = await http.patch(path, json={"data": {"kilos": 13}}, headers=bearer(vet_token))
    assert wrong_shape.status_code == 400

    # A day passes.
    await pool.execute(
        "UPDATE ehr_records SET created_at = now() - interval '25 hours' WHERE id = $1",
        record["id"],
    )
    locked = await http.patch(path, json={"data": {"kg": 14.0}}, headers=bearer(vet_token))
    assert locked.status_code == 409
    with pytest.raises(asyncpg.RestrictViolationError, match="locked"):
        await pool.execute(
            "UPDATE ehr_records SET data = '{\"kg\": 1}' WHERE id = $1", record["id"]
        )

    amended = await http.post(
        f"{path}/amendments",
        json={"reason": "scale was off", "data": {"kg": 13.4}},
        headers=bearer(vet_token),
    )
    assert amended.status_code == 201
    bad = await http.post(
        f"{path}/amendments",
        json={"reason": "oops", "data": {"kg": "heavy"}},
        headers=bearer(vet_token),
    )
    assert bad.status_code == 400
    seen = (await http.get(path, headers=bearer(owner[1]))).json()
    assert seen["data"] == {"kg": 13.0}  # the signed original stays
    assert [(a["reason"], a["data"]) for a in seen["amendments"]] == [
        ("scale was off", {"kg": 13.4})
    ]


async def test_every_ehr_access_is_audited_and_the_audit_log_cannot_change(
    http: httpx.AsyncClient, booked_visit: Visit, pool: asyncpg.Pool
) -> None:
    owner, (vet, vet_token), pet = booked_visit
    headers = {**bearer(vet_token), "User-Agent": "pawhub-test/1"}
    record = (await http.post(f"/v1/pets/{pet['id']}/records", json=WEIGHT, headers=headers)).json()
    await http.get(f"/v1/pets/{pet['id']}/records", headers=bearer(owner[1]))
    await http.get(f"/v1/records/{record['id']}", headers=headers)

    rows = await pool.fetch(
        "SELECT actor_id, action, target_type, target_id, ip, user_agent FROM audit_log "
        "WHERE target_id = ANY($1::uuid[]) ORDER BY id",
        [record["id"], pet["id"]],
    )
    assert [(r["actor_id"], r["action"], str(r["target_id"])) for r in rows] == [
        (vet.id, "ehr.record.create", record["id"]),
        (owner[0].id, "ehr.records.list", pet["id"]),
        (vet.id, "ehr.record.read", record["id"]),
    ]
    assert rows[0]["ip"] == "127.0.0.1" and rows[0]["user_agent"] == "pawhub-test/1"

    for statement in (
        "UPDATE audit_log SET action = 'nothing happened' WHERE target_id = $1",
        "DELETE FROM audit_log WHERE target_id = $1",
    ):
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await pool.execute(statement, record["id"])
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE target_id = $1 AND action LIKE 'ehr.%'",
            record["id"],
        )
        == 2
    )


async def test_concurrent_record_reads_share_statements_yet_each_answers_and_is_audited(
    http: httpx.AsyncClient, make_user: MakeUser, booked_visit: Visit, pool: asyncpg.Pool
) -> None:
    """Reads of several pets by callers who may and may not see them, all at once (they are
    group-committed): each caller gets its own pet's records or a 404, and the audit log holds
    exactly the reads that were answered."""
    owner, booked_vet, pet = booked_visit
    for body in (WEIGHT, NOTE):
        written = await http.post(
            f"/v1/pets/{pet['id']}/records", json=body, headers=bearer(booked_vet[1])
        )
        assert written.status_code == 201
    other_owner, other_token = await make_user(Role.owner)
    other_pet = (
        await http.post(
            "/v1/pets", json={"name": "Tom", "species": "cat"}, headers=bearer(other_token)
        )
    ).json()
    callers = [
        (owner[1], pet["id"], 200),
        (booked_vet[1], pet["id"], 200),
        (other_token, other_pet["id"], 200),
        (other_token, pet["id"], 404),
        (owner[1], other_pet["id"], 404),
    ] * 8
    responses = await asyncio.gather(
        *(
            http.get(f"/v1/pets/{pet_id}/records", headers=bearer(token))
            for token, pet_id, _ in callers
        )
    )
    assert [r.status_code for r in responses] == [status for _, _, status in callers]
    for (_, pet_id, status), response in zip(callers, responses, strict=True):
        if status == 200:
            expected = 2 if pet_id == pet["id"] else 0
            assert [r["pet_id"] for r in response.json()] == [pet_id] * expected
        else:
            assert response.headers["content-type"].startswith("application/problem+json")

    audited = await pool.fetch(
        "SELECT actor_id, target_id FROM audit_log "
        "WHERE action = 'ehr.records.list' AND target_id = ANY($1::uuid[])",
        [pet["id"], other_pet["id"]],
    )
    assert sorted((str(r["actor_id"]), str(r["target_id"])) for r in audited) == sorted(
        [(str(owner[0].id), pet["id"]), (str(booked_vet[0].id), pet["id"])] * 8
        + [(str(other_owner.id), other_pet["id"])] * 8
    )
