"""Identity: register, login, refresh, the caller, and staff creation by admins."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from domain import refresh_tokens
from domain.errors import NotFound
from domain.fields import NO_NUL
from domain.identity import NewUser, Role, User
from domain.login_limits import LoginLimiter
from domain.permissions import may_create_users
from domain.tokens import ACCESS_TOKEN_TTL, issue_access_token
from domain.users import authenticate, create_user, get_user
from rest.auth import PUBLIC, SECURED, CurrentPrincipal, Db
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


def _session(user: User, secret: str, refresh_token: str) -> Session:
    return Session(
        user=user,
        access_token=issue_access_token(user, secret),
        refresh_token=refresh_token,
        expires_in=int(ACCESS_TOKEN_TTL.total_seconds()),
    )


def provide_login_limiter(state: State) -> LoginLimiter:
    return LoginLimiter(state.redis, state.settings.redis_namespace)


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["identity"]
    opt = PUBLIC

    @post("/register", summary="Create an owner account", responses=problem_responses(400, 409))
    async def register(self, db: Db, state: State, data: JSONBody[RegisterRequest]) -> Session:
        user = await create_user(
            db, NewUser(email=data.email, password=data.password, name=data.name, role=Role.owner)
        )
        token = await refresh_tokens.start_family(db, user.id)
        return _session(user, state.settings.jwt_secret, token)

    @post(
        "/login",
        status_code=200,
        summary="Sign in with email and password",
        dependencies={"limiter": Provide(provide_login_limiter, sync_to_thread=False)},
        responses=problem_responses(400, 401, 429),
    )
    async def login(
        self,
        db: Db,
        state: State,
        request: Request[None, None, State],
        limiter: NamedDependency[LoginLimiter],
        data: JSONBody[LoginRequest],
    ) -> Session:
        await limiter.hit(data.email, request.client.host if request.client else "unknown")
        user = await authenticate(db, data.email, data.password)
        if user is None:
            raise NotAuthorizedException("wrong email or password")
        token = await refresh_tokens.start_family(db, user.id)
        return _session(user, state.settings.jwt_secret, token)

    @post(
        "/refresh",
        status_code=200,
        summary="Trade a refresh token for a new session (the old token is spent)",
        responses=problem_responses(400, 401),
    )
    async def refresh(self, db: Db, state: State, data: JSONBody[RefreshRequest]) -> Session:
        user, token = await refresh_tokens.rotate(db, data.refresh_token)
        return _session(user, state.settings.jwt_secret, token)


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
