"""Debian's nginx running the shipped configuration (deploy/nginx/nginx.conf) on loopback, in
front of replicas the test started: for the deploy tests and the multi-process e2e tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from deploy.embedded import free_port
from deploy.loadbalancer import loopback_config

NGINX = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")


def nginx_command(prefix: Path, config: Path) -> list[str]:
    """nginx with its prefix (relative paths, temp files) in `prefix`, logging to stderr."""
    assert NGINX, "nginx is missing: `make system-deps` installs Debian's package"
    return [NGINX, "-p", str(prefix), "-e", "stderr", "-c", str(config)]


def write_config(directory: Path, hub_ports: Sequence[int], api_port: int) -> tuple[Path, int]:
    listen_port = free_port()
    config = directory / "nginx.conf"
    config.write_text(
        loopback_config(
            hub_ports=hub_ports,
            api_port=api_port,
            listen_port=listen_port,
            pid_file=directory / "nginx.pid",
        )
    )
    return config, listen_port


@contextlib.contextmanager
def running_nginx(directory: Path, hub_ports: Sequence[int], api_port: int) -> Iterator[str]:
    """nginx in the foreground with the shipped config on loopback; its base URL."""
    config, listen_port = write_config(directory, hub_ports, api_port)
    with (directory / "error.log").open("ab") as errors:
        process = subprocess.Popen(
            [*nginx_command(directory, config), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        deadline = time.monotonic() + 10
        while not _accepts(listen_port):
            assert process.poll() is None, (directory / "error.log").read_text()
            assert time.monotonic() < deadline, "nginx did not listen within 10 s"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{listen_port}"
    finally:
        process.terminate()
        process.wait(10)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
