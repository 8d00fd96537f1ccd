"""A re-sync that finds nothing new reports 0 created / 0 updated / 0 removed and writes no
resource row (issue 19 item 6): unchanged records are compared, not rewritten, and the sweep
needs no per-row "seen" stamp. Through the connector protocol over HTTP, on both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.fixtures.api import Api
from tests.integrations.connector_driver import Driver, account, directory

WRITE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?resources\"?\s", re.I)


@contextmanager
def resource_writes(api: Api) -> Iterator[list[str]]:
    """Every INSERT, UPDATE and DELETE statement on the resources table while inside."""
    engine = api.client.app.state.ctx.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if WRITE.match(statement):
            seen.append(statement.split("\n", 1)[0])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _totals(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for per_type in counts.values():
        for what, n in per_type.items():
            out[what] = out.get(what, 0) + n
    return out


def _org() -> list[dict[str, Any]]:
    return [
        account("111111111111", buckets=("a1", "a2", "a3"), tags={"owner": "platform"}),
        account("222222222222", buckets=("b1",)),
        account("333333333333", outcome="suspended", status="SUSPENDED"),
    ]


def test_a_no_change_resync_reports_nothing_changed_and_writes_no_resource_row(
    api: Api,
) -> None:
    d = Driver(api)
    d.create(integration_owners=[{"kind": "group", "value": "platform"}],
             resource_owner={"tag_key": "owner", "attribute": "group_name"})  # fmt: skip
    d.verify_ok()
    people = directory({"platform": ["alice"]}, ["alice"])
    with resource_writes(api) as first_writes:
        d.sync(_org(), directory=people)
    assert first_writes, "the first sync must insert the resources (the probe sees nothing?)"
    assert _totals(d.history()[0]["counts"]) == {"created": 7}

    with resource_writes(api) as writes:
        d.resync(_org(), directory=people)
    run = d.history()[0]
    assert run["state"] == "succeeded", run
    assert _totals(run["counts"]) == {"unchanged": 7}, run["counts"]
    assert writes == []

    # One real change is one UPDATE; a bucket gone is one DELETE; nothing else is written.
    changed = _org()
    changed[1] = account("222222222222", buckets=(), tags={"team": "data"})
    with resource_writes(api) as writes:
        d.resync(changed, directory=people)
    assert _totals(d.history()[0]["counts"]) == {"unchanged": 5, "updated": 1, "removed": 1}
    assert sorted(w.split()[0].upper() for w in writes) == ["DELETE", "UPDATE"], writes


def test_what_a_sync_could_not_read_is_kept_and_what_left_the_org_is_removed(api: Api) -> None:
    d = Driver(api)
    d.create()
    d.verify_ok()
    d.sync([account("111111111111", buckets=("a1", "a2")), account("222222222222")])
    # 111… could not be read this time (access denied): its buckets stay; 222… left the org.
    denied = account("111111111111", outcome="access_denied")
    denied["types_read"], denied["resources"] = [], []
    d.resync([denied])
    assert _totals(d.history()[0]["counts"]) == {"removed": 1}
    assert set(d.resources("s3-bucket")) == {"a1", "a2"}
    assert set(d.resources("aws-account")) == {"111111111111"}
    # Read again and complete: what it no longer has is removed with its batch.
    d.resync([account("111111111111", buckets=("a2",))])
    assert set(d.resources("s3-bucket")) == {"a2"}
