"""Which CloudTrail events were made with which grant (pure, no I/O).

An Identity Center user who signs in to an account with a permission set acts through an IAM
role named ``AWSReservedSSO_<permission set name>_<16 hex>`` in that account, in a role session
named after their Identity Store user name (usually their email). CloudTrail records it as::

    "userIdentity": {"type": "AssumedRole",
                     "principalId": "AROA…:jane@example.com",
                     "arn": "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_ReadOnly_0123456789abcdef/jane@example.com",
                     "accountId": "111122223333",
                     "sessionContext": {"sessionIssuer": {"type": "Role",
                                        "userName": "AWSReservedSSO_ReadOnly_0123456789abcdef", …}}}

A grant matches an event when the account, the permission set (an account assignment's, or the
pooled ``Grantflow-…`` one), the session name and the time window all agree.
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SSO_ROLE_PREFIX = "AWSReservedSSO_"


class GrantMatcher(BaseModel):
    """What identifies one grant's sessions; sent by the control plane to the connector."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    grant_id: str
    account_id: str = Field(pattern=r"^[0-9]{12}$")
    permission_set_name: str = Field(min_length=1)
    session_names: tuple[str, ...] = Field(min_length=1)  # compared case-insensitively
    start: datetime
    end: datetime | None = None  # None: still live

    def covers(self, when: datetime) -> bool:
        return self.start <= when and (self.end is None or when <= self.end)


class TrailEvent(BaseModel):
    """The parts of a CloudTrail record the session audit keeps (plus the record itself)."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    event_time: datetime
    event_source: str
    event_name: str
    error_code: str | None
    account_id: str
    source_ip: str | None
    role_name: str
    session_name: str
    raw: dict[str, Any]


def permission_set_of_role(role_name: str) -> str | None:
    """``AWSReservedSSO_<permission set>_<suffix>`` → the permission set name (which may itself
    contain underscores), else None."""
    if not role_name.startswith(SSO_ROLE_PREFIX):
        return None
    name, sep, suffix = role_name[len(SSO_ROLE_PREFIX) :].rpartition("_")
    return name if sep and name and suffix else None


def _session_name(identity: Mapping[str, Any]) -> str | None:
    arn = str(identity.get("arn") or "")
    if ":assumed-role/" in arn:
        parts = arn.split(":assumed-role/", 1)[1].split("/", 1)
        if len(parts) == 2 and parts[1]:
            return parts[1]
    principal = str(identity.get("principalId") or "")
    return principal.split(":", 1)[1] if ":" in principal else None


def _role_name(identity: Mapping[str, Any]) -> str | None:
    context = identity.get("sessionContext")
    issuer = context.get("sessionIssuer") if isinstance(context, Mapping) else None
    if isinstance(issuer, Mapping) and issuer.get("userName"):
        return str(issuer["userName"])
    arn = str(identity.get("arn") or "")
    if ":assumed-role/" in arn:
        return arn.split(":assumed-role/", 1)[1].split("/", 1)[0] or None
    return None


def parse_record(record: Mapping[str, Any]) -> TrailEvent | None:
    """A role-session event from an Identity Center role; None for anything else."""
    identity = record.get("userIdentity")
    if not isinstance(identity, Mapping) or identity.get("type") != "AssumedRole":
        return None
    role, session = _role_name(identity), _session_name(identity)
    account = identity.get("accountId") or record.get("recipientAccountId")
    if not role or not session or not account or not record.get("eventID"):
        return None
    if permission_set_of_role(role) is None:
        return None
    try:
        when = datetime.fromisoformat(str(record["eventTime"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return TrailEvent(
        event_id=str(record["eventID"]), event_time=when,
        event_source=str(record.get("eventSource") or ""),
        event_name=str(record.get("eventName") or ""),
        error_code=str(record["errorCode"]) if record.get("errorCode") else None,
        account_id=str(account), source_ip=_str_or_none(record.get("sourceIPAddress")),
        role_name=role, session_name=session, raw=dict(record),
    )  # fmt: skip


def _str_or_none(value: object) -> str | None:
    return str(value) if value else None


class MatcherIndex:
    """Matchers indexed by (account, permission set, session name) for one pass over a file."""

    def __init__(self, matchers: Iterable[GrantMatcher]) -> None:
        self._by_key: dict[tuple[str, str, str], list[GrantMatcher]] = {}
        for m in matchers:
            for name in m.session_names:
                key = (m.account_id, m.permission_set_name, name.lower())
                self._by_key.setdefault(key, []).append(m)

    def match(self, event: TrailEvent) -> str | None:
        """The grant the event was made with; of overlapping grants of the same access, the
        one that began last before the event."""
        permission_set = permission_set_of_role(event.role_name)
        if permission_set is None:
            return None
        key = (event.account_id, permission_set, event.session_name.lower())
        covering = [m for m in self._by_key.get(key, ()) if m.covers(event.event_time)]
        if not covering:
            return None
        return max(covering, key=lambda m: (m.start, m.grant_id)).grant_id
