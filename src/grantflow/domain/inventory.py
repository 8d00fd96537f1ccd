"""What a discovery sync reports: the wire format between connector and control plane.

The connector sends one ``AccountInventory`` per account as it finishes it, then a
``SyncSummary``. Outcomes are types, not empty lists: only an account whose outcome is
``SYNCED`` — and only for the resource types listed in its ``types_read`` — may have
resources removed from the store.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

AttributeValue = str | int | float | bool | None


class AccountOutcome(StrEnum):
    SYNCED = "synced"  # every selected type read in every region
    INCOMPLETE = "incomplete"  # some types/regions could not be read (see detail)
    ACCESS_DENIED = "access_denied"  # the member role could not be assumed or read nothing
    SUSPENDED = "suspended"  # not read: the account is suspended/closed
    EXCLUDED = "excluded"  # not read: under an excluded OU (normally not even reported)


class ResourceRecord(BaseModel):
    type: str
    aws_id: str
    arn: str | None = None
    name: str = ""
    account_id: str | None = None
    region: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)


class AccountInventory(BaseModel):
    account_id: str
    name: str
    email: str | None = None
    status: str = "ACTIVE"
    ou_path: list[str] = Field(default_factory=list, description="OU ids from the root down")
    ou_names: list[str] = Field(default_factory=list)
    outcome: AccountOutcome
    detail: str | None = Field(default=None, description="Why it is not SYNCED, actionable")
    types_read: list[str] = Field(
        default_factory=list, description="Resource types read completely in this account"
    )
    resources: list[ResourceRecord] = Field(default_factory=list)
    aws_calls: int = 0


class DirectoryUser(BaseModel):
    identity_store_user_id: str
    username: str
    email: str | None = None
    display_name: str = ""
    active: bool = True
    attributes: dict[str, str] = Field(default_factory=dict)


class DirectoryGroup(BaseModel):
    identity_store_group_id: str
    name: str
    description: str = ""
    member_user_ids: list[str] = Field(
        default_factory=list, description="identity_store_user_id of each member"
    )


class DirectorySnapshot(BaseModel):
    identity_store_id: str
    instance_arn: str
    users: list[DirectoryUser]
    groups: list[DirectoryGroup]


class PermissionSetRecord(BaseModel):
    arn: str
    name: str
    description: str = ""
    managed_by_grantflow: bool = False


class SyncSummary(BaseModel):
    organization_id: str
    management_account_id: str
    root_id: str
    accounts_total: int = Field(description="Accounts in scope (not excluded)")
    accounts_by_outcome: dict[AccountOutcome, int]
    excluded_ou_ids: list[str] = Field(default_factory=list)
    excluded_accounts: int = 0
    ou_ids: list[str] | None = Field(
        default=None, description="Every OU id of the organization (None: not reported)"
    )
    resources_by_type: dict[str, int]
    aws_calls: int
    aws_calls_by_operation: dict[str, int] = Field(default_factory=dict)
    duration_seconds: float
    directory: DirectorySnapshot | None = None
    permission_sets: list[PermissionSetRecord] = Field(default_factory=list)
    management_resources: AccountInventory | None = Field(
        default=None, description="Management-scope resources (accounts, IC groups)"
    )
