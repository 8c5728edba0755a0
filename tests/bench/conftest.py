"""Benchmark smoke fixtures: the test run's PostgreSQL and Redis as the bench tools' services,
and the check that a run's report files hold what it returned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.chat.servers import Services
from pawhub.settings import Settings

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def services(settings: Settings) -> Services:
    return Services(
        database_url=settings.database_url or "",
        redis_url=settings.redis_url or "",
        redis_namespace=settings.redis_namespace,
        jwt_secret=settings.jwt_secret,
    )


def assert_report_files(document: dict[str, Any], json_path: Path, png_path: Path) -> None:
    assert json.loads(json_path.read_text()) == document
    assert png_path.read_bytes().startswith(PNG_SIGNATURE)
