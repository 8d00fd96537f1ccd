"""Session audit from the organization trail: realistic CloudTrail files in the emulated S3
bucket, matched exactly to grants (user, permission set, account, time window), ingested
idempotently, and shown per request."""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.aws.session import ClientFactory
from grantflow.connector.handlers import JobContext, audit_ingest
from grantflow.demo.cloudtrail_files import SessionSpec, put_log_file, record, sso_role_name
from grantflow.demo.moto_server import MotoServer
from grantflow.domain.connector_jobs import AuditIngestPayload, result_dump
from grantflow.domain.jobs import JobState
from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.services.integrations import session_audit
from grantflow.services.runtime import job_outcomes
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import AccessRequest, Connector, Grant, Integration, Job, User
from grantflow.store.models_audit import AuditCursor, SessionAuditEvent
from grantflow.store.types import utcnow
from tests.fixtures.api import Api

ORG, BUCKET, REGION = "o-a1b2c3d4e5", "org-trail-o-a1b2c3d4e5", "us-east-1"
PROD, DATA, OTHER = "111111111111", "222222222222", "333333333333"
POOLED = "Grantflow-s3-4f1c2a9e-ro"
CONNECTOR = "gfc-sessionauditsessio"


@dataclass
class World:
    sessions: sessionmaker[Session]
    account_grant: str  # alice: ReadOnly in PROD, granted 3h ago, revoked 1h ago
    pooled_grant: str  # alice: the pooled S3 set in DATA, live since 2h ago
    request_id: str
    granted: datetime
    revoked: datetime
    pooled_since: datetime


def _world(sessions: sessionmaker[Session]) -> World:
    now = utcnow().replace(microsecond=0)
    granted, revoked, pooled_since = now - timedelta(hours=3), now - timedelta(hours=1), now - \
        timedelta(hours=2)  # fmt: skip
    with transaction(sessions) as s:
        alice = User(username="alice", email="alice@example.com")
        bob = User(username="bob", email="bob@example.com")
        connector = Connector(id=CONNECTOR, name="c", kind="managed", token_hash="s" * 64,
                              token_prefix="gf_con_s")  # fmt: skip
        s.add_all([alice, bob, connector])
        s.flush()
        integ = Integration(
            name="Org", type="aws-organization", connector_id=CONNECTOR,
            facts={"organization_id": ORG},
            config={"region": REGION, "sso_region": REGION,
                    "sso_portal": "https://d-1234567890.awsapps.com/start",
                    "management_role_arn": "arn:aws:iam::123456789012:role/GrantflowManagement",
                    "enable_audit": True, "audit_bucket": BUCKET},
        )  # fmt: skip
        s.add(integ)
        s.flush()
        base = {"instance_arn": "arn:aws:sso:::instance/ssoins-1", "identity_store_id": "d-1",
                "principal_id": "u-alice"}  # fmt: skip
        acct = AccessRequest(requester_id=alice.id, integration_id=integ.id,
                             resource_type="aws-account", permission="ReadOnly",
                             duration_seconds=7200, state="revoked")  # fmt: skip
        pooled = AccessRequest(requester_id=alice.id, integration_id=integ.id,
                               resource_type="s3-bucket", permission="read-only",
                               duration_seconds=14400, state="granted")  # fmt: skip
        s.add_all([acct, pooled])
        s.flush()
        g1 = Grant(request_id=acct.id, state="revoked", granted_at=granted, revoked_at=revoked,
                   spec={**base, "kind": "account_assignment", "account_id": PROD,
                         "permission_set_arn": "arn:aws:sso:::permissionSet/i/ps"})  # fmt: skip
        g2 = Grant(request_id=pooled.id, state="granted", granted_at=pooled_since,
                   expires_at=now + timedelta(hours=2),
                   spec={**base, "kind": "pooled_permission_set", "account_id": DATA},
                   handle={"permission_set_name": POOLED})  # fmt: skip
        s.add_all([g1, g2])
        s.flush()
        return World(sessions, g1.id, g2.id, acct.id, granted, revoked, pooled_since)


def _session(account: str, permission_set: str, who: str, w: World) -> SessionSpec:
    return SessionSpec(account, permission_set, who, w.granted, w.revoked)


def _iam_user_record(when: datetime) -> dict[str, Any]:
    """A long-term IAM user's call, as CloudTrail writes it (not an Identity Center session)."""
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAJ45Q7YFFAREXAMPLE",
                         "arn": f"arn:aws:iam::{PROD}:user/alice", "accountId": PROD,
                         "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "userName": "alice"},
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets", "awsRegion": REGION, "sourceIPAddress": "203.0.113.9",
        "userAgent": "aws-cli/2.15.30", "requestParameters": None, "responseElements": None,
        "requestID": "3a8e0d1c-0000-4000-8000-000000000001",
        "eventID": "3a8e0d1c-0000-4000-8000-0000000000aa", "readOnly": True,
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": PROD,
        "eventCategory": "Management",
    }  # fmt: skip


