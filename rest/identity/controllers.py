"""Identity: register, login, refresh, the caller, and staff creation by admins."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from domain.errors import NotFound
from domain.fields import NO_NUL
from domain.identity import NewUser, Role, User, refresh_tokens
from domain.identity.login_limits import login_budgets, registration_budget
from domain.identity.permissions import may_create_users
from domain.identity.tokens import issue_access_token
from domain.identity.users import authenticate, create_user, get_user
from rest.auth import PUBLIC, SECURED, CurrentPrincipal, Db, Limits, client_ip
from rest.config import settings_of
from rest.guards import role_allows
from rest.problems import problem_responses

Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: Password
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=NO_NUL)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=NO_NUL)]


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Session(BaseModel):
    user: User
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")


def _session(user: User, state: State, refresh_token: str) -> Session:
    settings = settings_of(state)
    ttl = timedelta(seconds=settings.access_token_ttl_s)
    return Session(
        user=user,
        access_token=issue_access_token(user, settings.jwt_secret, ttl=ttl),
        refresh_token=refresh_token,
        expires_in=settings.access_token_ttl_s,
    )


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["identity"]
    opt = PUBLIC

    @post(
        "/register",
        summary="Create an owner account (rate-limited per client address)",
        responses=problem_responses(400, 409, 429),
    )
    async def register(
        self,
        db: Db,
        state: State,
        request: Request[None, None, State],
        limits: Limits,
        data: JSONBody[RegisterRequest],
    ) -> Session:
        await limits.spend(
            registration_budget(client_ip(request), state.settings.registration_limit_per_hour)
        )
        user = await create_user(
            db, NewUser(email=data.email, password=data.password, name=data.name, role=Role.owner)
        )
        token = await refresh_tokens.start_family(db, user.id)
        return _session(user, state, token)

    @post(
        "/login",
        status_code=200,
        summary="Sign in with email and password (failures lock out per email and address)",
        responses=problem_responses(400, 401, 429),
    )
    async def login(
        self,
        db: Db,
        state: State,
        request: Request[None, None, State],
        limits: Limits,
        data: JSONBody[LoginRequest],
    ) -> Session:
        attempt = await limits.spend(*login_budgets(data.email, client_ip(request)))
        user = await authenticate(db, data.email, data.password)
        if user is None:
            raise NotAuthorizedException("wrong email or password")
        await limits.refund(attempt)
        token = await refresh_tokens.start_family(db, user.id)
        return _session(user, state, token)

    @post(
        "/refresh",
        status_code=200,
        summary="Trade a refresh token for a new session (the old token is spent)",
        responses=problem_responses(400, 401),
    )
    async def refresh(self, db: Db, state: State, data: JSONBody[RefreshRequest]) -> Session:
        user, token = await refresh_tokens.rotate(db, data.refresh_token)
        return _session(user, state, token)

    @post(
        "/logout",
        status_code=204,
        summary="Sign out: revoke the refresh token's family (repeating it is harmless)",
        description="The refresh token is the credential: no access token is needed, so an app "
        "whose access token expired can still sign out. Access tokens already issued stay valid "
        "until they expire.",
        responses=problem_responses(400, 401),
    )
    async def logout(self, db: Db, data: JSONBody[RefreshRequest]) -> None:
        await refresh_tokens.revoke(db, data.refresh_token)


@get("/v1/me", tags=["identity"], security=SECURED, responses=problem_responses(401, 404))
async def me(db: Db, principal: CurrentPrincipal) -> User:
    user = await get_user(db, principal.user_id)
    if user is None:
        raise NotFound("your account no longer exists")
    return user


@post(
    "/v1/admin/users",
    tags=["identity"],
    summary="Create a user of any role (admins only)",
    security=SECURED,
    guards=[role_allows(may_create_users, "create users")],
    responses=problem_responses(400, 401, 403, 409),
)
async def create_staff(db: Db, data: JSONBody[NewUser]) -> User:
    return await create_user(db, data)
