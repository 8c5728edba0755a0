"""TURN credentials (coturn's REST API, `use-auth-secret`) and the join ack's `ice_servers`.

coturn accepts a username `<expiry unix time>:<user id>` whose password is
base64(HMAC-SHA1(secret, username)), until the expiry passes. The hub and coturn share only
the secret, so credentials need no storage and no call to coturn.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict

DEFAULT_TTL_S = 3600

_STUN_SCHEMES = ("stun:", "stuns:")
_TURN_SCHEMES = ("turn:", "turns:")


class IceServer(TypedDict):
    """One entry of `ice_servers`, shaped like the browser's `RTCIceServer`."""

    urls: list[str]
    username: NotRequired[str]
    credential: NotRequired[str]


@dataclass(frozen=True)
class TurnCredential:
    username: str
    credential: str
    expires_at: int


@dataclass(frozen=True)
class TurnServers:
    """TURN_URLS and TURN_SECRET, which the composition root reads from the settings."""

    urls: tuple[str, ...]
    secret: str

    def ice_servers(self, user_id: str) -> list[IceServer]:
        return ice_servers(self.urls, self.secret, user_id)


def turn_credential(
    turn_secret: str, user_id: str, *, ttl: int = DEFAULT_TTL_S, now: float | None = None
) -> TurnCredential:
    """Return a credential coturn accepts for `ttl` seconds from `now` (default: the clock)."""
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    expires_at = int(time.time() if now is None else now) + ttl
    username = f"{expires_at}:{user_id}"
    digest = hmac.new(turn_secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), expires_at)


def ice_servers(
    turn_urls: Sequence[str],
    turn_secret: str,
    user_id: str,
    *,
    ttl: int = DEFAULT_TTL_S,
    now: float | None = None,
) -> list[IceServer]:
    """Build `ice_servers` from TURN_URLS: STUN URLs in one entry without credentials, TURN
    URLs in one entry sharing a fresh credential for `user_id`. Unknown schemes raise
    ValueError; no URLs give an empty list (host candidates only)."""
    stun: list[str] = []
    turn: list[str] = []
    for url in turn_urls:
        if url.startswith(_STUN_SCHEMES):
            stun.append(url)
        elif url.startswith(_TURN_SCHEMES):
            turn.append(url)
        else:
            raise ValueError(f"not a stun: or turn: URL: {url!r}")
    servers: list[IceServer] = []
    if stun:
        servers.append({"urls": stun})
    if turn:
        credential = turn_credential(turn_secret, user_id, ttl=ttl, now=now)
        servers.append(
            {"urls": turn, "username": credential.username, "credential": credential.credential}
        )
    return servers
