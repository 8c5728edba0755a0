"""Identity over HTTP: sessions, refresh rotation, token checks, login limits, staff creation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import jwt

from domain.identity import Role, User
from pawhub.settings import Settings
from tests.rest.conftest import MakeUser, bearer


def new_email() -> str:
    return f"{uuid4().hex[:12]}@example.com"


async def register(http: httpx.AsyncClient, email: str) -> httpx.Response:
    return await http.post(
        "/v1/auth/register", json={"email": email, "password": "hunter2hunter2", "name": "Ann"}
    )


async def test_register_login_and_me(http: httpx.AsyncClient) -> None:
    email = new_email()
    registered = await register(http, email)
    assert registered.status_code == 201
    body = registered.json()
    assert body["user"]["email"] == email and body["user"]["role"] == "owner"
    assert body["access_token"] and body["refresh_token"]

    login = await http.post("/v1/auth/login", json={"email": email, "password": "hunter2hunter2"})
    assert login.status_code == 200
    me = await http.get("/v1/me", headers=bearer(login.json()["access_token"]))
    assert me.status_code == 200
    assert me.json() == body["user"]


async def test_register_cannot_choose_a_role_or_reuse_an_email(http: httpx.AsyncClient) -> None:
    email = new_email()
    escalate = await http.post(
        "/v1/auth/register",
        json={"email": email, "password": "hunter2hunter2", "name": "Eve", "role": "admin"},
    )
    assert escalate.status_code == 400
    assert (await register(http, email)).status_code == 201
    again = await register(http, email.upper())
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")


async def test_wrong_password_is_401(http: httpx.AsyncClient) -> None:
    email = new_email()
    await register(http, email)
    wrong = await http.post("/v1/auth/login", json={"email": email, "password": "not-it-at-all"})
    assert wrong.status_code == 401
    unknown = await http.post(
        "/v1/auth/login", json={"email": new_email(), "password": "hunter2hunter2"}
    )
    assert unknown.status_code == 401


async def test_refresh_rotates_and_reuse_revokes_the_family(http: httpx.AsyncClient) -> None:
    first = (await register(http, new_email())).json()["refresh_token"]
    rotated = await http.post("/v1/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    assert (await http.get("/v1/me", headers=bearer(rotated.json()["access_token"]))).is_success

    replayed = await http.post("/v1/auth/refresh", json={"refresh_token": first})
    assert replayed.status_code == 401
    # The thief replayed the old token: the legitimate successor is revoked with its family.
    after = await http.post("/v1/auth/refresh", json={"refresh_token": second})
    assert after.status_code == 401


async def test_garbage_refresh_tokens_are_401(http: httpx.AsyncClient) -> None:
    for token in ["nope", f"{uuid4()}.secret", "x" * 200]:
        response = await http.post("/v1/auth/refresh", json={"refresh_token": token})
        assert response.status_code == 401, token


def _claims(user: User, **overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": str(user.id),
        "name": user.name,
        "role": "admin",
        "typ": "access",
        "iss": "pawhub",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    return {**claims, **overrides}


async def test_forged_expired_and_alg_none_tokens_are_401(
    http: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user, valid = await make_user(Role.owner)
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    bad_tokens = {
        "forged": jwt.encode(_claims(user), "another-secret-" * 3, algorithm="HS256"),
        "expired": jwt.encode(
            _claims(user, iat=long_ago, exp=long_ago + timedelta(minutes=15)),
            settings.jwt_secret,
            algorithm="HS256",
        ),
        "alg none": jwt.encode(_claims(user), None, algorithm="none"),
        "refresh typ": jwt.encode(_claims(user, typ="refresh"), settings.jwt_secret, "HS256"),
        "tampered": valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB"),
    }
    for name, token in bad_tokens.items():
        response = await http.get("/v1/me", headers=bearer(token))
        assert response.status_code == 401, name
        assert response.json()["status"] == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert (await http.get("/v1/me", headers={"Authorization": valid})).status_code == 401
    assert (await http.get("/v1/me", headers=bearer(valid))).status_code == 200


async def test_login_attempts_are_limited_per_email(http: httpx.AsyncClient) -> None:
    email = new_email()
    await register(http, email)
    statuses = [
        (await http.post("/v1/auth/login", json={"email": email, "password": "wrong-wrong"}))
        for _ in range(10)
    ]
    assert {response.status_code for response in statuses} == {401}
    limited = await http.post("/v1/auth/login", json={"email": email, "password": "hunter2hunter2"})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["status"] == 429


async def test_only_admins_create_staff(http: httpx.AsyncClient, make_user: MakeUser) -> None:
    _, admin_token = await make_user(Role.admin)
    _, owner_token = await make_user(Role.owner)
    staff = {"email": new_email(), "password": "vet-password", "name": "Dr. New", "role": "vet"}
    refused = await http.post("/v1/admin/users", json=staff, headers=bearer(owner_token))
    assert refused.status_code == 403
    created = await http.post("/v1/admin/users", json=staff, headers=bearer(admin_token))
    assert created.status_code == 201
    assert created.json()["role"] == "vet"
    login = await http.post(
        "/v1/auth/login", json={"email": staff["email"], "password": "vet-password"}
    )
    assert login.json()["user"]["role"] == "vet"
