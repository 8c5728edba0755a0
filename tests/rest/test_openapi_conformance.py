"""Schemathesis against the live API with a valid token of each role: no 5xx, and every
status, content type and body matches the OpenAPI document."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deploy.embedded import free_port
from domain.identity import NewUser, Role
from domain.identity.tokens import issue_access_token
from domain.identity.users import create_user
from pawhub.api import create_app
from pawhub.settings import Settings
from tests.rest.conftest import bearer

EXAMPLES_PER_OPERATION = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live_api(settings: Settings) -> Iterator[str]:
    """The API in a thread of its own: schemathesis calls it synchronously from the test."""
    # A Redis namespace of its own, so fuzzed logins never rate-limit the other tests.
    isolated = settings.model_copy(
        update={"redis_namespace": f"{settings.redis_namespace}-schemathesis"}
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(isolated), host="127.0.0.1", port=port, log_config=None, lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # uvicorn offers no event to wait on
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


def _headers_for(database_url: str, settings: Settings, role: Role) -> dict[str, str]:
    async def make() -> str:
        conn = await asyncpg.connect(database_url)
        try:
            user = await create_user(
                conn,
                NewUser(
                    email=f"fuzz-{uuid4().hex[:12]}@example.com",
                    password="fuzz-password",
                    name=f"Fuzzing {role}",
                    role=role,
                ),
            )
        finally:
            await conn.close()
        return issue_access_token(user, settings.jwt_secret)

    return bearer(asyncio.run(make()))


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    statuses: Counter[int],
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)
        statuses[response.status_code] += 1

    run()


@pytest.mark.parametrize("role", [Role.owner, Role.vet, Role.admin])
def test_every_operation_conforms(
    live_api: str, database_url: str, settings: Settings, role: Role
) -> None:
    headers = _headers_for(database_url, settings, role)
    schema = schemathesis.openapi.from_url(f"{live_api}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures: dict[str, str] = {}
    statuses: Counter[int] = Counter()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, live_api, headers, statuses)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to break in a parameterless call
            except Exception as exc:  # collect every operation's failure, then report them all
                failures[f"{operation.label} ({mode})"] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}: {error}" for label, error in failures.items())
    # The fuzzing reached the handlers: some calls succeeded, some were refused as bad input.
    assert statuses[200] and statuses[400], statuses
