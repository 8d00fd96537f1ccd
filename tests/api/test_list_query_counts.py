"""No N+1 on the list pages: the SQL statements one HTTP call to a list endpoint sends do not
grow with the rows it lists. Each endpoint is called through the real app with 3 rows of each
kind, then with 30; the statement counts must be equal (both backends).

Before services/access/request_lists.py and request_views.py, "my requests" and "all" cost ~10
statements per row (requester, integration, grants, each grant's resource, approvals, each
approver, flow, approver names) and "to approve" ~5 more per pending request it looked at."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from grantflow.api.app import create_app
from grantflow.services.runtime.startup import prepare_database
from tests.api.list_world import ListWorld, build
from tests.fixtures.api import ADMIN_TOKEN, Api, make_settings

PAGES = [  # (id, caller, path, params, rows listed per grow(1))
    ("to-approve", "abe", "/api/v1/access-requests", {"scope": "to_approve", "limit": 500}, 2),
    ("mine", "rita", "/api/v1/access-requests", {"scope": "mine", "limit": 500}, 1),
    ("all", "admin", "/api/v1/access-requests", {"scope": "all", "limit": 500}, 4),
    ("all-granted", "admin", "/api/v1/access-requests",
     {"scope": "all", "state": "granted", "limit": 500}, 1),
    ("resources", "admin", "/api/v1/resources", {"limit": 500}, 8),
    ("audit-events", "admin", "/api/v1/audit-events", {"limit": 500}, None),
]  # fmt: skip


@pytest.fixture
def quiet_api(db_url: str) -> Iterator[Api]:
    """The real app without its background workers: only the call's own statements count."""
    settings = make_settings(db_url)
    prepare_database(settings)
    with TestClient(create_app(settings, run_workers=False)) as client:
        yield Api(client=client, settings=settings, admin_token=ADMIN_TOKEN)


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _call(world: ListWorld, who: str, path: str, params: dict[str, Any]) -> tuple[list[str], int]:
    engine: Engine = world.api.client.app.state.ctx.engine  # type: ignore[attr-defined]
    world.get(who, path, **params)  # warm: first-use lookups (caches) are not the list's cost
    with counted(engine) as statements:
        body = world.get(who, path, **params).json()
    rows = body if isinstance(body, list) else body["items"]
    return statements, len(rows)


@pytest.mark.parametrize(
    ("who", "path", "params", "per_grow"), [pytest.param(*p[1:], id=p[0]) for p in PAGES]
)
def test_a_list_costs_the_same_statements_for_3_rows_and_for_30(
    quiet_api: Api, who: str, path: str, params: dict[str, Any], per_grow: int | None
) -> None:
    world = build(quiet_api)
    world.grow(3)
    few, listed_few = _call(world, who, path, params)
    world.grow(27)
    many, listed_many = _call(world, who, path, params)
    if per_grow is not None:  # the page really grew by the rows added
        assert listed_many - listed_few == 27 * per_grow
    else:
        assert listed_many > listed_few
    assert len(many) == len(few), (
        f"{path} {params}: {len(few)} statements for {listed_few} rows, {len(many)} for "
        f"{listed_many}; the first ones: {[s[:80] for s in many[: len(few) + 5]]}"
    )
