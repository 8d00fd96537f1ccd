"""A discovery sync of the small emulated organization, against the moto server.

The organization is built once for this module (see conftest.py); each test runs its own
sync, or shares the module's full sync, and compares sets of tuples with the OrgSummary.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass

import pytest

from grantflow.aws import cloudformation, registry
from grantflow.aws.session import ClientFactory
from grantflow.demo.org_summary import OrgSummary
from grantflow.domain.inventory import AccountOutcome
from tests.aws.sync.faults import (
    FaultInjectingFactory,
    MemberFault,
    assume_role_denied,
    ec2_unauthorized,
    inject,
    record_assumed_roles,
)
from tests.aws.sync.helpers import (
    FAST,
    MANAGEMENT_ROLE_ARN,
    SyncRun,
    connector_factory,
    demo_type,
    expected_member_keys,
    found_member_keys,
    options_for,
    run,
)

MEMBER_SERVICES = frozenset({"iam", "s3", "ec2", "ssm", "rds"})
# The failure tests read fewer types than the full sync: the emulator is slow under load.
TYPES = ["aws-account", "iam-role", "ec2-instance"]


@dataclass(frozen=True)
class FullSync:
    org: OrgSummary
    run: SyncRun
    connector: ClientFactory


@pytest.fixture(scope="module")
def full(shared_small_org: OrgSummary) -> FullSync:
    connector = connector_factory()
    return FullSync(shared_small_org, run(connector, options_for(shared_small_org)), connector)


def _in_scope(org: OrgSummary) -> set[str]:
    return {a.id for a in org.accounts} - org.excluded_account_ids


def test_member_resources_match_the_organization_exactly(full: FullSync) -> None:
    assert found_member_keys(full.run.records()) == expected_member_keys(full.org)


def test_resource_ids_per_type(full: FullSync) -> None:
    """(type, account, aws_id): names for IAM roles (the summary keys them by name)."""
    found = {
        (r.type, r.account_id, r.name if r.type == "iam-role" else r.aws_id)
        for r in full.run.records()
        if r.type != "aws-account"
    }
    expected = {
        (demo_type(r.type), r.account_id, r.id)
        for r in full.org.resources
        if r.account_id in full.org.synced_account_ids
    }
    assert found == expected


def test_every_account_in_scope_is_an_aws_account_resource(full: FullSync) -> None:
    records = [r for r in full.run.records() if r.type == "aws-account"]
    found = {
        (r.aws_id, r.account_id, r.name, r.attributes["email"], r.attributes["ou_path"])
        for r in records
    }
    assert found == {
        (a.id, a.id, a.name, a.email, a.ou_path)
        for a in full.org.accounts
        if a.id in _in_scope(full.org)
    }
    # The builder tags every member account env=<environment>; read with ListTagsForResource.
    assert {r.aws_id for r in records if "env" in r.tags} == _in_scope(full.org) - {
        full.org.management_account_id
    }


def test_ou_paths_run_from_the_root(full: FullSync) -> None:
    ids_by_path = {"Root": full.org.root_id, **full.org.ou_ids_by_path}
    found = {
        (inv.account_id, "/".join(inv.ou_names), tuple(inv.ou_path)) for inv in full.run.emitted
    }
    expected = set()
    for account in full.org.accounts:
        if account.id not in _in_scope(full.org):
            continue
        parts = account.ou_path.split("/")
        ids = tuple(ids_by_path["/".join(parts[: i + 1])] for i in range(len(parts)))
        expected.add((account.id, account.ou_path, ids))
    assert found == expected


def test_excluded_ou_and_its_accounts_are_absent(full: FullSync) -> None:
    emitted = {inv.account_id for inv in full.run.emitted}
    assert full.org.excluded_account_ids  # the shape excludes the Sandbox OU
    assert emitted == _in_scope(full.org)
    assert not emitted & full.org.excluded_account_ids
    assert not {ou for inv in full.run.emitted for ou in inv.ou_path} & set(
        full.org.excluded_ou_ids
    )
    assert full.run.summary.excluded_accounts == len(full.org.excluded_account_ids)


def test_excluding_an_ou_skips_every_nested_ou(shared_small_org: OrgSummary) -> None:
    """Excluding Workloads leaves out Prod, Staging and their team OUs: never even listed."""
    org = shared_small_org
    workloads = org.ou_ids_by_path["Root/Workloads"]
    result = run(
        connector_factory(),
        options_for(org, excluded_ou_ids=[workloads], resource_types=["aws-account"]),
    )
    expected = {a.id for a in org.accounts if not a.ou_path.startswith("Root/Workloads")}
    assert {inv.account_id for inv in result.emitted} == expected
    calls = result.summary.aws_calls_by_operation
    parents_listed = 1 + sum(  # the root and each OU outside Workloads
        1 for ou in org.ous if not ou.path.startswith("Root/Workloads")
    )
    assert calls["organizations:ListOrganizationalUnitsForParent"] == parents_listed
    assert calls["organizations:ListAccountsForParent"] == parents_listed
    assert result.summary.excluded_accounts == len(org.accounts) - len(expected)


def test_outcomes_counts_and_streaming(full: FullSync) -> None:
    summary, org = full.run.summary, full.org
    in_scope = _in_scope(org)
    assert summary.accounts_by_outcome == {
        **{outcome: 0 for outcome in AccountOutcome},
        AccountOutcome.SYNCED: len(org.synced_account_ids),
        AccountOutcome.SUSPENDED: len(org.suspended_account_ids),
    }
    assert summary.accounts_total == len(in_scope)
    assert Counter(inv.account_id for inv in full.run.emitted) == Counter(in_scope)
    assert full.run.progress == [(i, len(in_scope)) for i in range(len(in_scope) + 1)]
    expected_counts = Counter(demo_type(r.type) for r in org.resources_in(org.synced_account_ids))
    expected_counts.update({"aws-account": len(in_scope), "identity-center-group": len(org.groups)})
    assert summary.resources_by_type == dict(expected_counts)
    assert summary.aws_calls == sum(summary.aws_calls_by_operation.values()) > 0
    assert (summary.organization_id, summary.management_account_id, summary.root_id) == (
        org.organization_id,
        org.management_account_id,
        org.root_id,
    )
    synced = [inv for inv in full.run.emitted if inv.outcome is AccountOutcome.SYNCED]
    assert all(
        set(inv.types_read) == set(registry_member_types()) | {"aws-account"} for inv in synced
    )


def registry_member_types() -> set[str]:
    return {rt.key for rt in registry.REGISTRY if rt.account_scope is registry.AccountScope.MEMBER}


def test_suspended_account_is_reported_and_not_read(full: FullSync) -> None:
    (suspended_id,) = full.org.suspended_account_ids
    inventory = full.run.account(suspended_id)
    assert inventory.outcome is AccountOutcome.SUSPENDED
    assert inventory.status == "SUSPENDED"
    assert inventory.types_read == ["aws-account"]
    assert [(r.type, r.aws_id) for r in inventory.resources] == [("aws-account", suspended_id)]
    assert inventory.aws_calls == 0


def test_directory_and_permission_sets(full: FullSync) -> None:
    summary, org = full.run.summary, full.org
    directory = summary.directory
    assert directory is not None
    assert directory.identity_store_id == org.identity_store_id
    assert directory.instance_arn == org.instance_arn
    assert {
        (u.identity_store_user_id, u.username, u.email, u.display_name, u.attributes.get("title"))
        for u in directory.users
    } == {(u.user_id, u.username, u.email, u.display_name, u.title) for u in org.users}
    usernames = {u.identity_store_user_id: u.username for u in directory.users}
    assert {
        (
            g.identity_store_group_id,
            g.name,
            g.description,
            tuple(sorted(usernames[m] for m in g.member_user_ids)),
        )
        for g in directory.groups
    } == {(g.group_id, g.name, g.description, g.members) for g in org.groups}
    assert {(p.name, p.arn, p.managed_by_grantflow) for p in summary.permission_sets} == {
        (p.name, p.arn, False) for p in org.permission_sets
    }
    management = summary.management_resources
    assert management is not None and management.outcome is AccountOutcome.SYNCED
    assert management.types_read == ["identity-center-group"]
    assert {(r.type, r.aws_id, r.name) for r in management.resources} == {
        ("identity-center-group", g.group_id, g.name) for g in org.groups
    }


def _template_actions(template: dict[str, object]) -> set[str]:
    found: set[str] = set()
    resources = template["Resources"]
    assert isinstance(resources, dict)
    for resource in resources.values():
        props = resource.get("Properties", {})
        documents = [inline["PolicyDocument"] for inline in props.get("Policies", [])]
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            documents.append(props["PolicyDocument"])
        for document in documents:
            for statement in document["Statement"]:
                actions = statement["Action"]
                found.update([actions] if isinstance(actions, str) else actions)
    return found


def test_every_call_of_a_full_sync_is_granted_by_the_template(full: FullSync) -> None:
    """A test fails if any action the code calls is missing from the template."""
    management_template = cloudformation.template_dict()
    member_template = json.loads(
        management_template["Resources"]["MemberRoleStackSet"]["Properties"]["TemplateBody"]  # type: ignore[index]
    )
    management_actions = _template_actions(management_template)
    member_actions = _template_actions(member_template)
    called = {
        (service, registry.operation_to_action(service, operation))
        for service, operation in full.connector.calls.operations()
        if (service, operation) not in registry.UNAUTHORIZED_OPERATIONS
    }
    by_member = {action for service, action in called if service in MEMBER_SERVICES}
    by_management = {action for service, action in called if service not in MEMBER_SERVICES}
    assert by_member - member_actions == set()
    # sts:AssumeRole on the management role is the connector's own permission; the template
    # grants it to the management role for the member roles.
    assert by_management - management_actions == set()


def _account_with(org: OrgSummary, type_name: str, region: str | None) -> str:
    return next(
        r.account_id
        for r in org.resources_in(org.synced_account_ids)
        if demo_type(r.type) == type_name
        and r.region == region
        and r.account_id != org.management_account_id
    )


def test_member_role_denied_is_access_denied_for_that_account_only(
    shared_small_org: OrgSummary,
) -> None:
    """STS's real AccessDenied answer for the member role, injected on the management
    factory's STS client (moto would let any role be assumed). Also checks that the
    suspended account's member role is never assumed."""
    org = shared_small_org
    denied = _account_with(org, "iam-role", None)
    member_arn = f"arn:aws:iam::{denied}:role/{registry.MEMBER_ROLE_NAME}"
    management = FaultInjectingFactory(settings=FAST)
    assumed: list[str] = []
    record_assumed_roles(management.client("sts"), assumed)  # first: sees denied calls too
    inject(
        management.client("sts"),
        "AssumeRole",
        assume_role_denied(MANAGEMENT_ROLE_ARN, member_arn),
        when=lambda body: body.get("RoleArn") == member_arn,
    )
    result = run(management, options_for(org, resource_types=TYPES), assumed=True)

    inventory = result.account(denied)
    assert inventory.outcome is AccountOutcome.ACCESS_DENIED
    assert inventory.detail is not None
    for expected in (member_arn, denied, "StackSet", MANAGEMENT_ROLE_ARN):
        assert expected in inventory.detail
    assert inventory.types_read == ["aws-account"]
    assert [r.type for r in inventory.resources] == ["aws-account"]
    others = org.synced_account_ids - {denied}
    assert {
        inv.account_id for inv in result.emitted if inv.outcome is AccountOutcome.SYNCED
    } == others
    assert found_member_keys(result.records()) == expected_member_keys(org, others, TYPES)
    (suspended,) = org.suspended_account_ids
    assert not [arn for arn in assumed if f"::{suspended}:" in arn]
    assert {arn.split(":")[4] for arn in assumed} == set(org.synced_account_ids)


