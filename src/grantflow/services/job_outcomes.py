"""What the control plane does when a connector job finishes (succeeds or gives up)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from grantflow.domain.jobs import JobState
from grantflow.services import audit
from grantflow.store.models import Job


def on_finished(session: Session, job: Job) -> None:
    if job.finished_at is None:
        return  # requeued for another attempt
    actor = audit.Actor("connector", job.connector_id, "connector")
    data = {"job_id": job.id, "type": job.type, "attempts": job.attempts}
    if job.state == JobState.FAILED.value:
        data["error"] = job.last_error or ""
        audit.record(session, actor, f"job.{job.type}.failed", "job", job.id, data)
    elif job.type == "verify":
        audit.record(
            session,
            actor,
            "connector.verified",
            "connector",
            job.connector_id,
            {**data, **(job.result or {})},
        )
