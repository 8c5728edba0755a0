"""deploy/docker-compose.yml, offline (no Docker engine runs here): the Compose Specification's
JSON schema, and that it cannot drift from pawhub's settings, nginx's upstreams or its own
example environment file.

compose-spec.json is the schema of github.com/compose-spec/compose-spec, schema/compose-spec.json
at commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6 (2026-06-23; Apache-2.0), vendored unchanged.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy.loadbalancer import NGINX_CONF
from pawhub.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
SECRET_SETTINGS = {
    "JWT_SECRET",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "TURN_SECRET",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def pawhub_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the pawhub image (built from deploy/Dockerfile)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def interpolate(value: str, environment: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, kind, text = match.groups()
        if environment.get(name):
            return environment[name]
        assert kind != "?", f"${{{name}}} is required: {text}"
        return text if kind == "-" else ""

    return INTERPOLATION.sub(substitute, value)


def test_the_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(compose))
    assert errors == [], [f"{list(error.path)}: {error.message}" for error in errors]


def test_the_schema_does_reject_a_mistake(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["helthcheck"] = broken["services"]["nginx"]["healthcheck"]
    broken["services"]["redis"]["depends_on"] = {"postgres": {"condition": "started"}}
    errors = {
        tuple(error.path): error.message
        for error in jsonschema.Draft7Validator(SCHEMA).iter_errors(broken)
    }
    assert errors.keys() == {("services", "api"), ("services", "redis", "depends_on")}
    assert "'helthcheck' does not match" in errors["services", "api"]


def test_every_variable_given_to_pawhub_is_a_setting(compose: dict[str, Any]) -> None:
    settings = {name.upper() for name in Settings.model_fields}
    services = pawhub_services(compose)
    assert set(services) == {"migrate", "hub-1", "hub-2", "api", "worker"}
    for name, service in services.items():
        unknown = set(service["environment"]) - settings
        assert not unknown, f"{name} sets variables pawhub does not read: {unknown}"


def test_secrets_come_only_from_the_environment(compose: dict[str, Any]) -> None:
    for name, service in pawhub_services(compose).items():
        environment = service["environment"]
        for setting in SECRET_SETTINGS:
            assert re.fullmatch(rf"\$\{{{setting}:\?[^}}]+\}}", environment[setting]), (
                name,
                setting,
            )
        assert re.fullmatch(
            r"postgresql://pawhub:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432/pawhub",
            environment["DATABASE_URL"],
        )


def test_the_example_environment_names_every_required_variable_and_holds_no_value(
    compose: dict[str, Any],
) -> None:
    required = {
        match.group(1)
        for match in INTERPOLATION.finditer(COMPOSE.read_text())
        if match.group(2) == "?"
    }
    assignments = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(assignments)
    assert set(assignments.values()) == {""}


def test_the_environment_is_a_valid_production_configuration(compose: dict[str, Any]) -> None:
    secrets = {name: f"{name.lower()}-{'x' * 32}" for name in SECRET_SETTINGS}
    secrets["POSTGRES_PASSWORD"] = "pg-password"
    environment = {
        name: interpolate(value, secrets)
        for name, value in compose["services"]["api"]["environment"].items()
    }
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in environment.items()})  # type: ignore[call-arg, arg-type]
    settings.check_production()
    assert settings.is_production
    assert settings.database_url == "postgresql://pawhub:pg-password@postgres:5432/pawhub"
    assert settings.turn_urls == [
        "turn:127.0.0.1:3478?transport=udp",
        "turn:127.0.0.1:3478?transport=tcp",
    ]
    assert str(settings.s3_endpoint_url) == "http://minio:9000"


def test_the_api_trusts_forwarded_addresses_from_nginx_alone(compose: dict[str, Any]) -> None:
    nginx_address = compose["services"]["nginx"]["networks"]["frontend"]["ipv4_address"]
    subnet = compose["networks"]["frontend"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(nginx_address) in ipaddress.ip_network(subnet)
    for service in pawhub_services(compose).values():
        assert service["environment"]["TRUSTED_PROXIES"] == nginx_address


def test_nginx_balances_over_exactly_the_hub_services(compose: dict[str, Any]) -> None:
    config = NGINX_CONF.read_text()
    upstream = re.search(r"upstream pawhub_hubs \{(.*?)\}", config, re.S)
    assert upstream is not None
    servers = re.findall(r"server (\S+):(\d+) ", upstream.group(1))
    hubs = {
        name
        for name, service in pawhub_services(compose).items()
        if service["build"]["target"] == "hub"
    }
    assert {host for host, _ in servers} == hubs == {"hub-1", "hub-2"}
    assert {port for _, port in servers} == {"8080"}
    assert re.search(r"upstream pawhub_api \{\s*server api:8000 ", config)
    assert compose["services"]["nginx"]["volumes"] == [
        "./nginx/nginx.conf:/etc/nginx/nginx.conf:ro"
    ]
    assert set(compose["services"]["nginx"]["depends_on"]) == hubs | {"api"}


def test_everything_waits_for_the_migration_and_images_are_pinned(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["pawhub", "migrate"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name, service in pawhub_services(compose).items():
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {
                "condition": "service_completed_successfully"
            }, name
    assert {service["build"]["target"] for service in pawhub_services(compose).values()} == {
        "hub",
        "api",
        "worker",
    }
    for name, service in services.items():
        if "build" not in service:
            assert re.search(r":[^:]*\d", service["image"]), f"{name}: {service['image']}"
    for name in ("postgres", "redis", "minio", "nginx"):
        assert "healthcheck" in services[name], name
