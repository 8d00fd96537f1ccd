"""Properties of flow eligibility (``domain/flows.py``: evaluate, in_scope, resolve_approvers).

Small universes (two types, two accounts, three OUs, a few users and groups) so that generated
flows, users and resources overlap often and both answers, allowed and denied, are common.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from grantflow.domain.flows import (
    Allowed,
    ApprovalMode,
    Denied,
    FlowDefinition,
    FlowView,
    RequesterView,
    ResourceView,
    Scope,
    evaluate,
    in_scope,
    resolve_approvers,
)

TYPES = ["aws-account", "s3-bucket"]
ACCOUNTS = ["111111111111", "222222222222"]
OUS = ["ou-a", "ou-b", "ou-c"]
USERS = ["u1", "u2", "u3"]
GROUPS = ["g1", "g2"]
PERMISSIONS = ["ReadOnly", "Admin"]
INTEGRATIONS = ["i1", "i2"]

small_lists = {
    "resource_ids": st.lists(st.sampled_from(["r1", "r2", "arn:r3"]), max_size=2),
    "account_ids": st.lists(st.sampled_from(ACCOUNTS), max_size=2),
    "ou_ids": st.lists(st.sampled_from(OUS), max_size=2),
}

# Exclusions are rarer than inclusions, so that scopes often cover something.
excluded = {k: st.sampled_from([[], [], []]) | v for k, v in small_lists.items()}


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    mode = draw(st.sampled_from(["all", "all", "ids", "tag", "accounts", "ous"]))
    data: dict[str, Any] = {
        "resource_types": draw(st.lists(st.sampled_from(TYPES), min_size=1, unique=True)),
        "mode": mode,
        "resource_ids": draw(small_lists["resource_ids"]),
        "account_ids": draw(small_lists["account_ids"]),
        "ou_ids": draw(small_lists["ou_ids"]),
        "exclude_resource_ids": draw(excluded["resource_ids"]),
        "exclude_account_ids": draw(excluded["account_ids"]),
        "exclude_ou_ids": draw(excluded["ou_ids"]),
    }
    if mode == "tag":
        data["tag"] = {"key": "team", "value": draw(st.sampled_from([None, "red", "blue"]))}
    field = {"ids": "resource_ids", "accounts": "account_ids", "ous": "ou_ids"}.get(mode)
    assume(field is None or data[field])
    return Scope.model_validate(data)


@st.composite
def definitions(draw: st.DrawFn) -> FlowDefinition:
    scope = draw(scopes())
    requestors = draw(st.sampled_from([
        {"everyone": True},
        {"everyone": True},
        {"user_ids": draw(st.lists(st.sampled_from(USERS), min_size=1, max_size=2))},
        {"group_ids": draw(st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2))},
        {"attribute": {"name": "dept", "value": "eng"}},
    ]))  # fmt: skip
    kinds = st.sampled_from([
        {"kind": "resource_owner"},
        {"kind": "users", "user_ids": draw(st.lists(st.sampled_from(USERS), min_size=1))},
        {"kind": "groups", "group_ids": draw(st.lists(st.sampled_from(GROUPS), min_size=1))},
    ])  # fmt: skip
    mode = draw(st.sampled_from(["auto", "any", "all"]))
    groups = draw(st.lists(kinds, min_size=0 if mode == "auto" else 1, max_size=3))
    permissions = {
        t: draw(st.lists(st.sampled_from(PERMISSIONS), min_size=1, unique=True))
        for t in scope.resource_types
    }
    return FlowDefinition.model_validate({
        "requestors": requestors, "scope": scope.model_dump(), "permissions": permissions,
        "approval": {"mode": mode, "groups": groups},
    })  # fmt: skip


@st.composite
def flow_lists(draw: st.DrawFn) -> list[FlowView]:
    n = draw(st.integers(0, 5))
    names = draw(
        st.lists(st.text("abcdef", min_size=1, max_size=3), min_size=n, max_size=n, unique=True)
    )  # flow names are unique (a database constraint)
    return [
        FlowView(
            id=f"f-{name}",
            name=name,
            enabled=draw(st.sampled_from([True, True, True, False])),
            integration_id=draw(st.sampled_from([*INTEGRATIONS, "i1", "i1"])),
            definition=draw(definitions()),
            integration_owners=tuple(
                draw(st.lists(st.sampled_from([f"user:{u}" for u in USERS]), max_size=2))
            ),
        )
        for name in names
    ]


users = st.builds(
    RequesterView,
    id=st.sampled_from(USERS),
    group_ids=st.frozensets(st.sampled_from(GROUPS)),
    attributes=st.sampled_from([{}, {"dept": "eng"}, {"dept": " eng "}, {"dept": "ops"}]),
    active=st.sampled_from([True] * 7 + [False]),
)
resources = st.builds(
    ResourceView,
    id=st.sampled_from(["r1", "r2", "r4"]),
    integration_id=st.just("i1"),
    type=st.sampled_from(TYPES),
    aws_id=st.sampled_from(["arn:r3", "arn:r5"]),
    account_id=st.sampled_from([*ACCOUNTS, None]),
    ou_path=st.lists(st.sampled_from(OUS), max_size=2, unique=True).map(tuple),
    tags=st.sampled_from([{}, {"team": "red"}, {"team": "blue"}]),
    owners=st.lists(st.sampled_from([f"user:{u}" for u in USERS] + ["group:g1"]), max_size=2).map(
        tuple
    ),
)
permissions = st.sampled_from(PERMISSIONS)
EXAMPLES = int(os.environ.get("GRANTFLOW_PROPERTY_EXAMPLES", "100"))  # make hardening: more
PROPERTY = settings(max_examples=EXAMPLES, deadline=None)


@PROPERTY
@given(users, resources, permissions, flow_lists())
def test_denied_exactly_when_no_single_flow_allows(
    user: RequesterView, resource: ResourceView, permission: str, flows: list[FlowView]
) -> None:
    verdict = evaluate(user, resource, permission, flows)
    alone = {f.id: evaluate(user, resource, permission, [f]) for f in flows}
    allowing = {fid for fid, v in alone.items() if isinstance(v, Allowed)}
    assert isinstance(verdict, Denied) == (not allowing)
    if isinstance(verdict, Allowed):
        assert verdict.flow_id in allowing
        # evaluate names the first allowing flow by name: deterministic
        assert verdict.flow_name == min(f.name for f in flows if f.id in allowing)
    elif user.active and flows:
        assert len(verdict.reasons) == len(flows)  # one reason per flow, nobody left out


@PROPERTY
@given(users, resources, permissions, flow_lists(), st.randoms(use_true_random=False))
def test_the_order_of_flows_does_not_matter(
    user: RequesterView, resource: ResourceView, permission: str, flows: list[FlowView],
    rnd: Any,
) -> None:  # fmt: skip
    shuffled = list(flows)
    rnd.shuffle(shuffled)
    assert evaluate(user, resource, permission, flows) == evaluate(
        user, resource, permission, shuffled
    )


@PROPERTY
@given(users, resources, permissions, flow_lists())
def test_nobody_deactivated_and_no_disabled_flow_ever_allows(
    user: RequesterView, resource: ResourceView, permission: str, flows: list[FlowView]
) -> None:
    inactive = RequesterView(user.id, user.group_ids, user.attributes, active=False)
    assert isinstance(evaluate(inactive, resource, permission, flows), Denied)
    disabled = [FlowView(f.id, f.name, False, f.integration_id, f.definition) for f in flows]
    assert isinstance(evaluate(user, resource, permission, disabled), Denied)


@PROPERTY
@given(
    scopes(),
    resources,
    st.sampled_from(["exclude_resource_ids", "exclude_account_ids", "exclude_ou_ids"]),
    st.sampled_from(["r1", "r2", "r4", "arn:r3", "arn:r5", *ACCOUNTS, *OUS]),
)
def test_an_exclusion_never_widens_a_scope(
    scope: Scope, resource: ResourceView, exclusion: str, value: str
) -> None:
    narrower = scope.model_copy(update={exclusion: [*getattr(scope, exclusion), value]})
    if in_scope(narrower, resource) is None:
        assert in_scope(scope, resource) is None
    # and the excluded thing itself is out
    excluded_here = {
        "exclude_resource_ids": value in (resource.id, resource.aws_id),
        "exclude_account_ids": value == resource.account_id,
        "exclude_ou_ids": value in resource.ou_path,
    }[exclusion]
    if excluded_here:
        assert in_scope(narrower, resource) is not None


@PROPERTY
@given(users, resources, permissions, flow_lists(), st.integers(0, 4), st.sampled_from(OUS))
def test_an_exclusion_in_one_flow_never_widens_eligibility(
    user: RequesterView, resource: ResourceView, permission: str, flows: list[FlowView],
    index: int, ou: str,
) -> None:  # fmt: skip
    assume(flows)
    target = flows[index % len(flows)]
    scope = target.definition.scope.model_copy(
        update={"exclude_ou_ids": [*target.definition.scope.exclude_ou_ids, ou]}
    )
    narrowed = FlowView(target.id, target.name, target.enabled, target.integration_id,
                        target.definition.model_copy(update={"scope": scope}),
                        target.integration_owners)  # fmt: skip
    after = [narrowed if f is target else f for f in flows]
    if isinstance(evaluate(user, resource, permission, flows), Denied):
        assert isinstance(evaluate(user, resource, permission, after), Denied)


@PROPERTY
@given(flow_lists(), st.lists(resources, min_size=1, max_size=3))
def test_resolved_approvers_follow_the_flow(flows: list[FlowView], chosen: list[Any]) -> None:
    for flow in flows:
        sets = resolve_approvers(flow, chosen)
        groups = flow.definition.approval.groups
        assert [s.required for s in sets] == [g.required for g in groups]
        for approver_set, group in zip(sets, groups, strict=True):
            if group.kind.value == "users":
                assert set(approver_set.principals) == {f"user:{u}" for u in group.user_ids}
            elif group.kind.value == "groups":
                assert set(approver_set.principals) == {f"group:{g}" for g in group.group_ids}
            else:
                owners = {o for r in chosen for o in r.owners}
                assert set(approver_set.principals) == (owners or set(flow.integration_owners))


@PROPERTY
@given(users, resources, permissions, flow_lists())
def test_auto_approval_needs_no_approvers_and_others_name_them(
    user: RequesterView, resource: ResourceView, permission: str, flows: list[FlowView]
) -> None:
    verdict = evaluate(user, resource, permission, flows)
    if isinstance(verdict, Allowed):
        if verdict.mode is ApprovalMode.AUTO:
            assert verdict.approver_sets == ()
        else:
            assert len(verdict.approver_sets) >= 1
