"""The resources page's search through migration 0017's trigram indexes, on both backends:
the same answers as testing every resource (name or AWS id contains the text, ASCII case
ignored, ``%`` and ``_`` still patterns), following every insert, rename and delete, filled
by the migration from resources synced before it, and actually used (SQLite: the FTS5 table
names the candidates; PostgreSQL: the ``pg_trgm`` indexes exist)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.access import resource_lists
from grantflow.services.access.resource_lists import ResourceFilter
from grantflow.store.db import build_engine, transaction
from grantflow.store.migrate import upgrade
from grantflow.store.models import Connector, Integration, Resource

WORDS = ("Billing", "ledger", "search", "ORDERS", "pay_ments", "repörts", "api")


def _integration(s: Session) -> str:
    s.add(Connector(id="gfc-searchsearchsearch00", name="c", kind="self_hosted",
                    token_hash="s" * 64, token_prefix="s"))  # fmt: skip
    integ = Integration(name="org", type="aws-organization", resource_types=["s3-bucket"],
                        connector_id="gfc-searchsearchsearch00", config={})  # fmt: skip
    s.add(integ)
    s.flush()
    return integ.id


def _resource(integration_id: str, i: int, name: str) -> dict[str, Any]:
    return {"id": f"r-{i:05d}", "integration_id": integration_id, "type": "s3-bucket",
            "aws_id": f"bucket-{i:05d}", "name": name, "account_id": f"{i % 7:012d}",
            "ou_path": [], "tags": {}, "attributes": {}, "owners": [],
            "sync_generation": 1}  # fmt: skip


def _expected(s: Session, q: str) -> list[str]:
    """Every resource tested in Python: SQLite's LIKE (ASCII case only) / PostgreSQL's ILIKE."""
    folded = s.get_bind().dialect.name == "postgresql"
    rows = s.execute(select(Resource.id, Resource.name, Resource.aws_id, Resource.type,
                            Resource.account_id)).all()  # fmt: skip

    def low(value: str) -> str:
        return value.lower() if folded else value.translate(ASCII_LOWER)

    pattern = re.compile(
        "".join("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in low(q)), re.S
    )
    hits = [r for r in rows if pattern.search(low(r.name)) or pattern.search(low(r.aws_id))]
    return [r.id for r in sorted(hits, key=lambda r: (r.type, r.account_id, r.name, r.id))]


ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _found(s: Session, q: str, limit: int = 500) -> tuple[list[str], int]:
    got = resource_lists.page(s, ResourceFilter(q=q), 0, limit)
    return [r.id for r in got.rows], got.total


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


QUERIES = ("ledger", "LEDGER", "edg", "bucket-0001", "pay_m", "pay%nts", "ay_", "rts", "ö",
           "repö", "REPÖ", "a", "zz-none", '"quoted', "ders-")  # fmt: skip


def test_search_answers_as_testing_every_resource_and_follows_writes(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    rng = random.Random(5)
    with transaction(sessions) as s:
        integration_id = _integration(s)
        s.execute(insert(Resource), [
            _resource(integration_id, i, f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}")
            for i in range(300)
        ])  # fmt: skip
    with transaction(sessions) as s:
        for q in QUERIES:
            ids, total = _found(s, q)
            assert ids == _expected(s, q), q
            assert total == len(ids), q
        assert _found(s, "ledger")[0], "the world has matches"
    # a rename, a new resource and a delete are seen by the next search
    with transaction(sessions) as s:
        renamed = s.get(Resource, "r-00007")
        assert renamed is not None
        old = renamed.name
        renamed.name = "quasar-unique"
        s.add(Resource(**_resource(integration_id, 900, "nebula-unique")))
        s.execute(delete(Resource).where(Resource.id == "r-00008"))
        gone = "r-00008"
    with transaction(sessions) as s:
        assert _found(s, "quasar-uni")[0] == ["r-00007"]
        assert _found(s, "nebula-uni")[0] == ["r-00900"]
        assert "r-00007" not in _found(s, old)[0]
        assert gone not in _found(s, "bucket-00008")[0]
        assert _found(s, "bucket-00008") == ([], 0)
        for q in QUERIES:
            assert _found(s, q)[0] == _expected(s, q), q


def test_a_search_of_many_matches_pages_in_index_order_with_the_same_answer(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with transaction(sessions) as s:
        integration_id = _integration(s)
        s.execute(
            insert(Resource), [_resource(integration_id, i, f"common-{i}") for i in range(60)]
        )
    monkeypatch.setattr(resource_lists, "DENSE", 10)
    with transaction(sessions) as s:
        expected = _expected(s, "common")
        assert len(expected) == 60
        pages = [resource_lists.page(s, ResourceFilter(q="common"), o, 25) for o in (0, 25, 50)]
        assert [r.id for p in pages for r in p.rows] == expected
        assert {p.total for p in pages} == {60}


def test_the_trigram_index_is_what_answers(sessions: sessionmaker[Session], engine: Engine) -> None:
    with transaction(sessions) as s:
        integration_id = _integration(s)
        s.execute(insert(Resource), [_resource(integration_id, i, f"alpha-{i}") for i in range(5)])
    with transaction(sessions) as s, statements(engine) as seen:
        assert _found(s, "alpha-3")[0] == ["r-00003"]
        if engine.dialect.name == "sqlite":
            assert any("resources_search MATCH" in sql for sql in seen)
        else:
            names = set(s.scalars(text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'resources'")))  # fmt: skip
            assert {"ix_resources_search_name", "ix_resources_search_aws_id"} <= names


def test_migration_0017_indexes_the_resources_synced_before_it(empty_db_url: str) -> None:
    engine = build_engine(empty_db_url)
    try:
        upgrade(engine, "0016")
        sessions = sessionmaker(engine)
        with transaction(sessions) as s:
            integration_id = _integration(s)
            s.execute(
                insert(Resource), [_resource(integration_id, i, f"old-{i}") for i in range(4)]
            )
        upgrade(engine, "0017")
        with transaction(sessions) as s, statements(engine) as seen:
            assert _found(s, "old-2") == (["r-00002"], 1)
            assert _found(s, "ucket-0000")[1] == 4
            if engine.dialect.name == "sqlite":
                assert any("resources_search MATCH" in sql for sql in seen)
    finally:
        engine.dispose()
