"""RFC 9457 problem+json for every error, never a stack trace, and its OpenAPI description."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import stripe
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from pydantic import BaseModel, ValidationError

from domain.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[dict[str, Any]]:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"https://pawhub.dev/problems/{phrase.lower().replace(' ', '-')}",
        "title": title or phrase,
        "status": status,
        "detail": detail,
        **(extra or {}),
    }
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problems an operation may answer."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=HTTPStatus(status).description or HTTPStatus(status).phrase,
            generate_examples=False,
        )
        for status in statuses
    }


def _errors(extra: object) -> list[dict[str, Any]] | None:
    if isinstance(extra, dict):
        return [extra]
    if isinstance(extra, list) and all(isinstance(item, dict) for item in extra):
        return extra
    return None


def http_exception_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    errors = _errors(exc.extra) if isinstance(exc, ValidationException) else None
    return problem(
        exc.status_code,
        str(exc.detail),
        extra={"errors": errors} if errors else None,
        headers=exc.headers,
    )


def validation_error_handler(_: Request[Any, Any, Any], exc: ValidationError) -> Response[Any]:
    """Domain-level validation (an amendment's data against its record's kind) is bad input."""
    errors = [
        {"message": error["msg"], "key": ".".join(map(str, error["loc"]))} for error in exc.errors()
    ]
    return problem(400, "Validation failed", extra={"errors": errors})


def _status(status: int) -> Callable[[Request[Any, Any, Any], Exception], Response[Any]]:
    def handler(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        return problem(status, str(exc))

    return handler


def rate_limited_handler(_: Request[Any, Any, Any], exc: RateLimited) -> Response[Any]:
    return problem(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})


def payment_provider_handler(_: Request[Any, Any, Any], exc: stripe.StripeError) -> Response[Any]:
    # Stripe refused or failed (e.g. cancelling an intent that just succeeded): not our 500.
    log.warning("Stripe refused a call: %s", exc.user_message or exc)
    return problem(502, f"the payment provider refused: {exc.user_message or 'see the logs'}")


def unexpected_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "an unexpected error occurred; it has been logged")


# Domain errors by kind: Litestar picks the handler of the nearest class in an error's MRO
# (the hub's acks use the same kinds: `realtime.protocol.refusal`).
exception_handlers = {
    HTTPException: http_exception_handler,
    ValidationError: validation_error_handler,
    NotFound: _status(404),
    Unauthorized: _status(401),
    Forbidden: _status(403),
    Conflict: _status(409),
    Invalid: _status(422),
    TooLarge: _status(413),
    RateLimited: rate_limited_handler,
    Unavailable: _status(503),
    stripe.StripeError: payment_provider_handler,
    Exception: unexpected_exception_handler,
}