def _put_trail(w: World) -> set[tuple[str, str]]:
    """Write the trail; return the (grant, eventID) pairs that must match — nothing else may."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    alice_ro = _session(PROD, "ReadOnly", "alice@example.com", w)
    inside = w.granted + timedelta(minutes=30)
    match_1 = record(alice_ro, inside, "ec2.amazonaws.com", "DescribeInstances")
    match_2 = record(alice_ro, inside + timedelta(minutes=1), "iam.amazonaws.com", "CreateUser",
                     error_code="AccessDenied", read_only=False)  # fmt: skip
    by_username = record(_session(PROD, "ReadOnly", "Alice", w), inside, "s3.amazonaws.com",
                         "ListBuckets")  # session name = username, other case  # fmt: skip
    not_matching = [
        record(_session(PROD, "ReadOnly", "bob@example.com", w), inside, "s3.amazonaws.com",
               "ListBuckets"),  # another user, same role and window
        record(alice_ro, w.granted - timedelta(minutes=10), "s3.amazonaws.com", "ListBuckets"),
        record(alice_ro, w.revoked + timedelta(minutes=10), "s3.amazonaws.com", "ListBuckets"),
        record(_session(OTHER, "ReadOnly", "alice@example.com", w), inside, "s3.amazonaws.com",
               "ListBuckets"),  # another account
        record(_session(PROD, "AdministratorAccess", "alice@example.com", w), inside,
               "s3.amazonaws.com", "ListBuckets"),  # another permission set
        record(_session(PROD, "ReadOnly_Old", "alice@example.com", w), inside,
               "s3.amazonaws.com", "ListBuckets"),  # a name that only starts the same
        _iam_user_record(inside),
    ]  # fmt: skip
    pooled = SessionSpec(DATA, POOLED, "alice@example.com", w.pooled_since, utcnow())
    match_3 = record(pooled, w.pooled_since + timedelta(minutes=5), "s3.amazonaws.com",
                     "GetObject")  # fmt: skip
    day_file = inside.replace(second=0) + timedelta(minutes=5)
    put_log_file(s3, BUCKET, ORG, PROD, REGION, day_file,
                 [match_1, match_2, by_username, *not_matching[:3], not_matching[4],
                  not_matching[5], not_matching[6]])  # fmt: skip
    put_log_file(s3, BUCKET, ORG, PROD, "eu-west-1", w.revoked + timedelta(minutes=15),
                 [not_matching[2]])  # fmt: skip
    put_log_file(s3, BUCKET, ORG, OTHER, REGION, day_file, [not_matching[3]])
    put_log_file(s3, BUCKET, ORG, DATA, REGION, match_3_time(w), [match_3])
    s3.put_object(Bucket=BUCKET, Key=f"AWSLogs/{ORG}/{PROD}/CloudTrail-Digest/{REGION}/x.json.gz",
                  Body=gzip.compress(b"{}"))  # digest files are not logs  # fmt: skip
    assert sso_role_name("ReadOnly", PROD).startswith("AWSReservedSSO_ReadOnly_")
    return {
        (w.account_grant, match_1["eventID"]),
        (w.account_grant, match_2["eventID"]),
        (w.account_grant, by_username["eventID"]),
        (w.pooled_grant, match_3["eventID"]),
    }


def match_3_time(w: World) -> datetime:
    return w.pooled_since + timedelta(minutes=10)


def _run(w: World, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ingestion: enqueue (or replay ``payload``), run the connector handler against the
    emulated S3, and finish the job on the control plane as the protocol would."""
    with transaction(w.sessions) as s:
        if payload is None:
            integ = s.scalars(select(Integration)).one()
            job = session_audit.enqueue(s, integ)
            assert job is not None
            payload = dict(job.payload)
        else:
            job = Job(connector_id=CONNECTOR, type="audit_ingest", payload=payload)
            s.add(job)
            s.flush()
        job_id = job.id
    factory = ClientFactory(boto3.Session(region_name=REGION))
    typed = AuditIngestPayload.model_validate(payload)
    result = result_dump(audit_ingest(JobContext(connector_id=CONNECTOR, aws=factory), typed))
    with transaction(w.sessions) as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.state, job.result, job.finished_at = JobState.SUCCEEDED.value, result, utcnow()
        job_outcomes.on_finished(s, job)
    return payload


def _stored(w: World) -> set[tuple[str, str]]:
    with transaction(w.sessions) as s:
        return set(s.execute(select(SessionAuditEvent.grant_id, SessionAuditEvent.event_id)).all())


