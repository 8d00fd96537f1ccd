"""The request lists computed in SQL answer exactly what the per-request rule answers:
"to approve" is every pending request ``access_requests.can_approve`` allows (the requester and
their other accounts never see their own as approvable), ``can_approve`` on every row agrees,
and paging with ``offset`` and ``X-Total-Count`` walks the whole list once (both backends)."""

from __future__ import annotations

from sqlalchemy import select

from grantflow.services.access import access_requests
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import AccessRequest, User
from tests.api.list_world import ListWorld, build
from tests.fixtures.api import Api

PATH = "/api/v1/access-requests"


def _rule(world: ListWorld, who: str) -> set[str]:
    """What the per-request rule says ``who`` may approve, over every request."""
    with read_transaction(world.sessions) as session:
        me = session.get_one(User, world.ids[who])
        rows = session.scalars(select(AccessRequest)).all()
        pending = [r for r in rows if r.state == "pending"]
        return {r.id for r in pending if access_requests.can_approve(session, r, me)}


def _walk(world: ListWorld, who: str, limit: int, **params: object) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    total = None
    while True:
        got = world.get(who, PATH, limit=limit, offset=len(seen), **params)
        total = int(got.headers["X-Total-Count"])
        page = got.json()
        seen.extend(page)
        if len(page) < limit:
            break
    assert len(seen) == total
    return seen


def test_to_approve_is_exactly_what_the_rule_allows(api: Api) -> None:
    world = build(api)
    world.grow(4)
    for who in ("abe", "rita"):
        listed = _walk(world, who, 3, scope="to_approve")
        ids = [r["id"] for r in listed]
        assert len(ids) == len(set(ids)), "a request on two pages"
        assert set(ids) == _rule(world, who)
        assert all(r["can_approve"] and r["state"] == "pending" for r in listed)
        created = [str(r["created_at"]) for r in listed]
        assert created == sorted(created, reverse=True), "newest first"
    abe = {r["requester_id"] for r in _walk(world, "abe", 50, scope="to_approve")}
    # 4 of rita's, 4 of new members'; never abe's other accounts (one person, one vote)
    assert len(_rule(world, "abe")) == 8
    assert not abe & {world.ids["abe"], world.ids["abe.alt"], world.ids["abe.twin"]}
    assert world.get("abe", PATH, scope="to_approve", state="granted").json() == []


def test_can_approve_on_every_row_agrees_with_the_rule(api: Api) -> None:
    world = build(api)
    world.grow(3)
    with transaction(world.sessions) as session:
        session.get_one(User, world.ids["abe"]).role = "admin"  # sees every request
    listed = _walk(world, "abe", 7, scope="all")
    with read_transaction(world.sessions) as session:
        assert len(listed) == session.query(AccessRequest).count()
    mine = {r["id"] for r in listed if r["can_approve"]}
    assert mine == _rule(world, "abe")
    mine_listed = _walk(world, "rita", 2, scope="mine")
    assert mine_listed and not any(r["can_approve"] for r in mine_listed)
    one = mine_listed[0]
    assert one["requester"] == "rita" and len(one["grants"]) == 2  # type: ignore[arg-type]
    assert one["max_extensions"] == 2
    names = one["approval"]["sets"][0]["names"]  # type: ignore[index]
    assert names[0] == "group approvers" and names[1].startswith("Named")
