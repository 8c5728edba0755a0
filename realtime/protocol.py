"""Acknowledgements and errors of the Socket.IO contract, and the `@event` handler decorator.

Every event a client emits is answered with `{ok: true, ...}` or
`{ok: false, error: {code, message}}`. A handler lets a domain rule's refusal (`domain.errors`)
go by, answered with the code of its kind (`refusal`), or raises `EventError` for what only the
transport refuses; nothing a client sends can drop its connection or reach another client when
it is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from domain import errors

Ack = dict[str, Any]


class ErrorCode(StrEnum):
    invalid = "invalid"
    unauthorized = "unauthorized"
    forbidden = "forbidden"
    not_found = "not_found"
    conflict = "conflict"
    too_large = "too_large"
    rate_limited = "rate_limited"
    consent_required = "consent_required"
    unavailable = "unavailable"


class EventError(Exception):
    """Refuse an event with one of the contract's error codes."""

    def __init__(self, code: ErrorCode, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def ack(self) -> Ack:
        return {
            "ok": False,
            "error": {"code": self.code.value, "message": self.message},
            **self.extra,
        }


# Each kind of domain error answers with one code; its message is the ack's.
_CODES: dict[type[errors.DomainError], ErrorCode] = {
    errors.NotFound: ErrorCode.not_found,
    errors.Unauthorized: ErrorCode.unauthorized,
    errors.Forbidden: ErrorCode.forbidden,
    errors.Conflict: ErrorCode.conflict,
    errors.ConsentRequired: ErrorCode.consent_required,
    errors.Invalid: ErrorCode.invalid,
    errors.TooLarge: ErrorCode.too_large,
    errors.RateLimited: ErrorCode.rate_limited,
    errors.Unavailable: ErrorCode.unavailable,
}


def refusal(error: Exception) -> EventError | None:
    """The error ack of a refusal: an EventError as it is, a domain error with the code of its
    nearest kind and its own message; None for anything else (a failure, not a refusal)."""
    if isinstance(error, EventError):
        return error
    if not isinstance(error, errors.DomainError):
        return None
    kind = next((kind for kind in type(error).__mro__ if kind in _CODES), None)
    return None if kind is None else EventError(_CODES[kind], str(error), **error.details)


def ok(**fields: Any) -> Ack:
    return {"ok": True, **fields}


class Payload(BaseModel):
    """Base of event payloads: strict about what is there, tolerant of fields it does not know."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("text may not contain NUL characters")
        return value


P = TypeVar("P", bound=Payload)
Handler = Callable[[Any, str, P], Awaitable[Ack]]


def event(name: str, payload: type[P]) -> Callable[[Handler[P]], Handler[P]]:
    """Mark a namespace method as the handler of `name`, taking a validated `payload`."""

    def mark(handler: Handler[P]) -> Handler[P]:
        handler._event = (name, payload)  # type: ignore[attr-defined]
        return handler

    return mark


def parse(payload_type: type[P], raw: object) -> P:
    try:
        return payload_type.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise EventError(ErrorCode.invalid, f"{where}: {first['msg']}") from exc
