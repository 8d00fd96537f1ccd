"""What deleting or disabling a flow or an integration did to the requests it allowed
(services.policy_withdrawal), as the API answers it, and the ``revoke_live`` option."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from grantflow.services.access.policy_withdrawal import Withdrawal

RevokeLive = Annotated[
    bool,
    Query(
        description="Also end the live grants it allowed, through the normal revocation "
        "(revoke jobs, retried until AWS confirms); without it they keep their access until "
        "they expire and the answer says how to revoke them"
    ),
]


class WithdrawalPublic(BaseModel):
    failed_requests: list[str] = Field(
        description="Pending or approved requests it allowed: now failed, with the reason"
    )
    revoking_requests: list[str] = Field(description="Live requests now being revoked")
    live_requests: list[str] = Field(
        description="Live requests left holding access until they expire"
    )
    live_grants: int = Field(description="Grants of live_requests holding access")
    message: str = Field(description="What happened, and how to revoke what is left")


def withdrawal_public(withdrawal: Withdrawal, again: str | None) -> WithdrawalPublic:
    return WithdrawalPublic(
        failed_requests=list(withdrawal.failed),
        revoking_requests=list(withdrawal.revoking),
        live_requests=list(withdrawal.live),
        live_grants=withdrawal.live_grants,
        message=withdrawal.advice(again),
    )
