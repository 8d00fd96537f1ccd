"""The eligibility index follows ``resources`` (``store.resource_index``) on both backends:
written with an inserted resource, rewritten when its OUs, tags or account status change,
removed with it (and with its integration), rebuilt by ``reindex`` after a bulk insert, and
filled by migration 0012 from the resources synced before it. The eligibility generation's
token moves in the same transaction as every change the requestable listing reads, and only
then."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from grantflow.store.db import build_engine, transaction
from grantflow.store.migrate import upgrade
from grantflow.store.models import Connector, Integration, Resource
from grantflow.store.models_index import InactiveResource, ResourceOu, ResourceTag
from grantflow.store.resource_index import generation, reindex


def _integration(s: Session) -> str:
    s.add(Connector(id="gfc-indexindexindex00000", name="c", kind="self_hosted",
                    token_hash="i" * 64, token_prefix="i"))  # fmt: skip
    integ = Integration(name="org", type="aws-organization", resource_types=["s3-bucket"],
                        connector_id="gfc-indexindexindex00000", config={})  # fmt: skip
    s.add(integ)
    s.flush()
    return integ.id


def _index(s: Session) -> dict[str, Any]:
    return {
        "ous": sorted(
            tuple(r) for r in s.execute(select(ResourceOu.resource_id, ResourceOu.ou_id))
        ),
        "tags": sorted(
            tuple(r)
            for r in s.execute(select(ResourceTag.resource_id, ResourceTag.key, ResourceTag.value))
        ),
        "inactive": sorted(s.scalars(select(InactiveResource.resource_id))),
    }


def test_the_index_follows_every_write(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        integ = _integration(s)
        a = Resource(id="res-a", integration_id=integ, type="s3-bucket", aws_id="a",
                     account_id="111111111111", ou_path=["r-1", "ou-1", "ou-1"],
                     tags={"team": "red", "long": "x" * 600}, attributes={})  # fmt: skip
        s.add(a)
        s.flush()
        assert _index(s) == {
            "ous": [("res-a", "ou-1"), ("res-a", "r-1")],
            "tags": [("res-a", "long", None), ("res-a", "team", "red")],
            "inactive": [],
        }
        a.tags = {"team": "blue"}
        a.ou_path = ["r-1", "ou-2"]
        a.attributes = {"account_status": "SUSPENDED"}
        s.flush()
        assert _index(s) == {
            "ous": [("res-a", "ou-2"), ("res-a", "r-1")],
            "tags": [("res-a", "team", "blue")],
            "inactive": ["res-a"],
        }
        a.name = "renamed"  # nothing the index holds: not rewritten, still right
        s.flush()
        assert _index(s)["tags"] == [("res-a", "team", "blue")]
        s.delete(a)
        s.flush()
        assert _index(s) == {"ous": [], "tags": [], "inactive": []}


def test_bulk_writers_reindex_and_integration_delete_cascades(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        integ = _integration(s)
        s.execute(insert(Resource), [
            {"id": f"bulk-{i}", "integration_id": integ, "type": "s3-bucket", "aws_id": f"b{i}",
             "ou_path": ["r-1"], "tags": {"n": str(i)}, "attributes": {}, "owners": []}
            for i in range(3)
        ])  # fmt: skip
        assert _index(s)["tags"] == []  # a Core insert bypasses the unit of work...
        assert reindex(s) == 3  # ...so its writer rebuilds the index
        assert len(_index(s)["tags"]) == 3
        s.execute(delete(Integration).where(Integration.id == integ))
        assert _index(s) == {"ous": [], "tags": [], "inactive": []}


def test_the_generation_moves_with_every_change_the_listing_reads(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as s:
        integ = _integration(s)
    tokens = []

    def moved(change: Any) -> bool:
        with transaction(sessions) as s:
            before = generation(s.connection())
            change(s)
            s.flush()
            after = generation(s.connection())
        tokens.append(after)
        return after != before

    def add(s: Session) -> None:
        s.add(Resource(id="res-g", integration_id=integ, type="s3-bucket", aws_id="g",
                       account_id="111111111111", ou_path=["r-1"]))  # fmt: skip

    def row(s: Session) -> Resource:
        found = s.get(Resource, "res-g")
        assert found is not None
        return found

    assert moved(add)
    assert moved(lambda s: setattr(row(s), "name", "renamed"))
    assert moved(lambda s: setattr(row(s), "tags", {"team": "red"}))
    assert moved(lambda s: setattr(row(s), "ou_path", ["r-1", "ou-1"]))
    assert moved(lambda s: setattr(row(s), "attributes", {"account_status": "SUSPENDED"}))
    assert not moved(lambda s: setattr(row(s), "sync_generation", 9))  # not listed
    assert not moved(lambda s: setattr(row(s), "attributes",  # owners: not listed
                                       {"account_status": "SUSPENDED", "owner": "x"}))  # fmt: skip
    assert moved(lambda s: reindex(s, ["res-g"]))
    assert moved(lambda s: s.delete(row(s)))
    assert len(set(tokens)) == len(tokens) - 2  # a new token each time it moved
    with sessions() as s:  # a rolled-back change leaves the committed token
        committed = generation(s.connection())
        add(s)
        s.flush()
        assert generation(s.connection()) != committed
        s.rollback()
        assert generation(s.connection()) == committed


def test_migration_0012_fills_the_index_from_synced_resources(empty_db_url: str) -> None:
    engine: Engine = build_engine(empty_db_url)
    try:
        upgrade(engine, "0011")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO connectors (id, name, kind, token_hash, token_prefix, "
                              "created_at, updated_at) VALUES ('gfc-m', 'c', 'managed', 'h', 'p', "
                              "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))  # fmt: skip
            conn.execute(text("INSERT INTO integrations (id, name, type, connector_id, "
                              "resource_types, config, facts, status, enabled, created_at, "
                              "updated_at) VALUES ('i-1', 'org', 'aws-organization', 'gfc-m', "
                              "'[]', '{}', '{}', 'active', true, CURRENT_TIMESTAMP, "
                              "CURRENT_TIMESTAMP)"))  # fmt: skip
            conn.execute(text("INSERT INTO resources (id, integration_id, type, aws_id, name, "
                              "account_id, ou_path, tags, attributes, owners, sync_generation, "
                              "first_seen_at, last_seen_at) VALUES ('r-old', 'i-1', "
                              "'s3-bucket', 'old', 'old', '111111111111', '[\"r-1\", \"ou-9\"]', "
                              "'{\"team\": \"red\"}', '{\"account_status\": \"CLOSED\"}', '[]', 1, "
                              "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))  # fmt: skip
        upgrade(engine, "0012")
        with Session(engine) as s:
            assert _index(s) == {
                "ous": [("r-old", "ou-9"), ("r-old", "r-1")],
                "tags": [("r-old", "team", "red")],
                "inactive": ["r-old"],
            }
    finally:
        engine.dispose()
