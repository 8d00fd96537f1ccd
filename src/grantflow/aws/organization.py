"""Walk the AWS Organization from its root, with the management role.

The walk lists OUs (``ListOrganizationalUnitsForParent``) and accounts
(``ListAccountsForParent``) parent by parent, depth first from the root, and never enters an
excluded OU: neither it nor anything below it (nested OUs, their accounts) is listed. Each
account keeps its OU path from the root (ids and names). ``ListAccounts`` is called once only
to count how many accounts the exclusions left out.

An account whose ``Status``/``State`` says it is suspended or closing is still reported (as
``AccountOutcome.SUSPENDED``) but is never read through the member role. Every account also
becomes a resource of type ``aws-account`` (see :func:`transform_account_record`), read from
the management account only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore import xform_name

from grantflow.aws.discovery.scope import Raw, tag_dict, translated
from grantflow.aws.session import ClientFactory
from grantflow.domain.inventory import ResourceRecord

ACCOUNT_TYPE_KEY = "aws-account"
ROOT_NAME = "Root"
# Status (ACTIVE | SUSPENDED | PENDING_CLOSURE) and the newer State field (which adds CLOSED
# and PENDING_ACTIVATION). moto 5.2.5 sets both to SUSPENDED for a closed account.
INACTIVE_STATES = frozenset({"SUSPENDED", "PENDING_CLOSURE", "CLOSED"})


@dataclass(frozen=True)
class OrgAccountInfo:
    """One account in scope (not under an excluded OU)."""

    id: str
    arn: str
    name: str
    email: str
    status: str
    ou_ids: tuple[str, ...]  # from the root down, root id first, the parent last
    ou_names: tuple[str, ...]  # names matching ou_ids ("Root", "Workloads", ...)
    management: bool = False

    @property
    def suspended(self) -> bool:
        return self.status in INACTIVE_STATES

    @property
    def ou_path(self) -> str:
        return "/".join(self.ou_names)


@dataclass(frozen=True)
class OrganizationWalk:
    organization_id: str
    management_account_id: str
    root_id: str
    accounts: tuple[OrgAccountInfo, ...]  # in scope, depth-first order
    excluded_ou_ids: tuple[str, ...]  # the excluded OUs the walk met (and did not enter)
    accounts_in_organization: int  # every account, excluded ones included
    ou_ids: tuple[str, ...] = ()  # every OU of the organization, excluded subtrees included

    def unknown_ou_ids(self, wanted: Sequence[str]) -> list[str]:
        """The ids in ``wanted`` that name no OU of the organization."""
        known = set(self.ou_ids)
        return [ou for ou in wanted if ou not in known]

    @property
    def excluded_accounts(self) -> int:
        return self.accounts_in_organization - len(self.accounts)


@dataclass(frozen=True)
class _Parent:
    id: str
    ou_ids: tuple[str, ...]
    ou_names: tuple[str, ...]


def _pages(client: Any, operation: str, page_size: int | None, **params: object) -> Iterator[Raw]:
    config = {"PaginationConfig": {"PageSize": page_size}} if page_size else {}
    pages: Iterator[Raw] = client.get_paginator(operation).paginate(**params, **config)
    return pages


def describe_organization(factory: ClientFactory) -> Raw:
    orgs: Any = factory.client("organizations")
    with translated("organizations:DescribeOrganization", factory.role_arn):
        found: Raw = orgs.describe_organization()["Organization"]
    return found


def get_roots(factory: ClientFactory, page_size: int | None = None) -> list[Raw]:
    orgs: Any = factory.client("organizations")
    with translated("organizations:ListRoots", factory.role_arn):
        return [root for page in _pages(orgs, "list_roots", page_size) for root in page["Roots"]]


def _children(
    factory: ClientFactory, operation: str, key: str, parent_id: str, page_size: int | None
) -> list[Raw]:
    """Every item ``key`` of the ``…ForParent`` listing ``operation`` under ``parent_id``."""
    orgs: Any = factory.client("organizations")
    pages = _pages(orgs, xform_name(operation), page_size, ParentId=parent_id)
    with translated(f"organizations:{operation}", factory.role_arn):
        return [item for page in pages for item in page[key]]


def get_child_ous(
    factory: ClientFactory, parent_id: str, page_size: int | None = None
) -> list[Raw]:
    operation = "ListOrganizationalUnitsForParent"
    return _children(factory, operation, "OrganizationalUnits", parent_id, page_size)


def get_accounts_for_parent(
    factory: ClientFactory, parent_id: str, page_size: int | None = None
) -> list[Raw]:
    return _children(factory, "ListAccountsForParent", "Accounts", parent_id, page_size)


def count_accounts(factory: ClientFactory, page_size: int | None = None) -> int:
    orgs: Any = factory.client("organizations")
    with translated("organizations:ListAccounts", factory.role_arn):
        return sum(len(page["Accounts"]) for page in _pages(orgs, "list_accounts", page_size))


def get_account_tags(factory: ClientFactory, account_id: str) -> list[Raw]:
    """Paginated, but without a page size: AWS offers no MaxResults for this call."""
    orgs: Any = factory.client("organizations")
    pages = _pages(orgs, "list_tags_for_resource", None, ResourceId=account_id)
    with translated("organizations:ListTagsForResource", factory.role_arn):
        return [tag for page in pages for tag in page["Tags"]]


def transform_account(raw: Raw, parent: _Parent, management_account_id: str) -> OrgAccountInfo:
    state = str(raw.get("State") or "")
    status = state if state in INACTIVE_STATES else str(raw.get("Status") or state or "ACTIVE")
    return OrgAccountInfo(
        id=str(raw["Id"]),
        arn=str(raw["Arn"]),
        name=str(raw.get("Name", "")),
        email=str(raw.get("Email", "")),
        status=status,
        ou_ids=parent.ou_ids,
        ou_names=parent.ou_names,
        management=raw["Id"] == management_account_id,
    )


def transform_account_record(account: OrgAccountInfo, tags: Iterable[Raw]) -> ResourceRecord:
    return ResourceRecord(
        type=ACCOUNT_TYPE_KEY,
        aws_id=account.id,
        arn=account.arn,
        name=account.name,
        account_id=account.id,
        region=None,
        tags=tag_dict(list(tags)),
        attributes={
            "email": account.email,
            "status": account.status,
            "ou_path": account.ou_path,
            "ou_ids": "/".join(account.ou_ids),
            "parent_id": account.ou_ids[-1] if account.ou_ids else None,
            "management": account.management,
        },
    )


def walk_organization(
    factory: ClientFactory, excluded_ou_ids: Sequence[str] = (), page_size: int | None = None
) -> OrganizationWalk:
    """Describe the organization and list every account outside the excluded OUs.

    Raises the translated :class:`~grantflow.aws.errors.AwsError` (``NotFound`` when the
    account is not in an organization).
    """
    organization = describe_organization(factory)
    management_id = str(organization["MasterAccountId"])
    root = get_roots(factory, page_size)[0]
    excluded = frozenset(excluded_ou_ids)
    met: list[str] = []
    seen: list[str] = []
    accounts: list[OrgAccountInfo] = []
    stack = [_Parent(str(root["Id"]), (str(root["Id"]),), (str(root.get("Name") or ROOT_NAME),))]
    while stack:
        parent = stack.pop()
        accounts.extend(
            transform_account(raw, parent, management_id)
            for raw in get_accounts_for_parent(factory, parent.id, page_size)
        )
        children: list[_Parent] = []
        for ou in get_child_ous(factory, parent.id, page_size):
            ou_id = str(ou["Id"])
            seen.append(ou_id)
            if ou_id in excluded:
                met.append(ou_id)  # neither the OU nor anything below it is read
                continue
            children.append(
                _Parent(ou_id, (*parent.ou_ids, ou_id), (*parent.ou_names, str(ou["Name"])))
            )
        stack.extend(reversed(children))  # depth first, in AWS's order
    if excluded - set(seen):  # perhaps nested in an excluded OU: list those OUs' ids only
        for ou_id in met:
            seen.extend(_ou_ids_below(factory, ou_id, page_size))
    return OrganizationWalk(
        organization_id=str(organization["Id"]),
        management_account_id=management_id,
        root_id=str(root["Id"]),
        accounts=tuple(accounts),
        excluded_ou_ids=tuple(met),
        accounts_in_organization=count_accounts(factory, page_size),
        ou_ids=tuple(seen),
    )


def _ou_ids_below(factory: ClientFactory, ou_id: str, page_size: int | None) -> list[str]:
    """The ids of the OUs nested under ``ou_id`` (only their ids: nothing else is read)."""
    found: list[str] = []
    stack = [ou_id]
    while stack:
        for child in get_child_ous(factory, stack.pop(), page_size):
            found.append(str(child["Id"]))
            stack.append(str(child["Id"]))
    return found
