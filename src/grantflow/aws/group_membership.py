"""Identity Store group memberships, idempotent both ways.

Only ``ResourceNotFoundException`` from GetGroupMembershipId means "not a member"; any other
error (access denied, throttling) propagates, so a failed read never looks like absence.
"""

from __future__ import annotations

from typing import Any

from grantflow.aws.errors import Conflict, NotFound
from grantflow.aws.identity_center import IdentityCenter

SERVICE = "identitystore"


def _call(ic: IdentityCenter, operation: str, group_id: str, user_id: str) -> dict[str, Any]:
    """``operation`` on ``user_id``'s membership of ``group_id``."""
    member = {"UserId": user_id}
    return ic.call(SERVICE, operation, IdentityStoreId=ic.identity_store_id, GroupId=group_id,
                   MemberId=member)  # fmt: skip


def membership_id(ic: IdentityCenter, group_id: str, user_id: str) -> str | None:
    """The id of ``user_id``'s membership of ``group_id``, or None when not a member."""
    try:
        found = _call(ic, "GetGroupMembershipId", group_id, user_id)
    except NotFound:
        return None
    return str(found["MembershipId"])


def create_membership(ic: IdentityCenter, group_id: str, user_id: str) -> str:
    """Make ``user_id`` a member of ``group_id``; returns the membership id (existing or new)."""
    existing = membership_id(ic, group_id, user_id)
    if existing is not None:
        return existing
    try:
        created = _call(ic, "CreateGroupMembership", group_id, user_id)
    except Conflict:  # became a member between the read and the write
        raced = membership_id(ic, group_id, user_id)
        if raced is None:
            raise
        return raced
    return str(created["MembershipId"])


def delete_membership(ic: IdentityCenter, membership: str) -> bool:
    """Delete the membership; False when it was already gone."""
    try:
        ic.call(
            SERVICE,
            "DeleteGroupMembership",
            IdentityStoreId=ic.identity_store_id,
            MembershipId=membership,
        )
    except NotFound:
        return False
    return True
