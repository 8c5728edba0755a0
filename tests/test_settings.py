import pytest

from pawhub.settings import Settings, SettingsError

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
    return Settings(_env_file=None, **{**PRODUCTION_READY, **overrides})  # type: ignore[arg-type]


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
