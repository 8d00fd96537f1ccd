"""Session audit: ask the connector for CloudTrail events made with grants, keep them once.

The control plane sends the connector the grants whose sessions to look for (a snapshot taken
``as_of`` now): every grant of the integration that is live, or that ended within the
look-back (CloudTrail delivers files minutes after the calls). It gets back only matching
events and the new cursor. Events are stored once by CloudTrail's eventID, so reading the
same files again (a retried job, an overlapping run) adds nothing. Stored events form their own
keyed hash chain (``domain.audit_chain``), verified with the activity log's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, or_, select
from sqlalchemy.orm import Session

from grantflow.domain.audit_chain import (
    GENESIS_HASH,
    event_hash,
    keyed_fields,
    session_event_fields,
)
from grantflow.domain.cloudtrail_match import GrantMatcher
from grantflow.domain.connector_jobs import (
    AuditIngestPayload,
    AuditIngestResult,
    JobType,
    payload_for,
    result_as,
    result_dump,
)
from grantflow.services.audit import trail as audit
from grantflow.services.integrations import lifecycle as integrations
from grantflow.services.jobs import queue as jobs
from grantflow.settings import Settings
from grantflow.store.models import AccessRequest, Grant, Integration, Job, User, new_id
from grantflow.store.models_audit import AuditCursor, SessionAuditEvent
from grantflow.store.types import utcnow

JOB_TYPE = JobType.AUDIT_INGEST
INTERVAL_SECONDS = 300  # how often each integration's trail is read
LOOKBACK = timedelta(hours=6)  # grants that ended this long ago are still matched
MAX_RAW_BYTES = 16_384  # a record larger than this is kept without its request/response


def audit_enabled(row: Integration) -> bool:
    config = row.config or {}
    return bool(config.get("enable_audit") and config.get("audit_bucket"))


def _cursor(session: Session, integration_id: str) -> AuditCursor:
    row = session.get(AuditCursor, integration_id, with_for_update=True)
    if row is None:
        row = AuditCursor(integration_id=integration_id, cursor={}, files_read=0,
                          events_matched=0)  # fmt: skip
        session.add(row)
        session.flush()
    return row


def _grant_access(grant: Grant, request: AccessRequest) -> tuple[str, str] | None:
    """(account, permission set name) a grant's sessions run under; None for memberships."""
    spec, handle = grant.spec or {}, grant.handle or {}
    account = spec.get("account_id")
    name: object
    if spec.get("kind") == "account_assignment":
        name = request.permission
    elif spec.get("kind") == "pooled_permission_set":
        name = handle.get("permission_set_name")
    else:
        return None
    return (str(account), str(name)) if account and name else None


def _end(grant: Grant) -> datetime | None:
    if grant.revoked_at is not None:
        return grant.revoked_at
    return None if grant.state in ("granted", "revoking") else grant.expires_at


def matchers(session: Session, row: Integration, since: datetime) -> list[GrantMatcher]:
    query = (
        select(Grant, AccessRequest, User)
        .join(AccessRequest, AccessRequest.id == Grant.request_id)
        .join(User, User.id == AccessRequest.requester_id)
        .where(AccessRequest.integration_id == row.id)
        .where(Grant.granted_at.is_not(None))
        .where(or_(Grant.revoked_at.is_(None), Grant.revoked_at >= since))
    )
    found = []
    for grant, request, user in session.execute(query):
        access, end = _grant_access(grant, request), _end(grant)
        if access is None or grant.granted_at is None or (end is not None and end < since):
            continue
        names = tuple(sorted({n.lower() for n in (user.username, user.email) if n}))
        found.append(GrantMatcher(grant_id=grant.id, account_id=access[0],
                                  permission_set_name=access[1], session_names=names,
                                  start=grant.granted_at, end=end))  # fmt: skip
    return found


LIMIT_KEYS = ("max_object_bytes", "max_records")  # aws/cloudtrail.py IngestRequest
MAX_SKIPPED_LISTED = 20  # files named in one session_audit.files_skipped event


def payload_limits(settings: Settings) -> dict[str, int]:
    """The connector's per-file limits (decompressed bytes, records), sent in every job."""
    return {"max_object_bytes": settings.cloudtrail_max_object_bytes,
            "max_records": settings.cloudtrail_max_records_per_object}  # fmt: skip


def enqueue(
    session: Session,
    row: Integration,
    now: datetime | None = None,
    limits: Mapping[str, int] | None = None,
) -> Job | None:
    """Queue an ingestion run for ``row`` (reusing one still in flight); None when audit is
    off, the organization is unknown yet, or no grant needs matching. ``limits``
    (``payload_limits``) bound what the connector reads of each file."""
    if not row.enabled or not audit_enabled(row) or not (row.facts or {}).get("organization_id"):
        return None
    now = now or utcnow()
    cursor = _cursor(session, row.id)
    since = min(now - LOOKBACK, (cursor.last_run_at or now) - timedelta(hours=1))
    found = matchers(session, row, since)
    if not found:
        return None
    config = integrations.config_of(row)
    payload = payload_for(JOB_TYPE, AuditIngestPayload(
        integration_id=row.id, bucket=config.audit_bucket,
        organization_id=row.facts["organization_id"], region=config.region,
        matchers=found, cursor=cursor.cursor,
        as_of=now, management_role_arn=config.management_role_arn,
        external_id=row.connector_id, **(limits or {}),
    ))  # fmt: skip
    return jobs.enqueue(session, row.connector_id, JOB_TYPE, payload,
                        idempotency_key=f"{JOB_TYPE}:{row.id}", max_attempts=3)  # fmt: skip


