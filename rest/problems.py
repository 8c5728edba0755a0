"""RFC 9457 problem+json for every error, never a stack trace."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int, detail: str, *, title: str | None = None, extra: dict[str, Any] | None = None
) -> Response[dict[str, Any]]:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"https://pawhub.dev/problems/{phrase.lower().replace(' ', '-')}",
        "title": title or phrase,
        "status": status,
        "detail": detail,
        **(extra or {}),
    }
    return Response(body, status_code=status, media_type=PROBLEM_JSON)


def http_exception_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    extra = {"errors": exc.extra} if isinstance(exc, ValidationException) and exc.extra else None
    return problem(exc.status_code, str(exc.detail), extra=extra)


def unexpected_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "an unexpected error occurred; it has been logged")


exception_handlers = {
    HTTPException: http_exception_handler,
    Exception: unexpected_exception_handler,
}
