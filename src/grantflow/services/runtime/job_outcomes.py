"""What the control plane does when a connector job finishes (succeeds or gives up)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from grantflow.domain.connector_jobs import JobType, SyncResult, VerifyResult, result_as
from grantflow.domain.jobs import JobState
from grantflow.services.access import grant_jobs, policy_withdrawal, reconcile, session_cuts
from grantflow.services.audit import trail as audit
from grantflow.services.directory import identity_store
from grantflow.services.integrations import lifecycle as integrations
from grantflow.services.integrations import session_audit, sync_ingest
from grantflow.services.integrations.lifecycle import Status
from grantflow.store.models import Integration, Job


def _integration(session: Session, job: Job) -> Integration | None:
    integration_id = job.payload.get("integration_id")
    return session.get(Integration, integration_id) if integration_id else None


def _verify_finished(session: Session, job: Job, failed: bool) -> None:
    row = _integration(session, job)
    if row is None:
        return
    if failed:
        row.status = Status.ERROR
        row.status_message = job.last_error or "the connector could not verify the role"
        return
    actor = audit.Actor("connector", job.connector_id, "connector")
    result = result_as(VerifyResult, job.result)
    row.facts = {
        **row.facts,
        "organization_id": result.organization_id,
        "management_account_id": result.management_account_id,
    }
    unknown = result.unknown_exclude_ou_ids
    if unknown:  # said now; the first sync checks again and makes it a Warning
        row.status_message = (
            f"Exclude OU id(s) not in the organization: {', '.join(unknown)} — they exclude "
            "nothing; correct the Exclude OUs setting"
        )
    if row.enabled:
        integrations.request_sync(session, row, "create" if not row.last_sync_at else "verify",
                                  actor)  # fmt: skip


def _sync_finished(session: Session, job: Job, failed: bool) -> None:
    run_id = str(job.payload.get("sync_run_id", ""))
    if failed:
        sync_ingest.fail_sync(session, run_id, job.last_error or "sync failed")
        return
    summary = result_as(SyncResult, job.result)
    run, row = sync_ingest.run_of(session, run_id)
    actor = sync_ingest.connector_actor(row)
    sync_ingest.land_summary(session, run, row, summary)
    if summary.directory is not None:  # before owners are resolved against its users and groups
        identity_store.apply_identity_store_snapshot(session, summary.directory, actor)
    sync_ingest.close_run(session, run, row, summary)
    policy_withdrawal.end_access_in_inactive_accounts(session, row.id, run.accounts, actor)
    sync_ingest.record_synced(session, run, row)


def on_finished(session: Session, job: Job) -> None:
    if job.finished_at is None:
        return  # requeued for another attempt
    failed = job.state == JobState.FAILED.value
    actor = audit.Actor("connector", job.connector_id, "connector")
    data = {"job_id": job.id, "type": job.type, "attempts": job.attempts}
    if failed:
        data["error"] = job.last_error or ""
        audit.record(session, actor, f"job.{job.type}.failed", "job", job.id, data)
    if job.type == JobType.VERIFY:
        if not failed:
            audit.record(session, actor, "connector.verified", "connector", job.connector_id,
                         {**data, **(job.result or {})})  # fmt: skip
        _verify_finished(session, job, failed)
    elif job.type == JobType.SYNC:
        _sync_finished(session, job, failed)
    elif job.type == JobType.PLAN and job.payload.get("integration_id") and not failed:
        reconcile.finished(session, job)
    elif job.type == JobType.GRANT:
        grant_jobs.grant_finished(session, job, failed)
    elif job.type == JobType.REVOKE:
        grant_jobs.revoke_finished(session, job, failed)
    elif job.type == JobType.AUDIT_INGEST:
        session_audit.ingest_finished(session, job, failed)
    elif job.type == JobType.SESSION_CUTS:
        session_cuts.finished(session, job, failed)
