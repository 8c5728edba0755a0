import os
import subprocess
import sys
from pathlib import Path

import pytest

from pawhub.hub import POOL
from pawhub.settings import Settings, SettingsError
from tests.conftest import start_hub

PRODUCTION_READY = {
    "pawhub_env": "production",
    "database_url": "postgresql://db/pawhub",
    "redis_url": "redis://cache:6379/0",
    "jwt_secret": "j" * 48,
    "stripe_api_key": "sk_live_x",
    "stripe_webhook_secret": "whsec_x",
    "turn_secret": "t" * 32,
}


def make(**overrides: object) -> Settings:
    return Settings(_env_file=None, **{**PRODUCTION_READY, **overrides})  # type: ignore[arg-type, call-arg]


def test_production_with_real_secrets_starts() -> None:
    make().check_production()


@pytest.mark.parametrize(
    "name", ["jwt_secret", "stripe_api_key", "stripe_webhook_secret", "turn_secret"]
)
def test_production_refuses_a_development_secret_naming_it(name: str) -> None:
    settings = make(**{name: Settings.model_fields[name].default})
    with pytest.raises(SettingsError, match=name.upper()):
        settings.check_production()


@pytest.mark.parametrize("name", ["database_url", "redis_url"])
def test_production_refuses_a_missing_service_url(name: str) -> None:
    with pytest.raises(SettingsError, match=name.upper()):
        make(**{name: None}).check_production()


def test_development_defaults_are_accepted_outside_production() -> None:
    Settings(_env_file=None).check_production()  # type: ignore[call-arg]


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURN_URLS", "turn:a.example:3478, turns:b.example:5349")
    monkeypatch.setenv("CHAT_RATE_LIMIT", "0")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.turn_urls == ["turn:a.example:3478", "turns:b.example:5349"]
    assert settings.chat_rate_limit == 0


def development(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[arg-type, call-arg]


@pytest.mark.parametrize(
    "database_url",
    [
        "postgresql://db.example:5432/pawhub",
        "postgresql://10.0.0.5/pawhub",
        "postgresql://[2001:db8::1]:5432/pawhub",
        "postgresql://127.0.0.1,db.example/pawhub",
        "postgresql://pawhub@/pawhub?host=db.example",
        "postgresql://localhost.example.com/pawhub",
    ],
)
@pytest.mark.parametrize("environment", ["development", "production"])
def test_the_dev_jwt_secret_is_refused_next_to_a_remote_database(
    database_url: str, environment: str
) -> None:
    settings = development(database_url=database_url, pawhub_env=environment)
    refusal = (
        r"^JWT_SECRET is missing or a development default"  # production refuses every one
        if environment == "production"
        else r"^JWT_SECRET .*DATABASE_URL is not on loopback"
    )
    with pytest.raises(SettingsError, match=refusal):
        settings.check_production()


@pytest.mark.parametrize(
    "database_url",
    [
        None,  # `pawhub up` with embedded servers
        "postgresql://postgres@127.0.0.1:5432/test",  # CI
        "postgresql://127.0.0.2/pawhub",
        "postgresql://localhost/pawhub",
        "postgresql://[::1]:5432/pawhub",
        "postgresql:///pawhub",
        "postgresql://%2Fvar%2Frun%2Fpostgresql/pawhub",
        "postgresql://pawhub@/pawhub?host=/var/run/postgresql",
    ],
)
def test_the_dev_jwt_secret_is_fine_with_a_database_on_loopback(
    database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGHOST", raising=False)
    development(database_url=database_url).check_production()


def test_a_real_jwt_secret_may_use_a_remote_database() -> None:
    development(database_url="postgresql://db.example/pawhub", jwt_secret="j" * 48).check_secrets()


def test_an_unset_host_means_pghost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "db.example")
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        development(database_url="postgresql:///pawhub").check_secrets()


def test_trusted_proxies_are_read_as_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert [str(network) for network in settings.trusted_proxies] == ["10.0.0.0/8", "192.0.2.7/32"]
    monkeypatch.delenv("TRUSTED_PROXIES")
    assert Settings(_env_file=None).trusted_proxies == []  # type: ignore[call-arg]


@pytest.mark.parametrize("service", ["hub", "api"])
def test_services_refuse_the_dev_jwt_secret_before_connecting(service: str, tmp_path: Path) -> None:
    unset = {"JWT_SECRET", "PAWHUB_ENV", "PGHOST"}
    env = {name: value for name, value in os.environ.items() if name not in unset}
    env |= {
        "DATABASE_URL": "postgresql://db.example:5432/x",
        "REDIS_URL": "redis://cache.example:6379/0",
        "PAWHUB_ENV": "development",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pawhub", service, "--port", "0"],
        env=env,
        cwd=tmp_path,  # no .env file
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "pawhub: error: JWT_SECRET is the development default but DATABASE_URL is not on "
        "loopback; set a real JWT_SECRET"
    ]


async def test_the_pool_size_bounds_a_hubs_connections_and_reaches_its_children(
    settings: Settings,
) -> None:
    small = settings.model_copy(update={"database_pool_size": 3})
    assert Settings(_env_file=None, **small.child_environment()).database_pool_size == 3  # type: ignore[call-arg]
    runner, _ = await start_hub(small)
    try:
        assert runner.app[POOL].get_max_size() == 3
    finally:
        await runner.cleanup()
