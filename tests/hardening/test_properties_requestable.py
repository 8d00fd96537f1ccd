"""The eligibility index gives the pure rule's answers (``services.requestable``).

Over random worlds — two integrations (one sometimes disabled), OUs nested three deep,
accounts (some suspended), resources of two types with tags, flows of every scope kind with
every kind of exclusion, requestors by group, user or everyone — on both backends:

* ``requestable`` lists exactly the resources some flow for the user allows by
  ``domain.flows.in_scope``, with exactly those flows, with and without a type filter, a
  name search or an account filter, and paged in pieces gives the same list in order;
* request validation (``access_requests``) accepts a resource exactly when it is listed.

Each example writes its world through the ORM, so the index is kept by the same listener as
in production (``store.resource_index``); then a resource is retagged, moved to other OUs or
suspended, and the answers are checked again. The answers go through the in-process cache
(``services.access.eligibility_cache``): the second check is served from a cache built before
the change unless the change moved the eligibility generation — the answer must follow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.flows import FlowDefinition, in_scope, requestor_matches
from grantflow.services.access import access_requests, flow_views, requestable
from grantflow.services.access.eligibility_cache import Criteria
from grantflow.services.errors import Forbidden
from grantflow.store.db import transaction
from grantflow.store.models import (
    AccessFlow,
    Connector,
    Group,
    GroupMembership,
    Integration,
    Resource,
    User,
)

TYPES = ["aws-account", "s3-bucket"]
PERMISSION = {"aws-account": "ReadOnly", "s3-bucket": "read-only"}
ACCOUNTS = ["111111111111", "222222222222", "333333333333"]
OUS = ["r-1", "ou-a", "ou-a1", "ou-a1x", "ou-b"]
PATHS = [["r-1"], ["r-1", "ou-a"], ["r-1", "ou-a", "ou-a1"], ["r-1", "ou-a", "ou-a1", "ou-a1x"],
         ["r-1", "ou-b"], []]  # fmt: skip
IDS = [f"00000000-0000-0000-0000-00000000000{i}" for i in range(6)]
AWS_IDS = [f"arn:r{i}" for i in range(6)]
TAGS = [{}, {"team": "red"}, {"team": "blue"}, {"team": "red", "env": "prod"}, {"env": "dev"}]
GROUPS = ["g1", "g2", "g3"]
CONFIG = {"region": "us-east-1", "sso_region": "us-east-1",
          "sso_portal": "https://d-1.awsapps.com/start",
          "management_role_arn": "arn:aws:iam::123456789012:role/R"}  # fmt: skip
EXAMPLES = int(os.environ.get("GRANTFLOW_PROPERTY_EXAMPLES", "100")) // 3  # ~3 s a backend


@dataclass(frozen=True)
class Res:
    integration: int
    type: str
    account: int | None  # index in ACCOUNTS
    path: int
    tags: int


resources = st.builds(
    Res,
    integration=st.sampled_from([0, 0, 0, 1]),
    type=st.sampled_from(TYPES),
    account=st.sampled_from([0, 1, 2, None, None]),
    path=st.integers(0, len(PATHS) - 1),
    tags=st.integers(0, len(TAGS) - 1),
)
few = {
    "resource_ids": st.lists(st.sampled_from(IDS + AWS_IDS), max_size=3),
    "account_ids": st.lists(st.sampled_from(ACCOUNTS), max_size=2),
    "ou_ids": st.lists(st.sampled_from(OUS), max_size=2),
}
exclusions = {
    "resource_ids": st.just([]) | st.lists(st.sampled_from(IDS + AWS_IDS), min_size=1, max_size=2),
    "account_ids": st.just([]) | st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=1),
    "ou_ids": st.just([]) | st.lists(st.sampled_from(OUS[1:]), min_size=1, max_size=1),
}


@st.composite
def flows(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from(["all", "ids", "tag", "tag", "accounts", "ous", "ous"]))
    types = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True))
    scope: dict[str, Any] = {"resource_types": types, "mode": mode}
    for name, values in few.items():
        scope[name] = draw(values)
        scope[f"exclude_{name}"] = draw(exclusions[name])
    if mode == "tag":
        scope["tag"] = {"key": draw(st.sampled_from(["team", "env"])),
                        "value": draw(st.sampled_from([None, "red", "blue", "prod"]))}  # fmt: skip
    needs = {"ids": "resource_ids", "accounts": "account_ids", "ous": "ou_ids"}.get(mode)
    assume(needs is None or scope[needs])
    requestors = draw(st.sampled_from([{"everyone": True}, {"user_ids": ["me"]},
                                       {"group_ids": ["g1"]}, {"everyone": True},
                                       {"group_ids": ["g2", "g3"]},
                                       {"user_ids": ["someone-else"]}]))  # fmt: skip
    return {
        "integration": draw(st.sampled_from([0, 0, 1])),
        "enabled": draw(st.sampled_from([True, True, True, True, False])),
        "definition": {
            "requestors": requestors,
            "scope": scope,
            "permissions": {t: [PERMISSION[t]] for t in types},
            "approval": {"mode": "auto"},
        },
    }


@dataclass
class Fixed:
    integrations: list[str]
    user_id: str
    group_ids: dict[str, str]


@pytest.fixture
def fixed(sessions: sessionmaker[Session]) -> Iterator[Fixed]:
    with transaction(sessions) as s:
        s.add(Connector(id="gfc-propertyproperty0000", name="c", kind="self_hosted",
                        token_hash="p" * 64, token_prefix="p"))  # fmt: skip
        integs = [Integration(name=f"org-{i}", type="aws-organization", resource_types=TYPES,
                              connector_id="gfc-propertyproperty0000", config=CONFIG)
                  for i in range(2)]  # fmt: skip
        groups = {name: Group(name=name) for name in GROUPS}
        user = User(username="me", role="member")
        s.add_all([*integs, *groups.values(), user])
        s.flush()
        made = Fixed([i.id for i in integs], user.id, {k: g.id for k, g in groups.items()})
    yield made


def _resource_row(fixed: Fixed, i: int, res: Res, suspended: set[int]) -> Resource:
    account = None if res.account is None else ACCOUNTS[res.account]
    attributes: dict[str, Any] = {}
    if res.account is not None:
        attributes["account_status"] = "SUSPENDED" if res.account in suspended else "ACTIVE"
    return Resource(id=IDS[i], integration_id=fixed.integrations[res.integration], type=res.type,
                    aws_id=AWS_IDS[i], name=f"res-{i}", account_id=account, region="us-east-1",
                    ou_path=PATHS[res.path], tags=TAGS[res.tags],
                    attributes=attributes)  # fmt: skip


def _reset(s: Session, fixed: Fixed) -> None:
    for table in (AccessFlow, Resource, GroupMembership):
        s.execute(delete(table))
    s.flush()


def _requester_flows(s: Session, fixed: Fixed) -> list[Any]:
    """The flows as the pure rule sees them: the ones that list the user, enabled, whose
    integration is enabled."""
    user = s.get(User, fixed.user_id)
    assert user is not None
    requester = flow_views.requester_view(s, user)
    views = flow_views.flow_views(s)
    return [
        v for v in views
        if v.enabled and requestor_matches(v.definition.requestors, requester)
    ]  # fmt: skip


def _passes(row: Resource, criteria: Criteria) -> bool:
    q = (criteria.q or "").lower()
    return (
        (criteria.type is None or row.type == criteria.type)
        and (criteria.account is None or row.account_id == criteria.account)
        and (not q or q in row.name.lower() or q in row.aws_id.lower())
    )


def _expected(s: Session, views: list[Any], criteria: Criteria) -> dict[str, set[str]]:
    out = {}
    for row in s.scalars(select(Resource)):
        if not _passes(row, criteria):
            continue
        view = flow_views.resource_view(row)
        matching = {f.id for f in views if f.integration_id == view.integration_id
                    and in_scope(f.definition.scope, view) is None}  # fmt: skip
        if matching:
            out[row.id] = matching
    return out


def _listed(s: Session, fixed: Fixed, criteria: Criteria) -> dict[str, set[str]]:
    user = s.get(User, fixed.user_id)
    assert user is not None
    flows_ = requestable.flows_for(s, user)
    total, rows = requestable.page(s, flows_, criteria, 0, 200)
    listed = {r.id: {f.id for f in matching} for r, matching in rows}
    assert total == len(listed)
    order = [(r.type, r.name, r.id) for r, _ in rows]
    assert order == sorted(order)  # the listing's order (names are ASCII here)
    pieces = [r.id for offset in range(0, total + 2, 2)
              for r, _ in requestable.page(s, flows_, criteria, offset, 2)[1]]  # fmt: skip
    assert pieces == [r.id for r, _ in rows]
    return listed


def _validation_agrees(s: Session, fixed: Fixed, listed: dict[str, set[str]]) -> None:
    user = s.get(User, fixed.user_id)
    assert user is not None
    for row in s.scalars(select(Resource)):
        try:
            _allowed, flow = access_requests._pick_flow(s, user, [row], PERMISSION[row.type])
        except Forbidden:
            assert row.id not in listed, f"{row.name} is listed but a request is refused"
        else:
            assert row.id in listed, f"{row.name} is not listed but a request is accepted"
            assert flow.id in listed[row.id]


CRITERIA = [Criteria(), Criteria(type="s3-bucket"), Criteria(q="RES-1"), Criteria(q="arn:r2"),
            Criteria(account=ACCOUNTS[0], type="aws-account")]  # fmt: skip


def _check(s: Session, fixed: Fixed) -> None:
    views = _requester_flows(s, fixed)
    for criteria in CRITERIA:
        assert _listed(s, fixed, criteria) == _expected(s, views, criteria), criteria
    _validation_agrees(s, fixed, _listed(s, fixed, Criteria()))


@settings(max_examples=max(EXAMPLES, 10), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    world=st.lists(resources, min_size=4, max_size=len(IDS)),
    specs=st.lists(flows(), min_size=2, max_size=6),
    suspended=st.sets(st.sampled_from([0, 1, 2]), max_size=1),
    groups=st.sets(st.sampled_from(GROUPS), min_size=1),
    integ_enabled=st.sampled_from([[True, True], [True, False]]),
    change=st.tuples(
        st.integers(0, len(IDS) - 1),
        st.integers(0, len(TAGS) - 1),
        st.integers(0, len(PATHS) - 1),
        st.booleans(),
    ),
)
def test_requestable_is_the_pure_rule_and_validation_agrees(
    sessions: sessionmaker[Session], fixed: Fixed, world: list[Res],
    specs: list[dict[str, Any]], suspended: set[int], groups: set[str],
    integ_enabled: list[bool], change: tuple[int, int, int, bool],
) -> None:  # fmt: skip
    with sessions() as s:
        _reset(s, fixed)
        for i, integ_id in enumerate(fixed.integrations):
            integ = s.get(Integration, integ_id)
            assert integ is not None
            integ.enabled = integ_enabled[i]
        s.add_all(GroupMembership(group_id=fixed.group_ids[g], user_id=fixed.user_id)
                  for g in groups)  # fmt: skip
        s.add_all(_resource_row(fixed, i, res, suspended) for i, res in enumerate(world))
        for n, spec in enumerate(specs):
            definition = FlowDefinition.model_validate(spec["definition"]).model_dump(mode="json")
            definition["requestors"] = {
                **definition["requestors"],
                "user_ids": [fixed.user_id if u == "me" else u
                             for u in definition["requestors"]["user_ids"]],
                "group_ids": [fixed.group_ids[g] for g in definition["requestors"]["group_ids"]],
            }  # fmt: skip
            s.add(AccessFlow(name=f"flow-{n}", enabled=spec["enabled"], definition=definition,
                             integration_id=fixed.integrations[spec["integration"]]))  # fmt: skip
        s.flush()
        _check(s, fixed)
        # what a sync does to a resource: new tags, another place, its account suspended
        index, tags, path, suspend = change
        row = s.get(Resource, IDS[index % len(world)])
        assert row is not None
        row.tags, row.ou_path = TAGS[tags], PATHS[path]
        if suspend and row.account_id is not None:
            row.attributes = {**row.attributes, "account_status": "SUSPENDED"}
        s.flush()
        _check(s, fixed)
        s.rollback()
