"""Media tests run aiortc peers on 127.0.0.1 only."""

from __future__ import annotations

import aioice.ice
import pytest

from tests.janus_process import janus  # noqa: F401 (a real Janus)


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gather host candidates on 127.0.0.1 alone (aioice skips loopback by default)."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
