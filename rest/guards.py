"""Guards: role rules from domain.identity.permissions applied before a handler runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from domain.identity import Role
from domain.identity.tokens import Principal


def role_allows(rule: Callable[[Role], bool], action: str) -> Guard:
    """A guard refusing (403) callers whose role `rule` does not allow to `action`."""

    def guard(connection: ASGIConnection[Any, Principal, Any, Any], _: BaseRouteHandler) -> None:
        if not rule(connection.user.role):
            raise PermissionDeniedException(f"your role may not {action}")

    return guard