def test_one_region_of_ec2_denied_is_incomplete(shared_small_org: OrgSummary) -> None:
    """EC2's real UnauthorizedOperation answer (as with an SCP), injected on one member
    account's eu-west-1 EC2 client; every other read goes to moto."""
    org = shared_small_org
    account = _account_with(org, "ec2-instance", "eu-west-1")
    fault = MemberFault(
        account,
        "ec2",
        "eu-west-1",
        "DescribeInstances",
        ec2_unauthorized(f"arn:aws:sts::{account}:assumed-role/x/y", "ec2:DescribeInstances"),
    )
    options = options_for(org, resource_types=TYPES)
    result = run(FaultInjectingFactory([fault], settings=FAST), options, assumed=True)

    inventory = result.account(account)
    assert inventory.outcome is AccountOutcome.INCOMPLETE
    assert inventory.detail is not None
    assert "ec2-instance in eu-west-1" in inventory.detail
    assert "ec2:DescribeInstances" in inventory.detail
    assert inventory.types_read == ["aws-account", "iam-role"]
    expected = {
        key
        for key in expected_member_keys(org, [account], TYPES)
        if key[:3] != ("ec2-instance", account, "eu-west-1")
    }
    assert found_member_keys(inventory.resources) == expected
    others = [inv for inv in result.emitted if inv.account_id != account]
    assert {inv.outcome for inv in others} == {AccountOutcome.SYNCED, AccountOutcome.SUSPENDED}