def enqueue_due(session: Session, limits: Mapping[str, int] | None = None) -> int:
    """Queue ingestion for every audit-enabled integration not read for ``INTERVAL_SECONDS``."""
    due_before = utcnow() - timedelta(seconds=INTERVAL_SECONDS)
    started = 0
    for row in session.scalars(select(Integration).where(Integration.enabled.is_(True))):
        if not audit_enabled(row):
            continue
        last = session.scalar(
            select(AuditCursor.last_run_at).where(AuditCursor.integration_id == row.id)
        )
        if (last is None or last <= due_before) and enqueue(session, row, limits=limits):
            started += 1
    return started


def _trimmed(raw: dict[str, Any]) -> dict[str, Any]:
    if len(repr(raw)) <= MAX_RAW_BYTES:
        return raw
    return {k: v for k, v in raw.items() if k not in ("requestParameters", "responseElements")}


def store(session: Session, matches: Iterable[dict[str, Any]]) -> int:
    """Insert matched events, skipping eventIDs already stored, each chained onto the session
    audit's hash chain (under the audit chain's lock); returns how many were new."""
    rows = [{
        "id": new_id(), "grant_id": m["grant_id"],
        "event_id": m["event_id"], "event_time": datetime.fromisoformat(m["event_time"]),
        "event_source": m["event_source"][:128], "event_name": m["event_name"][:128],
        "error_code": (m.get("error_code") or None), "account_id": m["account_id"],
        "source_ip": (m.get("source_ip") or "")[:64] or None, "raw": _trimmed(m["raw"]),
        "ingested_at": utcnow(),
    } for m in matches]  # fmt: skip
    if not rows:
        return 0
    audit.lock_chain(session)  # one appender at a time, so "new" and the head stay true
    rows = _new_rows(session, rows)
    if not rows:
        return 0
    _chain(session, rows)
    table = cast(Table, SessionAuditEvent.__table__)
    for start in range(0, len(rows), 200):
        session.connection().execute(table.insert(), rows[start : start + 200])
    return len(rows)


def _new_rows(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows whose grant still exists and whose eventID is not stored yet (first of each)."""
    grant_ids = {r["grant_id"] for r in rows}
    known = set(session.scalars(select(Grant.id).where(Grant.id.in_(grant_ids))))
    event_ids = list({r["event_id"] for r in rows})
    stored: set[str] = set()
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        query = select(SessionAuditEvent.event_id).where(SessionAuditEvent.event_id.in_(chunk))
        stored |= set(session.scalars(query))
    fresh = []
    for row in rows:
        if row["grant_id"] in known and row["event_id"] not in stored:  # a grant removed meanwhile
            stored.add(row["event_id"])
            fresh.append(row)
    return fresh


def _chain(session: Session, rows: list[dict[str, Any]]) -> None:
    """Give each row its place on the session audit chain: seq, previous hash, (keyed) hash."""
    head = session.execute(
        select(SessionAuditEvent.chain_seq, SessionAuditEvent.hash)
        .order_by(SessionAuditEvent.chain_seq.desc()).limit(1)
    ).first()  # fmt: skip
    seq, prev = (head[0], head[1]) if head else (0, GENESIS_HASH)
    key = audit.keyring_of(session).current
    key_id = key.key_id if key else None
    for row in rows:
        seq += 1
        fields = keyed_fields(session_event_fields(row), key_id)
        digest = event_hash(prev, fields, key.chain_key if key else None)
        row.update(chain_seq=seq, prev_hash=prev, hash=digest, key_id=key_id)
        prev = digest


def ingest_finished(session: Session, job: Job, failed: bool) -> None:
    """Store what an ``audit_ingest`` job found and move the cursor forward."""
    integration_id = str(job.payload.get("integration_id", ""))
    if session.get(Integration, integration_id) is None:
        return
    cursor = _cursor(session, integration_id)
    cursor.last_run_at = utcnow()
    if failed:
        cursor.last_error = job.last_error
        return
    typed = result_as(AuditIngestResult, job.result)
    matches = typed.matches
    result = {k: v for k, v in result_dump(typed).items() if k != "matches"}
    added = store(session, matches)
    moved = dict(cursor.cursor)
    for prefix, key in typed.cursor.items():
        moved[prefix] = max(moved.get(prefix, ""), str(key))  # never backwards
    cursor.cursor = moved
    skipped = list(typed.unreadable)
    cursor.last_error = "; ".join(skipped) or None
    if skipped:  # broken or over a limit (a gzip bomb): the admin must know what was not read
        audit.record(session, audit.Actor("connector", job.connector_id, "connector"),
                     "session_audit.files_skipped", "integration", integration_id,
                     {"job_id": job.id, "count": len(skipped),
                      "files": skipped[:MAX_SKIPPED_LISTED]})  # fmt: skip
    cursor.files_read += typed.files_read
    cursor.events_matched += added
    job.result = {**result, "matched": len(matches), "added": added}  # keep jobs small
    if added:
        actor = audit.Actor("connector", job.connector_id, "connector")
        audit.record(session, actor, "session_audit.ingested", "integration", integration_id,
                     {"job_id": job.id, "files_read": typed.files_read,
                      "events_added": added})  # fmt: skip
    if typed.more:
        row = session.get(Integration, integration_id)
        if row is not None:
            limits = {k: int(job.payload[k]) for k in LIMIT_KEYS if k in job.payload}
            enqueue(session, row, limits=limits)
