"""The connector's reported identity against its confirmed role (pure)."""

from __future__ import annotations

import pytest

from grantflow.domain.connector_identity import IdentityState, assess, role_of, same_identity

ROLE = "arn:aws:iam::111122223333:role/grantflow-connector"
SESSION = "arn:aws:sts::111122223333:assumed-role/grantflow-connector/i-0abc"
FOREIGN = "arn:aws:iam::999999999999:role/attacker-role"


@pytest.mark.parametrize(
    ("identity", "role"),
    [
        (SESSION, ROLE),
        (ROLE, ROLE),
        ("arn:aws-cn:sts::111122223333:assumed-role/r/s", "arn:aws-cn:iam::111122223333:role/r"),
        ("arn:aws:iam::111122223333:user/alice", None),
        ("arn:aws:sts::111122223333:federated-user/bob", None),
        ("not-an-arn", None),
        (None, None),
    ],
)
def test_role_of(identity: str | None, role: str | None) -> None:
    assert role_of(identity) == role


def test_sessions_of_one_role_are_the_same_identity() -> None:
    assert same_identity(SESSION, SESSION.replace("i-0abc", "i-0def"))
    assert same_identity(SESSION, ROLE)
    assert not same_identity(SESSION, FOREIGN)
    assert not same_identity("arn:aws:iam::1:user/a", "arn:aws:iam::1:user/b")


@pytest.mark.parametrize(
    ("confirmed", "reported", "state"),
    [
        (None, None, IdentityState.UNKNOWN),
        (None, SESSION, IdentityState.UNCONFIRMED),
        (None, "arn:aws:iam::111122223333:user/alice", IdentityState.UNCONFIRMED),
        (ROLE, None, IdentityState.CONFIRMED),
        (ROLE, SESSION, IdentityState.CONFIRMED),
        (ROLE, FOREIGN, IdentityState.CHANGED),
        (ROLE, "arn:aws:iam::111122223333:user/alice", IdentityState.CHANGED),
    ],
)
def test_assess(confirmed: str | None, reported: str | None, state: IdentityState) -> None:
    view = assess(confirmed, reported)
    assert view.state is state
    assert view.reported_role_arn == role_of(reported)


def test_a_changed_identity_names_both_roles_and_what_to_do() -> None:
    message = assess(ROLE, FOREIGN).message
    assert FOREIGN in message and ROLE in message and "rotate the token" in message
    assert "not an IAM role" in assess(None, "arn:aws:iam::1:user/a").message
