"""Which AWS role a connector runs as: what it reports, what an admin confirmed, and how the
two compare.

A connector's heartbeat says which AWS identity it runs as. That is the connector's own
statement: whoever holds its token can send any ARN. So the CloudFormation template trusts
only a *confirmed* role (set by an admin, or by the operator's setting for the managed
connector); a reported role that differs from it is shown as a warning and never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class IdentityState(StrEnum):
    UNKNOWN = "unknown"  # nothing reported, nothing confirmed
    UNCONFIRMED = "unconfirmed"  # reported, not confirmed: the template has no role yet
    CONFIRMED = "confirmed"  # confirmed, and the report (if any) names the same role
    CHANGED = "changed"  # confirmed, but the connector reports another identity


def role_of(identity_arn: str | None) -> str | None:
    """``arn:aws:sts::A:assumed-role/R/s`` → ``arn:aws:iam::A:role/R``; IAM role ARNs as is;
    anything else (an IAM user, a federated user, garbage) → None."""
    if not identity_arn:
        return None
    parts = identity_arn.split(":", 5)
    if len(parts) != 6:
        return None
    _, partition, service, _, account, resource = parts
    if service == "iam" and resource.startswith("role/"):
        return identity_arn
    if service == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        return f"arn:{partition}:iam::{account}:role/{role}"
    return None


def same_identity(a: str | None, b: str | None) -> bool:
    """Two reported identities are the same when they name the same role (the session name
    of an assumed role changes with every session); other identities compare as given."""
    return (role_of(a) or a) == (role_of(b) or b)


@dataclass(frozen=True, slots=True)
class IdentityView:
    state: IdentityState
    reported_role_arn: str | None
    message: str


def assess(confirmed_role_arn: str | None, reported_identity_arn: str | None) -> IdentityView:
    """The connector's identity as an admin should read it, with what to do next."""
    reported = role_of(reported_identity_arn)
    if confirmed_role_arn is None:
        if reported_identity_arn is None:
            return IdentityView(
                IdentityState.UNKNOWN,
                None,
                "No role is confirmed and the connector has not reported an identity yet: "
                "start it, or confirm the IAM role it runs as.",
            )
        if reported is None:
            what = (
                f"The connector reports {reported_identity_arn}, which is not an IAM role: run "
                "it with an IAM role (instance profile, IRSA or an assumed role), then confirm "
                "that role."
            )
        else:
            what = (
                f"The connector reports that it runs as {reported}. The template uses no role "
                "until an admin confirms one: confirm it if that role is yours."
            )
        return IdentityView(IdentityState.UNCONFIRMED, reported, what)
    if reported_identity_arn is None or reported == confirmed_role_arn:
        return IdentityView(
            IdentityState.CONFIRMED, reported, f"The template trusts {confirmed_role_arn}."
        )
    return IdentityView(
        IdentityState.CHANGED,
        reported,
        f"The connector now reports {reported or reported_identity_arn}, but the confirmed "
        f"role is {confirmed_role_arn}; the template keeps {confirmed_role_arn}. If you moved "
        "the connector to the new role, confirm it; if not, its token may be in other hands: "
        "rotate the token.",
    )