def test_matching_is_exact_and_ingestion_idempotent(
    aws: MotoServer, sessions: sessionmaker[Session]
) -> None:
    w = _world(sessions)
    expected = _put_trail(w)
    first = _run(w)
    assert _stored(w) == expected
    assert {m["grant_id"] for m in first["matchers"]} == {w.account_grant, w.pooled_grant}
    with transaction(sessions) as s:
        cursor = s.scalars(select(AuditCursor)).one()
        # the other account has no grant to match: its files are not even listed
        assert cursor.files_read == 3 and cursor.events_matched == 4
        assert set(cursor.cursor) == {f"AWSLogs/{ORG}/{acct}/CloudTrail/{region}/"
                                      for acct, region in ((PROD, REGION), (PROD, "eu-west-1"),
                                                           (DATA, REGION))}  # fmt: skip
        cursor.last_run_at = utcnow() - timedelta(hours=1)  # due again
    _run(w)  # the cursor says everything was read: nothing is read again
    _run(w, first)  # a replayed job re-reads the same files: nothing is added
    assert _stored(w) == expected
    with transaction(sessions) as s:
        assert s.scalars(select(AuditCursor)).one().events_matched == 4


def test_nothing_is_queued_without_audit_or_grants(
    aws: MotoServer, sessions: sessionmaker[Session]
) -> None:
    w = _world(sessions)
    with transaction(sessions) as s:
        assert session_audit.enqueue_due(s) == 1
        assert session_audit.enqueue_due(s) == 1  # the same job, still in flight (reused)
        assert len(s.scalars(select(Job)).all()) == 1
        integ = s.scalars(select(Integration)).one()
        integ.config = {**integ.config, "enable_audit": False, "audit_bucket": None}
        s.flush()
        assert session_audit.enqueue(s, integ) is None
    assert w.request_id


def test_session_audit_per_request_and_csv(api: Api, aws: MotoServer) -> None:
    engine = build_engine(api.settings.database_url)
    try:
        w = _world(session_factory(engine))
        expected = _put_trail(w)
        _run(w)
        assert len(_stored(w)) == len(expected)
        r = api.client.get(f"/api/v1/access-requests/{w.request_id}/session-audit",
                           headers=api.as_admin())  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["count"], body["errors"]) == (3, 1)
        services = {(c["name"], c["count"]) for c in body["services"]}
        assert services == {("ec2.amazonaws.com", 1), ("iam.amazonaws.com", 1),
                            ("s3.amazonaws.com", 1)}  # fmt: skip
        assert {c["name"] for c in body["error_codes"]} == {"AccessDenied"}
        assert body["first"] <= body["last"] and len(body["events"]) == 3
        r = api.client.get(f"/api/v1/access-requests/{w.request_id}/session-audit.csv",
                           headers=api.as_admin())  # fmt: skip
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert {row["event_name"] for row in rows} == {"DescribeInstances", "CreateUser",
                                                       "ListBuckets"}  # fmt: skip
        with transaction(session_factory(engine)) as s:
            alice = s.scalars(select(User).where(User.username == "alice")).one()
            bob = s.scalars(select(User).where(User.username == "bob")).one()
            alice_token = create_personal_token(s, alice, "t", SYSTEM).plaintext
            bob_token = create_personal_token(s, bob, "t", SYSTEM).plaintext
        path = f"/api/v1/access-requests/{w.request_id}/session-audit"
        as_alice = api.client.get(path, headers={"Authorization": f"Bearer {alice_token}"})
        assert as_alice.status_code == 200 and as_alice.json()["count"] == 3
        for sub in ("", ".csv"):
            r = api.client.get(path + sub, headers={"Authorization": f"Bearer {bob_token}"})
            assert r.status_code == 404  # bob neither asked nor approves
    finally:
        engine.dispose()


def test_unreadable_files_are_reported_and_skipped(
    aws: MotoServer, sessions: sessionmaker[Session]
) -> None:
    w = _world(sessions)
    expected = _put_trail(w)
    s3 = boto3.client("s3", region_name=REGION)
    when = w.granted + timedelta(minutes=50)
    s3.put_object(Bucket=BUCKET, Body=b"not gzip",
                  Key=f"AWSLogs/{ORG}/{PROD}/CloudTrail/{REGION}/{when:%Y/%m/%d}/"
                      f"{PROD}_CloudTrail_{REGION}_{when:%Y%m%dT%H%MZ}_broken.json.gz")  # fmt: skip
    _run(w)
    assert _stored(w) == expected
    with transaction(sessions) as s:
        assert "broken.json.gz" in (s.scalars(select(AuditCursor)).one().last_error or "")
