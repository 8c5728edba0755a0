"""The hub's skeleton over real sockets: health, metrics, and authentication at connect."""

from pathlib import Path

import aiohttp
import pytest
import socketio

from deploy.embedded import EmbeddedPostgres, EmbeddedRedis
from domain.identity import Role
from pawhub.resources import migrate_database
from pawhub.settings import Settings
from tests.conftest import start_hub


async def get_json(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json()


async def test_healthz_reports_postgres_and_redis(hub_url: str) -> None:
    status, body = await get_json(hub_url + "/healthz")
    assert status == 200
    assert body == {"status": "ok", "checks": {"postgresql": "ok", "redis": "ok"}}


async def test_metrics_speak_prometheus(hub_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(hub_url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "process_resident_memory_bytes" in await response.text()


async def test_a_valid_token_connects(hub_url: str, make_user) -> None:  # type: ignore[no-untyped-def]
    _, token = await make_user(Role.owner)
    client = socketio.AsyncClient()
    await client.connect(
        hub_url, auth={"token": token}, namespaces=["/", "/chat"], transports=["websocket"]
    )
    assert client.connected
    assert client.get_sid("/chat") is not None
    await client.disconnect()


@pytest.mark.parametrize("auth", [None, {}, {"token": "forged.jwt.value"}, {"token": 7}])
@pytest.mark.parametrize("namespace", ["/", "/chat"])
async def test_a_missing_or_forged_token_is_refused(
    hub_url: str, auth: dict[str, object] | None, namespace: str
) -> None:
    client = socketio.AsyncClient()
    errors: list[object] = []
    client.on("connect_error", errors.append, namespace=namespace)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            hub_url, auth=auth, namespaces=[namespace], transports=["websocket"], wait_timeout=5
        )
    assert not client.connected
    assert errors == [{"message": "unauthorized"}]


async def test_healthz_names_a_dependency_that_went_down(
    settings: Settings, tmp_path: Path
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg").start()
    redis = EmbeddedRedis(tmp_path / "redis").start()
    await migrate_database(postgres.url)
    own = settings.model_copy(update={"database_url": postgres.url, "redis_url": redis.url})
    runner, url = await start_hub(own)
    try:
        assert (await get_json(url + "/healthz"))[0] == 200
        redis.stop()
        status, body = await get_json(url + "/healthz")
        assert status == 503
        assert body["status"] == "unavailable"
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert checks["postgresql"] == "ok"
        assert "Error" in checks["redis"]
        postgres.stop()
        status, body = await get_json(url + "/healthz")
        assert status == 503
        assert isinstance(body["checks"], dict)
        assert body["checks"]["postgresql"] != "ok"
    finally:
        await runner.cleanup()
        redis.stop()
        postgres.stop()
