"""The shipped nginx configuration (deploy/nginx/nginx.conf), pointed at replicas on loopback.

Compose names its services (hub-1, hub-2, api); the tests and the chaos suite run the same
file against hub and API processes on 127.0.0.1, so only the upstream `server` lines, the
`listen` line and the pid file change: every other directive is the one that ships.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

NGINX_CONF = Path(__file__).parent / "nginx" / "nginx.conf"

_HUB_UPSTREAM = re.compile(r"(upstream pawhub_hubs \{.*?)(?:\n\s*server \S+ ([^;\n]*);)+", re.S)
_API_SERVER = re.compile(r"(upstream pawhub_api \{\s*server )\S+( [^;\n]*;)", re.S)
_LISTEN = re.compile(r"^(\s*listen )\d+( .*;)$", re.M)
_PID = re.compile(r"^pid \S+;$", re.M)


class NginxConfigError(ValueError):
    """The shipped configuration no longer has the shape this module rewrites."""


def _substitute(pattern: re.Pattern[str], replacement: str, text: str, what: str) -> str:
    result, count = pattern.subn(replacement, text)
    if count != 1:
        raise NginxConfigError(f"{NGINX_CONF}: expected one {what}, found {count}")
    return result


def loopback_config(
    *, hub_ports: Sequence[int], api_port: int, listen_port: int, pid_file: Path
) -> str:
    """The shipped config balancing over hubs on 127.0.0.1:`hub_ports` (each server keeping
    the shipped parameters), its API upstream at 127.0.0.1:`api_port`, listening on
    127.0.0.1:`listen_port`."""
    if not hub_ports:
        raise ValueError("at least one hub port is needed")
    text = NGINX_CONF.read_text()
    hub_match = _HUB_UPSTREAM.search(text)
    if hub_match is None:
        raise NginxConfigError(f"{NGINX_CONF}: no `upstream pawhub_hubs` with server lines")
    parameters = hub_match.group(2)
    servers = "".join(f"\n        server 127.0.0.1:{port} {parameters};" for port in hub_ports)
    text = text[: hub_match.start()] + hub_match.group(1) + servers + text[hub_match.end() :]
    text = _substitute(_API_SERVER, rf"\g<1>127.0.0.1:{api_port}\g<2>", text, "API server")
    text = _substitute(_LISTEN, rf"\g<1>127.0.0.1:{listen_port}\g<2>", text, "listen line")
    return _substitute(_PID, f"pid {pid_file};", text, "pid line")