def test_pagination_with_small_pages(shared_small_org: OrgSummary) -> None:
    """PageSize 2 on the Organizations and Identity Store listings: several pages each,
    same result as unpaginated."""
    org = shared_small_org
    result = run(
        connector_factory(),
        options_for(org, page_size=2, resource_types=["aws-account", "identity-center-group"]),
    )
    calls = result.summary.aws_calls_by_operation
    assert calls["organizations:ListAccounts"] >= math.ceil(len(org.accounts) / 2) > 1
    excluded = [ou.path for ou in org.ous if ou.id in org.excluded_ou_ids]
    parents = 1 + sum(1 for ou in org.ous if not any(ou.path.startswith(path) for path in excluded))
    assert calls["organizations:ListOrganizationalUnitsForParent"] > parents
    assert calls["identitystore:ListUsers"] >= math.ceil(len(org.users) / 2)
    assert {inv.account_id for inv in result.emitted} == _in_scope(org)
    directory = result.summary.directory
    assert directory is not None
    assert {u.username for u in directory.users} == {u.username for u in org.users}
    assert {len(g.member_user_ids) for g in directory.groups} == {
        len(g.members) for g in org.groups
    }


def test_the_summary_lists_every_ou_so_unknown_exclusions_show(
    shared_small_org: OrgSummary,
) -> None:
    """An excluded OU nested in another excluded OU is known (its ids alone are listed); an id
    that names no OU is not among ``ou_ids``, and the control plane names it (issue 17)."""
    org = shared_small_org
    workloads = org.ou_ids_by_path["Root/Workloads"]
    nested = next(ou.id for ou in org.ous if ou.path.startswith("Root/Workloads/"))
    unknown = "ou-zzzz-zzzzzzzz"
    result = run(
        connector_factory(),
        options_for(org, excluded_ou_ids=[workloads, nested, unknown],
                    resource_types=["aws-account"]),
    )  # fmt: skip
    assert set(result.summary.ou_ids or ()) == {ou.id for ou in org.ous}
    assert unknown not in (result.summary.ou_ids or ())
