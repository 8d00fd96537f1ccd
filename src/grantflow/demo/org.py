"""Build a realistic AWS Organization inside a moto server, deterministically from a seed.

``build_org(endpoint, OrgShape.demo())`` creates, through boto3 against ``endpoint``: the
organization, the OU tree (see :mod:`grantflow.demo.org_shape`), the member accounts (one of
them suspended), IAM Identity Center users, groups, memberships, permission sets and a few
standing account assignments, and IAM roles, S3 buckets, EC2 instances and RDS instances and
clusters in the member accounts across the shape's regions, most with an ``owner=<group>`` tag.
It returns an :class:`~grantflow.demo.org_summary.OrgSummary` that lists all of it.

Control-plane objects are created in one thread in a fixed order, after seeding moto's own
random generator (``POST /moto-api/seed``), so organization, OU, account, user and group ids
repeat for the same seed on a fresh server. Member-account resources are created by a thread
pool; their names and tags are fixed by the seed, EC2 instance ids are not.

moto 5.2.5 behaviour this relies on or works around (found by experiment):

- ``create_organization`` makes the caller's account (``123456789012``, name ``master``,
  ``master@example.com``) the management account; a second call fails.
- ``create_account`` completes synchronously (state ``SUCCEEDED``) and creates
  ``OrganizationAccountAccessRole`` in the new account, so IAM ``list_roles`` in every member
  account returns that role too (``OrgResource.builtin``). ``close_account`` sets status
  ``SUSPENDED`` at once.
- ``sts:AssumeRole`` does not check the role; the account in the role ARN becomes the account
  of the returned credentials. Assuming into a suspended account works (real AWS refuses).
- Pagination defaults differ from AWS: ``ListAccounts`` returns up to 100 per page
  (AWS: 20), ``ListAccountsForParent`` / ``ListOrganizationalUnitsForParent`` 20.
  Pass ``MaxResults`` / ``PageSize`` to see several pages of the demo's ~31 accounts.
- An Identity Center instance exists per (account, region) as soon as sso-admin is called;
  all Identity Center and Identity Store calls are synchronous (no ``IN_PROGRESS`` states).
  ``create_account_assignment`` is not idempotent in moto (it appends duplicates) and does not
  check that the principal exists.
- The identity store ignores ``Extensions`` (the enterprise ``department`` is sent but not
  stored: read it from ``DirectoryUser.department``).
- sso-admin ``TagResource`` / ``ListTagsForResource`` answer HTTP 500 (not implemented);
  permission sets are therefore created without tags.
- ``ssm:DescribeInstanceInformation`` answers HTTP 500 (not implemented): EC2 instances have no
  SSM agent registration.
- ``run_instances`` accepts any AMI id; ``describe_images`` costs seconds per account/region.
- Every EC2 backend (one per account and region, also created by RDS calls) loads moto's ~1,300
  default AMIs with a volume and snapshot each: ~0.4 s of server CPU and ~10 MB per account and
  region. Start the server with ``MOTO_EC2_LOAD_DEFAULT_AMIS=false`` to skip that (the builder
  needs no AMIs); it is what makes large shapes feasible.
- ``AttachManagedPolicyToPermissionSet`` looks AWS managed policies up by name and ignores
  their path: it rejects ``arn:aws:iam::aws:policy/job-function/Billing`` and accepts
  ``arn:aws:iam::aws:policy/Billing``, which the builder falls back to.
- The server spends ~20 ms of CPU on every request whatever it does (dispatch, serialisation),
  so build time grows with the number of calls: about 25 per member account at the default
  20 resources.
- S3 bucket names are global across accounts, as in AWS.
- AWS managed IAM policies are not loaded (``MOTO_IAM_LOAD_MANAGED_POLICIES`` costs gigabytes);
  attaching their ARNs to permission sets works without them.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from grantflow.demo.org_clients import AccountClients, ClientFactory, OrgBuildError
from grantflow.demo.org_identity import build_identity_center
from grantflow.demo.org_plan import OrgPlan, plan_org, plan_resources
from grantflow.demo.org_resources import AccountWork, build_resources
from grantflow.demo.org_shape import ROOT_PATH, OrgShape
from grantflow.demo.org_summary import AccountStatus, OrgAccount, OrgSummary, OrgUnit

__all__ = ["OrgBuildError", "OrgShape", "OrgSummary", "build_org"]


@dataclass(frozen=True)
class _Organization:
    id: str
    management_account_id: str
    management_name: str
    management_email: str
    root_id: str


def build_org(endpoint: str, shape: OrgShape, seed: int = 7) -> OrgSummary:
    """Build the organization ``shape`` describes in the (empty) moto server at ``endpoint``."""
    endpoint = endpoint.rstrip("/")
    plan = plan_org(shape, seed)
    _seed_moto(endpoint, seed)
    factory = ClientFactory(endpoint, shape.sso_region)
    management = factory.management()
    try:
        org = _create_organization(management)
        ous = _create_ous(management, org.root_id, plan)
        accounts = _create_accounts(management, org, plan, {ou.path: ou.id for ou in ous})
        identity = build_identity_center(management, shape.sso_region, plan, accounts)
    except (ClientError, BotoCoreError, LookupError) as err:
        raise OrgBuildError(f"building the organization at {endpoint}: {err}") from err
    resources = build_resources(factory, _resource_work(shape, seed, plan, accounts), shape.workers)
    return OrgSummary(
        shape_name=shape.name,
        seed=seed,
        organization_id=org.id,
        management_account_id=org.management_account_id,
        root_id=org.root_id,
        ous=ous,
        accounts=accounts,
        excluded_ou_ids=tuple(ou.id for ou in ous if ou.path in plan.excluded_ou_paths),
        suspended_account_ids=tuple(
            account.id for account in accounts if account.status is AccountStatus.SUSPENDED
        ),
        sso_region=shape.sso_region,
        instance_arn=identity.instance_arn,
        identity_store_id=identity.identity_store_id,
        users=identity.users,
        groups=identity.groups,
        permission_sets=identity.permission_sets,
        assignments=identity.assignments,
        regions=shape.regions,
        owner_tag_key=shape.owner_tag_key,
        resources=resources,
    )


def _seed_moto(endpoint: str, seed: int) -> None:
    """Make moto's own ids (accounts, OUs, users, ...) repeatable for this seed."""
    httpx.post(f"{endpoint}/moto-api/seed", params={"a": seed}, timeout=30.0).raise_for_status()


