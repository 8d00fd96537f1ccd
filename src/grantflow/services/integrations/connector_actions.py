"""The connector use cases admins call, each owning its transaction: create (the token is
answered once), list, show, rotate the token, delete, confirm or withdraw the role the
template trusts, ask for a verify or a ping job, list its jobs, and what the CloudFormation
template is built from.

A connector is answered as a ``ConnectorView``: the row and what its public form shows next
to it (who confirmed its role, its replicas' credentials, its latest verify job), read in
the transaction that changed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.connector_jobs import JobType, PingPayload, VerifyPayload, payload_for
from grantflow.services.audit import trail as audit
from grantflow.services.integrations import connectors
from grantflow.services.jobs import queue as jobs
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import Connector, ConnectorCredential, Integration, Job, User


@dataclass(frozen=True)
class ConnectorView:
    connector: Connector
    confirmed_by: str | None  # the confirming admin's username, or the setting
    credentials: list[ConnectorCredential] = field(default_factory=list)
    last_verification: Job | None = None


def _confirmer(session: Session | None, confirmed_by: str | None) -> str | None:
    kind, _, ident = (confirmed_by or "").partition(":")
    if kind == "user" and session is not None:
        user = session.get(User, ident)
        return user.username if user is not None else confirmed_by
    return ident or confirmed_by


def _latest_verification(session: Session, connector_id: str) -> Job | None:
    return session.scalar(
        select(Job)
        .where(Job.connector_id == connector_id, Job.type == JobType.VERIFY)
        .order_by(Job.created_at.desc())
        .limit(1)
    )


def _view(session: Session, row: Connector) -> ConnectorView:
    return ConnectorView(
        row,
        _confirmer(session, row.confirmed_by),
        connectors.credentials_of(session, row.id),
        _latest_verification(session, row.id),
    )


def create(
    sessions: sessionmaker[Session], name: str, kind: str, actor: audit.Actor
) -> tuple[ConnectorView, str]:
    """The new connector (its own fields only) and its token."""
    with transaction(sessions) as session:
        row, token = connectors.create(session, name, kind, actor)
        return ConnectorView(row, _confirmer(None, row.confirmed_by)), token


def listed(sessions: sessionmaker[Session]) -> list[ConnectorView]:
    """Every connector, by name."""
    with read_transaction(sessions) as session:
        rows = session.scalars(select(Connector).order_by(Connector.name)).all()
        return [_view(session, r) for r in rows]


def show(sessions: sessionmaker[Session], connector_id: str) -> ConnectorView:
    with read_transaction(sessions) as session:
        return _view(session, connectors.get(session, connector_id))


def rotate_token(
    sessions: sessionmaker[Session], connector_id: str, actor: audit.Actor
) -> tuple[ConnectorView, str]:
    with transaction(sessions) as session:
        token = connectors.rotate_token(session, connector_id, actor)
        return _view(session, connectors.get(session, connector_id)), token


def delete(sessions: sessionmaker[Session], connector_id: str, actor: audit.Actor) -> None:
    with transaction(sessions) as session:
        connectors.delete(session, connector_id, actor)


def verify(
    sessions: sessionmaker[Session], connector_id: str, role_arn: str, actor: audit.Actor
) -> Job:
    """Queue a verify job: the connector assumes ``role_arn`` (external id = connector id)
    and describes the organization. Audited as ``connector.verify_requested``."""
    with transaction(sessions) as session:
        connector = connectors.get(session, connector_id)
        payload = VerifyPayload(role_arn=role_arn, external_id=connector.id)
        job = jobs.enqueue(
            session,
            connector.id,
            JobType.VERIFY,
            payload_for(JobType.VERIFY, payload),
            max_attempts=3,
        )
        audit.record(session, actor, "connector.verify_requested", "connector", connector.id,
                     {"role_arn": role_arn, "job_id": job.id})  # fmt: skip
        return job


def ping(sessions: sessionmaker[Session], connector_id: str, delay_seconds: float) -> Job:
    """Queue a round-trip job; it succeeds when the connector answers."""
    with transaction(sessions) as session:
        connector = connectors.get(session, connector_id)
        payload = payload_for(JobType.PING, PingPayload(delay_seconds=delay_seconds))
        return jobs.enqueue(session, connector.id, JobType.PING, payload, max_attempts=3)


def jobs_of(
    sessions: sessionmaker[Session], connector_id: str, state: str | None, limit: int
) -> list[Job]:
    """The connector's jobs, newest first (only those in ``state`` if given)."""
    with read_transaction(sessions) as session:
        connectors.get(session, connector_id)
        query = select(Job).where(Job.connector_id == connector_id)
        if state:
            query = query.where(Job.state == state)
        return list(session.scalars(query.order_by(Job.created_at.desc()).limit(limit)).all())


def _audit_bucket_in_use(session: Session, connector_id: str) -> str:
    """The trail bucket of this connector's integration with Enable Audit on ('' if none)."""
    rows = session.scalars(select(Integration.config).where(
        Integration.connector_id == connector_id, Integration.enabled.is_(True),
    ).order_by(Integration.created_at))  # fmt: skip
    for config in rows:
        if config.get("enable_audit") and config.get("audit_bucket"):
            return str(config["audit_bucket"])
    return ""


def template_inputs(
    sessions: sessionmaker[Session], connector_id: str, audit_bucket: str | None
) -> tuple[ConnectorView, str]:
    """What the connector's CloudFormation template is built from: the connector (its
    confirmed role) and the trail bucket — ``audit_bucket`` if given, else the one in use."""
    with read_transaction(sessions) as session:
        row = connectors.get(session, connector_id)
        view = ConnectorView(row, _confirmer(session, row.confirmed_by))
        if audit_bucket is None:
            audit_bucket = _audit_bucket_in_use(session, row.id)
        return view, audit_bucket


def confirm_role(
    sessions: sessionmaker[Session],
    connector_id: str,
    role_arn: str,
    actor: audit.Actor,
    confirmed_by: str,
) -> ConnectorView:
    with transaction(sessions) as session:
        row = connectors.confirm_role(
            session, connector_id, role_arn, actor, confirmed_by=confirmed_by
        )
        return _view(session, row)


def withdraw_role(
    sessions: sessionmaker[Session], connector_id: str, actor: audit.Actor
) -> ConnectorView:
    with transaction(sessions) as session:
        return _view(session, connectors.withdraw_role(session, connector_id, actor))
