"""Write a permission set's session cuts into its inline policy and provision it.

:func:`apply_cuts` makes Grantflow's cut statements in the permission set's inline policy
exactly those of the cuts it is given (``grantflow.domain.session_cuts``), keeping every other
statement, then provisions the set to the accounts whose cuts were added or lifted, so the
IAM role there carries the change. It is idempotent: run again, it finds the policy as wanted
and provisions again (a crash between the write and the provisioning is repaired by the
retry). A permission set that no longer exists has no role and no sessions left: reported,
nothing to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from grantflow.aws import identity_center as ic_api
from grantflow.aws.errors import NotFound
from grantflow.aws.grants import GrantSettings
from grantflow.aws.identity_center import IdentityCenter
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.aws.session import ClientFactory
from grantflow.domain import session_cuts as cuts
from grantflow.domain.session_cuts import CutEntry


class CutStatus(StrEnum):
    APPLIED = "applied"  # the policy holds exactly the wanted cuts, provisioned
    PERMISSION_SET_GONE = "permission-set-gone"  # deleted: its roles and sessions are gone


@dataclass(frozen=True)
class CutOutcome:
    status: CutStatus
    changed: bool = False  # the inline policy had to be written
    session_seconds: int = cuts.DEFAULT_SESSION_SECONDS
    statements: int = 0
    policy_chars: int = 0
    coalesced: bool = False
    provisioned: tuple[str, ...] = ()


def _session_seconds(ic: IdentityCenter, permission_set_arn: str) -> int:
    described = ic.sso("DescribePermissionSet", PermissionSetArn=permission_set_arn)
    return cuts.session_seconds(described["PermissionSet"].get("SessionDuration"))


def _write(ic: IdentityCenter, permission_set_arn: str, policy: str | None) -> None:
    if policy is None:
        ic.sso("DeleteInlinePolicyFromPermissionSet", PermissionSetArn=permission_set_arn)
    else:
        ic_api.put_inline_policy(ic, permission_set_arn, policy)


def apply_cuts(
    ic: IdentityCenter,
    permission_set_arn: str,
    entries: Iterable[CutEntry],
    accounts: Iterable[str],
    *,
    always_provision: bool = True,
) -> CutOutcome:
    """Put exactly ``entries`` as the set's cut statements; provision to ``accounts``.

    Raises :class:`~grantflow.domain.session_cuts.PolicyTooLarge` (nothing written) when
    the cuts do not fit, and ``PolicyUnreadable`` when the existing policy is not JSON."""
    try:
        seconds = _session_seconds(ic, permission_set_arn)
        current = ic_api.get_inline_policy(ic, permission_set_arn)
        merged = cuts.merge(current, entries)
        changed = not _same(current, merged.policy)
        if changed:
            _write(ic, permission_set_arn, merged.policy)
        provisioned = tuple(sorted(set(accounts))) if changed or always_provision else ()
        for account in provisioned:
            ic_api.provision_permission_set(ic, permission_set_arn, account)
    except NotFound:
        return CutOutcome(CutStatus.PERMISSION_SET_GONE)
    return CutOutcome(
        CutStatus.APPLIED,
        changed=changed,
        session_seconds=seconds,
        statements=len(cuts.statements(merged.entries)),
        policy_chars=merged.size,
        coalesced=merged.coalesced,
        provisioned=provisioned,
    )


def _same(current: str, wanted: str | None) -> bool:
    if wanted is None:
        return not current.strip()
    try:
        return cuts.canonical(json.loads(current)) == cuts.canonical(json.loads(wanted))
    except ValueError:
        return False


def read_cut_statements(ic: IdentityCenter, permission_set_arn: str) -> list[cuts.Statement]:
    """Grantflow's cut statements as they are in AWS now ([] when the set is gone)."""
    try:
        return cuts.cut_statements_of(ic_api.get_inline_policy(ic, permission_set_arn))
    except NotFound:
        return []


def entries_of(payload: Mapping[str, Any]) -> list[CutEntry]:
    """The cuts a ``session_cuts`` job carries."""
    return [
        CutEntry(
            account_id=str(c["account_id"]),
            not_before=datetime.fromisoformat(str(c["not_before"])),
            user_name=str(c["user_name"]),
        )
        for c in payload.get("cuts", [])
    ]


def run_job(
    factory: ClientFactory,
    payload: Mapping[str, Any],
    limiter: IdentityCenterLimiter,
    settings: GrantSettings,
) -> dict[str, Any]:
    """The connector's ``session_cuts`` job: the set's cuts made exactly the payload's."""
    ic = IdentityCenter(
        factory=factory,
        instance_arn=str(payload["instance_arn"]),
        region=payload.get("identity_center_region"),
        limiter=limiter,
        waiter=settings.waiter,
        cache=settings.cache,
    )
    outcome = apply_cuts(
        ic,
        str(payload["permission_set_arn"]),
        entries_of(payload),
        [str(a) for a in payload.get("accounts", [])],
        always_provision=payload.get("provision", "always") == "always",
    )
    result = asdict(outcome)
    result["status"] = outcome.status.value
    result["provisioned"] = list(outcome.provisioned)
    return result
