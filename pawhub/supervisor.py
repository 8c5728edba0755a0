"""`pawhub up`: embedded services where no URL is set, migrations, then the hub and the API.

Everything it starts is its own child; SIGINT or SIGTERM stops the services in order (the hub and
the API first, then Redis, S3 and PostgreSQL), and a child that dies brings the rest down too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from deploy.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedS3,
    EmbeddedServer,
    spawn,
    stop_process,
)
from pawhub.demo import DemoClinic, DemoUnavailable, seed_demo, welcome
from pawhub.resources import migrate_database
from pawhub.settings import Settings

log = logging.getLogger("pawhub.up")

Apps = list[tuple[str, subprocess.Popen[bytes]]]


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived."""


@dataclass
class Supervisor:
    settings: Settings
    host: str
    hub_port: int
    api_port: int
    demo: bool = True
    embedded: list[EmbeddedServer] = field(default_factory=list)

    def run(self) -> int:
        def request_stop(signum: int, _: FrameType | None) -> None:
            raise StopRequested(signal.Signals(signum).name)

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        env = dict(os.environ)
        apps: Apps = []
        try:
            env.update(self._start_embedded())
            applied = asyncio.run(migrate_database(env["DATABASE_URL"]))
            log.info("migrations: %s", ", ".join(applied) if applied else "up to date")
            env.update(self._pages_environment())
            clinic = self._seed_demo(env["DATABASE_URL"])
            python = [sys.executable, "-m", "pawhub"]
            apps = [
                (name, spawn(python + argv, log_path=None, env=env))
                for name, argv in (
                    ("hub", ["hub", "--host", self.host, "--port", str(self.hub_port)]),
                    ("api", ["api", "--host", self.host, "--port", str(self.api_port)]),
                    ("moderation worker", ["moderation", "worker"]),
                )
            ]
            self._wait_healthy(apps)
            log.info(
                "pawhub is up: hub http://%s:%d  api http://%s:%d  (Ctrl-C stops)",
                self.host,
                self.hub_port,
                self.host,
                self.api_port,
            )
            if clinic is not None:
                print(welcome(clinic, self._url(self.hub_port)), flush=True)
            return self._watch(apps)
        except StopRequested as stop:
            log.info("%s received, stopping", stop)
            return 0
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self._stop(apps)

    def _start_embedded(self) -> dict[str, str]:
        data_dir = Path(self.settings.data_dir).resolve()
        urls: dict[str, str] = {}
        wanted: list[tuple[str, str | None, EmbeddedPostgres | EmbeddedRedis | EmbeddedS3]] = [
            ("DATABASE_URL", self.settings.database_url, EmbeddedPostgres(data_dir)),
            ("REDIS_URL", self.settings.redis_url, EmbeddedRedis(data_dir)),
            ("S3_ENDPOINT_URL", self.settings.s3_endpoint_url, EmbeddedS3(data_dir)),
        ]
        for variable, configured, embedded in wanted:
            if configured:
                urls[variable] = configured
                continue
            server = embedded.start()
            self.embedded.append(server)
            urls[variable] = server.url
            log.info("embedded %s at %s (data in %s)", server.name, server.url, data_dir)
        return urls

    def _url(self, port: int) -> str:
        return f"http://{self.host}:{port}"

    def _pages_environment(self) -> dict[str, str]:
        """The pages under the hub's /app/ call the API: unless configured, tell the hub where
        the API is and let the API answer the hub's origin."""
        configured = self.settings.model_fields_set
        env = {}
        if "public_api_url" not in configured:
            env["PUBLIC_API_URL"] = self._url(self.api_port)
        if "cors_allowed_origins" not in configured:
            hub = self._url(self.hub_port)
            env["CORS_ALLOWED_ORIGINS"] = f"{hub},http://localhost:{self.hub_port}"
        return env

    def _seed_demo(self, database_url: str) -> DemoClinic | None:
        """The demo clinic, in development only and unless --no-demo."""
        if not self.demo or self.settings.is_production:
            return None
        try:
            return asyncio.run(seed_demo(database_url))
        except DemoUnavailable as exc:
            log.warning("%s", exc)
            return None

    def _wait_healthy(self, apps: Apps, timeout: float = 90) -> None:
        pending = {name: port for name, port in (("hub", self.hub_port), ("api", self.api_port))}
        deadline = time.monotonic() + timeout
        while pending:
            self._check_alive(apps)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{', '.join(pending)} not healthy within {timeout:.0f} s")
            for name, port in list(pending.items()):
                if _healthy(f"http://{self.host}:{port}/healthz"):
                    del pending[name]
            time.sleep(0.2)

    def _watch(self, apps: Apps) -> int:
        while True:
            self._check_alive(apps)
            time.sleep(0.5)

    @staticmethod
    def _check_alive(apps: Apps) -> None:
        for name, proc in apps:
            code = proc.poll()
            if code is not None:
                raise RuntimeError(f"the {name} exited with status {code}")

    def _stop(self, apps: Apps) -> None:
        for _, proc in apps:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in apps:
            stop_process(proc, signal.SIGTERM, 15)
        for server in reversed(self.embedded):
            server.stop()
            log.info("stopped embedded %s", server.name)
        self.embedded.clear()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
