"""Assertions on the API's RFC 9457 answers."""

from __future__ import annotations

from typing import Any

import httpx


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json document of a `status` answer."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body
