"""Account budgets: failed logins per (email, client IP) and per IP, registrations per IP.

A login attempt is counted before the password is checked (so parallel guesses cannot slip
past the count) and refunded when it succeeds: only failures lock out. The lockout is per
(email, IP) pair, so a stranger guessing at a known email from their own address cannot lock
its owner out; the looser per-IP ceiling slows credential stuffing across many emails.
Emails are hashed in the keys so Redis never holds addresses. One attempt spends both budgets
in one script, so on a Redis Cluster their keys must share a slot: both carry the hash tag
`{<digest of the address subject>}`, a digest because a tag must be non-empty and brace-free
while `address_subject` passes an unparsable address through as it came.
"""

from __future__ import annotations

import hashlib

from domain.rate_limits import Budget, address_subject

FAILED_LOGINS_PER_PAIR = 10
FAILED_LOGINS_PER_IP = 100
LOGIN_WINDOW_S = 15 * 60
REGISTRATION_WINDOW_S = 60 * 60

_LOGIN_REFUSAL = "too many failed logins; try again later"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def login_budgets(
    email: str,
    ip: str,
    *,
    per_pair: int = FAILED_LOGINS_PER_PAIR,
    per_ip: int = FAILED_LOGINS_PER_IP,
    window_s: int = LOGIN_WINDOW_S,
) -> tuple[Budget, Budget]:
    """The budgets one login attempt for `email` from `ip` spends."""
    tag = "login:{" + _digest(address_subject(ip)) + "}"
    email_digest = _digest(email.strip().lower())
    return (
        Budget(f"{tag}:pair:{email_digest}", per_pair, window_s, _LOGIN_REFUSAL),
        Budget(f"{tag}:ip", per_ip, window_s, _LOGIN_REFUSAL),
    )


def registration_budget(ip: str, per_hour: int) -> Budget:
    """Every registration attempt from `ip` counts, taken email or not: registering is also a
    way to probe which emails exist."""
    return Budget(
        f"register:ip:{address_subject(ip)}",
        per_hour,
        REGISTRATION_WINDOW_S,
        "too many registrations from your address; try again later",
    )
