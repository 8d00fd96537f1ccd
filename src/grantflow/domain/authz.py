"""Who may call what: one pure policy function, used by every API dependency.

Principals are what a bearer token or session resolves to; requirements are what a route
declares. ``authorize`` answers allow, or deny with the HTTP status that fits (401 when
nobody is signed in, 403 when someone is but may not).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class PrincipalKind(StrEnum):
    USER = "user"
    CONNECTOR = "connector"
    SCIM = "scim"


class Requirement(StrEnum):
    """What a route needs from its caller."""

    USER = "user"  # any signed-in, active person (member or admin)
    ADMIN = "admin"  # a person with the admin role
    CONNECTOR = "connector"  # a connector's own token, for its own resources
    SCIM = "scim"  # the SCIM provisioning token


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: str
    role: Role | None = None
    active: bool = True
    display: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    status: int = 200
    reason: str = ""


ALLOW = Decision(allowed=True)


def authorize(
    principal: Principal | None, requirement: Requirement, *, owner_id: str | None = None
) -> Decision:
    """Decide whether ``principal`` satisfies ``requirement``.

    ``owner_id`` names the connector a connector-scoped route is about; a connector may act
    only on itself.
    """
    if principal is None:
        return Decision(False, 401, "authentication required: send a bearer token")
    if not principal.active:
        return Decision(False, 401, "this account is deactivated")
    if requirement is Requirement.CONNECTOR:
        if principal.kind is not PrincipalKind.CONNECTOR:
            return Decision(False, 403, "only a connector token may call this")
        if owner_id is not None and principal.id != owner_id:
            return Decision(False, 403, "a connector may act only on its own jobs")
        return ALLOW
    if requirement is Requirement.SCIM:
        if principal.kind is not PrincipalKind.SCIM:
            return Decision(False, 403, "only the SCIM provisioning token may call this")
        return ALLOW
    if principal.kind is not PrincipalKind.USER:
        return Decision(False, 403, f"a {principal.kind.value} token cannot call this")
    if requirement is Requirement.ADMIN and principal.role is not Role.ADMIN:
        return Decision(False, 403, "the admin role is required")
    if requirement is Requirement.USER and principal.role not in (Role.ADMIN, Role.MEMBER):
        return Decision(False, 403, "no role assigned")
    return ALLOW