def _create_organization(management: AccountClients) -> _Organization:
    orgs = management.client("organizations")
    organization = orgs.create_organization(FeatureSet="ALL")["Organization"]
    root_id: str = orgs.list_roots()["Roots"][0]["Id"]
    master = orgs.describe_account(AccountId=organization["MasterAccountId"])["Account"]
    return _Organization(organization["Id"], master["Id"], master["Name"], master["Email"], root_id)


def _create_ous(management: AccountClients, root_id: str, plan: OrgPlan) -> tuple[OrgUnit, ...]:
    orgs = management.client("organizations")
    ids = {ROOT_PATH: root_id}
    ous: list[OrgUnit] = []
    for path in plan.ou_paths:
        parent_path, name = path.rsplit("/", 1)
        parent_id = ids[parent_path]
        ou_id = orgs.create_organizational_unit(ParentId=parent_id, Name=name)[
            "OrganizationalUnit"
        ]["Id"]
        ids[path] = ou_id
        ous.append(OrgUnit(ou_id, name, path, parent_id))
    return tuple(ous)


def _create_accounts(
    management: AccountClients, org: _Organization, plan: OrgPlan, ou_ids: dict[str, str]
) -> tuple[OrgAccount, ...]:
    orgs = management.client("organizations")
    accounts = [
        OrgAccount(
            org.management_account_id,
            org.management_name,
            org.management_email,
            ROOT_PATH,
            org.root_id,
            AccountStatus.ACTIVE,
            management=True,
        )
    ]
    for planned in plan.accounts:
        status = orgs.create_account(
            AccountName=planned.name,
            Email=planned.email,
            Tags=[{"Key": "env", "Value": planned.env}],
        )["CreateAccountStatus"]
        if status["State"] != "SUCCEEDED":  # moto completes at once; AWS would need polling
            raise OrgBuildError(f"account {planned.name} is {status['State']}, not SUCCEEDED")
        account_id: str = status["AccountId"]
        parent_id = ou_ids[planned.ou_path]
        orgs.move_account(
            AccountId=account_id, SourceParentId=org.root_id, DestinationParentId=parent_id
        )
        if planned.suspended:
            orgs.close_account(AccountId=account_id)
        state = AccountStatus.SUSPENDED if planned.suspended else AccountStatus.ACTIVE
        accounts.append(
            OrgAccount(account_id, planned.name, planned.email, planned.ou_path, parent_id, state)
        )
    return tuple(accounts)


def _resource_work(
    shape: OrgShape, seed: int, plan: OrgPlan, accounts: tuple[OrgAccount, ...]
) -> list[AccountWork]:
    """One item per member account; suspended accounts get only their builtin role."""
    by_name = {account.name: account for account in accounts}
    work: list[AccountWork] = []
    index = 0
    for planned in plan.accounts:
        account_id = by_name[planned.name].id
        if planned.suspended:
            work.append(AccountWork(account_id, ()))
            continue
        resources = plan_resources(shape, planned, index, seed, shape.groups)
        work.append(AccountWork(account_id, resources))
        index += 1
    return work
