"""The requestable listing's in-process cache (``services.access.eligibility_cache``) never
outlives the data it was built from, on both backends.

A stale listing would offer what a flow no longer allows (request validation re-checks with
the pure rule, so the request would then be refused — also checked here). Each test first
serves the listing (so the cache holds it), commits a change the way a sync or an admin makes
it, and asks again in a new transaction: the answer must follow, and request validation must
agree with it. A rolled-back change must not leave its listing behind either.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.access import access_requests, eligibility_cache, requestable
from grantflow.services.access.eligibility_cache import Criteria, bits, set_ranks
from grantflow.services.errors import Forbidden
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import AccessFlow, Connector, Integration, Resource, User
from grantflow.store.resource_index import generation

CONFIG = {"region": "us-east-1", "sso_region": "us-east-1",
          "sso_portal": "https://d-1.awsapps.com/start",
          "management_role_arn": "arn:aws:iam::123456789012:role/R"}  # fmt: skip


@dataclass
class World:
    user_id: str
    integration_id: str
    red: str  # tagged team=red, outside ou-x: listed by the tag flow
    placed: str  # tagged blue, under ou-x: listed by the OU flow
    other: str  # neither


def _flow(name: str, scope: dict[str, object]) -> AccessFlow:
    return AccessFlow(name=name, definition={
        "requestors": {"everyone": True}, "scope": {"resource_types": ["s3-bucket"], **scope},
        "permissions": {"s3-bucket": ["read-only"]}, "approval": {"mode": "auto"},
    })  # fmt: skip


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> World:
    eligibility_cache.clear()
    with transaction(sessions) as s:
        s.add(Connector(id="gfc-cachecachecache00000", name="c", kind="self_hosted",
                        token_hash="k" * 64, token_prefix="k"))  # fmt: skip
        integ = Integration(name="org", type="aws-organization", resource_types=["s3-bucket"],
                            connector_id="gfc-cachecachecache00000", config=CONFIG)  # fmt: skip
        user = User(username="mia", role="member")
        s.add_all([integ, user])
        s.flush()

        def bucket(name: str, tags: dict[str, str], ous: list[str]) -> Resource:
            return Resource(integration_id=integ.id, type="s3-bucket", aws_id=f"arn:{name}",
                            name=name, account_id="111111111111", region="us-east-1",
                            ou_path=["r-1", *ous], tags=tags,
                            attributes={"account_status": "ACTIVE"})  # fmt: skip

        rows = [bucket("red", {"team": "red"}, ["ou-y"]), bucket("placed", {"team": "blue"},
                ["ou-x"]), bucket("other", {"team": "blue"}, ["ou-y"])]  # fmt: skip
        s.add_all(rows)
        flows = [_flow("by-tag", {"mode": "tag", "tag": {"key": "team", "value": "red"}}),
                 _flow("by-ou", {"mode": "ous", "ou_ids": ["ou-x"]})]  # fmt: skip
        for flow in flows:
            flow.integration_id = integ.id
        s.add_all(flows)
        s.flush()
        return World(user.id, integ.id, *(r.id for r in rows))


def _listed(sessions: sessionmaker[Session], w: World, criteria: Criteria = Criteria()) -> set[str]:
    with read_transaction(sessions) as s:
        user = s.get(User, w.user_id)
        assert user is not None
        total, rows = requestable.page(s, requestable.flows_for(s, user), criteria, 0, 50)
        assert total == len(rows)
        return {r.id for r, _ in rows}


def _validation(sessions: sessionmaker[Session], w: World) -> set[str]:
    """The resources a request would be accepted for (the pure rule, no cache)."""
    accepted = set()
    with read_transaction(sessions) as s:
        user = s.get(User, w.user_id)
        assert user is not None
        for row in s.query(Resource):
            try:
                access_requests._pick_flow(s, user, [row], "read-only")
            except Forbidden:
                continue
            accepted.add(row.id)
    return accepted


def _token(sessions: sessionmaker[Session]) -> str | None:
    with read_transaction(sessions) as s:
        return generation(s.connection())


def _get(s: Session, rid: str) -> Resource:
    row = s.get(Resource, rid)
    assert row is not None
    return row


def _retag(w: World) -> Callable[[Session], None]:
    def change(s: Session) -> None:
        _get(s, w.red).tags = {"team": "blue"}

    return change


def _move(w: World) -> Callable[[Session], None]:
    def change(s: Session) -> None:
        _get(s, w.placed).ou_path = ["r-1", "ou-y"]

    return change


def _suspend(w: World) -> Callable[[Session], None]:
    def change(s: Session) -> None:
        row = _get(s, w.red)
        row.attributes = {**row.attributes, "account_status": "SUSPENDED"}

    return change


def _remove(w: World) -> Callable[[Session], None]:
    def change(s: Session) -> None:
        s.delete(_get(s, w.red))

    return change


CHANGES = {"retagged": _retag, "moved out of the OU": _move, "account suspended": _suspend,
           "deleted": _remove}  # fmt: skip


@pytest.mark.parametrize("what", sorted(CHANGES))
def test_a_committed_change_is_seen_by_the_next_call(
    sessions: sessionmaker[Session], world: World, what: str
) -> None:
    before = _listed(sessions, world)
    assert before == {world.red, world.placed} == _validation(sessions, world)
    token = _token(sessions)
    assert _listed(sessions, world) == before  # served again, from the cache
    with transaction(sessions) as s:
        CHANGES[what](world)(s)
    assert _token(sessions) != token
    gone = world.placed if what == "moved out of the OU" else world.red
    after = _listed(sessions, world)
    assert after == before - {gone}
    assert _validation(sessions, world) == after


def test_a_new_resource_and_a_renamed_one_are_found(
    sessions: sessionmaker[Session], world: World
) -> None:
    assert _listed(sessions, world, Criteria(q="crimson")) == set()
    with transaction(sessions) as s:
        _get(s, world.red).name = "crimson"
        s.add(Resource(integration_id=world.integration_id, type="s3-bucket", aws_id="arn:new",
                       name="new-crimson", account_id="111111111111", ou_path=["r-1"],
                       tags={"team": "red"}, attributes={}))  # fmt: skip
    found = _listed(sessions, world, Criteria(q="CRIMSON"))
    assert len(found) == 2 and world.red in found


def test_an_integration_deleted_takes_its_resources_out(
    sessions: sessionmaker[Session], world: World
) -> None:
    assert _listed(sessions, world) == {world.red, world.placed}
    token = _token(sessions)
    with transaction(sessions) as s:
        s.execute(delete(AccessFlow))  # flows first (their integration is going)
        s.delete(s.get(Integration, world.integration_id))
    assert _token(sessions) != token


def test_a_rolled_back_change_leaves_no_listing_behind(
    sessions: sessionmaker[Session], world: World
) -> None:
    assert _listed(sessions, world) == {world.red, world.placed}
    with sessions() as s:
        _retag(world)(s)
        s.flush()  # the listing below is built inside the uncommitted change
        user = s.get(User, world.user_id)
        assert user is not None
        _total, rows = requestable.page(s, requestable.flows_for(s, user), Criteria(), 0, 50)
        assert {r.id for r, _ in rows} == {world.placed}
        s.rollback()
    assert _listed(sessions, world) == {world.red, world.placed}
    with transaction(sessions) as s:  # a later committed change: a new state again
        _move(world)(s)
    assert _listed(sessions, world) == {world.red}


def test_paging_walks_the_set_bits_in_order() -> None:
    rng = random.Random(5)
    for size in (0, 1, 7, 8, 9, 1000, 20_000):
        ranks = sorted(rng.sample(range(size), rng.randint(0, size))) if size else []
        bitset = bits(ranks, size)
        assert bitset.bit_count() == len(ranks)
        for offset in (0, 1, 3, len(ranks) // 2, max(0, len(ranks) - 2), len(ranks) + 1):
            for limit in (1, 2, 50):
                assert set_ranks(bitset, offset, limit) == ranks[offset : offset + limit]


def test_warming_builds_the_listing_and_every_flow_once_the_data_settles(
    sessions: sessionmaker[Session], world: World
) -> None:
    with transaction(sessions) as s:
        _retag(world)(s)
    token = _token(sessions)
    assert requestable.warm_tick(sessions) == 0  # the first sight of a token: wait
    assert requestable.warm_tick(sessions) == 2  # settled: the two flows' sets
    kept = [v for (_, t), v in eligibility_cache._listings.items() if t == token]
    assert len(kept) == 1 and len(kept[0]._sets) == 2
    assert requestable.warm_tick(sessions) == 0  # nothing new
    assert _listed(sessions, world, Criteria(account="111111111111")) == {world.placed}
    assert len(kept[0]._sets) == 3  # the flows' sets were warm; only the filter was built
    with transaction(sessions) as s:
        _move(world)(s)
    assert requestable.warm_tick(sessions) == 0
    assert requestable.warm_tick(sessions) == 3  # the flows and the filter asked for lately
    assert _listed(sessions, world) == set()


def test_concurrent_requests_build_one_listing_and_agree(
    sessions: sessionmaker[Session], world: World
) -> None:
    eligibility_cache.clear()
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: _listed(sessions, world), range(24)))
    assert all(a == {world.red, world.placed} for a in answers)
    token = _token(sessions)
    assert [t for _, t in eligibility_cache._listings] == [token]
