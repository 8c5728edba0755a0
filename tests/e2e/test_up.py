"""`pawhub up` as a newcomer runs it: no service URLs, embedded servers, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from deploy.embedded import free_port

pytestmark = pytest.mark.slow

SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT_URL")


def bare_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}


def status_of(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except OSError:
        return None


def test_up_serves_both_services_and_stops_every_child(tmp_path: Path) -> None:
    hub_port, api_port = free_port(), free_port()
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pawhub",
            "up",
            "--hub-port",
            str(hub_port),
            "--api-port",
            str(api_port),
        ],
        cwd=tmp_path,
        env=bare_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and up.poll() is None:
            if (
                status_of(f"http://127.0.0.1:{hub_port}/healthz") == 200
                and status_of(f"http://127.0.0.1:{api_port}/healthz") == 200
            ):
                break
            time.sleep(0.5)
        assert status_of(f"http://127.0.0.1:{hub_port}/healthz") == 200
        assert status_of(f"http://127.0.0.1:{api_port}/healthz") == 200
        assert (tmp_path / ".pawhub" / "postgres" / "PG_VERSION").exists()

        children = psutil.Process(up.pid).children(recursive=True)
        names = {child.name() for child in children}
        assert {"postgres", "redis-server"} <= names
        assert len(children) >= 5  # postgres, redis, moto, hub, api at the least

        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
        time.sleep(0.5)
        alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert alive == []
    finally:
        if up.poll() is None:
            up.kill()
        output = up.stdout.read().decode() if up.stdout else ""
        print(output)


def test_up_with_a_bad_database_url_fails_in_one_line(tmp_path: Path) -> None:
    env = {**bare_environment(), "DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/x"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pawhub",
            "up",
            "--hub-port",
            str(free_port()),
            "--api-port",
            str(free_port()),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("pawhub: error: cannot use the database at 127.0.0.1:")
    assert "Traceback" not in result.stderr


def test_production_with_a_development_secret_refuses_to_start(tmp_path: Path) -> None:
    env = {
        **bare_environment(),
        "PAWHUB_ENV": "production",
        "DATABASE_URL": "postgresql://db/x",
        "REDIS_URL": "redis://cache:6379/0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pawhub", "hub"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "pawhub: error: JWT_SECRET is missing or a development default; "
        "set a real secret when PAWHUB_ENV=production"
    ]
