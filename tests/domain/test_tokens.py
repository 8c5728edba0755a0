from datetime import UTC, datetime, timedelta
from uuid import uuid4

import jwt
import pytest

from domain.identity import Role, User
from domain.identity.tokens import InvalidToken, issue_access_token, verify_access_token

SECRET = "s" * 40
USER = User(id=uuid4(), email="vet@example.com", name="Dr. Vet", role=Role.vet)


def test_a_token_speaks_for_its_user() -> None:
    principal = verify_access_token(issue_access_token(USER, SECRET), SECRET)
    assert (principal.user_id, principal.name, principal.role) == (USER.id, USER.name, Role.vet)


@pytest.mark.parametrize("token", [None, "", 42, "not-a-jwt", {"token": "x"}])
def test_garbage_is_refused(token: object) -> None:
    with pytest.raises(InvalidToken):
        verify_access_token(token, SECRET)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(InvalidToken):
        verify_access_token(issue_access_token(USER, "x" * 40), SECRET)


def test_an_expired_token_is_refused() -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    with pytest.raises(InvalidToken):
        verify_access_token(issue_access_token(USER, SECRET, now=long_ago), SECRET)


def _claims(role: str, typ: str) -> dict[str, object]:
    """A token's claims for USER, valid for five more minutes."""
    now = datetime.now(UTC)
    return {
        "sub": str(USER.id),
        "name": "x",
        "role": role,
        "typ": typ,
        "iss": "pawhub",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }


def test_alg_none_is_refused() -> None:
    with pytest.raises(InvalidToken):
        verify_access_token(jwt.encode(_claims("admin", "access"), None, algorithm="none"), SECRET)


def test_a_token_of_another_type_is_refused() -> None:
    refresh = _claims("owner", "refresh")
    with pytest.raises(InvalidToken):
        verify_access_token(jwt.encode(refresh, SECRET, algorithm="HS256"), SECRET)


def test_a_remembered_token_still_expires() -> None:
    issued = datetime.now(UTC) - timedelta(minutes=14)
    token = issue_access_token(USER, SECRET, now=issued)
    assert verify_access_token(token, SECRET).user_id == USER.id  # verified and remembered
    with pytest.raises(InvalidToken, match="expired"):
        verify_access_token(token, SECRET, now=issued + timedelta(minutes=15, seconds=1))
    with pytest.raises(InvalidToken):
        verify_access_token(token, "another secret that is long enough to be used")
