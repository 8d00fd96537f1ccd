"""Connectors: create (token shown once), rotate, delete, heartbeat and status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grantflow.domain.ids import new_connector_id
from grantflow.domain.secrets import issue_token
from grantflow.services import audit
from grantflow.services.errors import Conflict, NotFound
from grantflow.store.models import Connector, Integration
from grantflow.store.types import utcnow

CONNECTOR_TOKEN_PREFIX = "gf_con"  # noqa: S105 - a prefix, not a secret
HEARTBEAT_FRESH = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Reported:
    version: str
    aws_identity_arn: str | None
    aws_account_id: str | None


def status_of(connector: Connector, now: datetime | None = None) -> str:
    seen = connector.last_heartbeat_at
    if seen is None:
        return "never_connected"
    return "connected" if (now or utcnow()) - seen <= HEARTBEAT_FRESH else "disconnected"


def get(session: Session, connector_id: str) -> Connector:
    connector = session.get(Connector, connector_id)
    if connector is None:
        raise NotFound(f"no connector {connector_id}")
    return connector


def create(session: Session, name: str, kind: str, actor: audit.Actor) -> tuple[Connector, str]:
    if session.scalar(select(Connector.id).where(Connector.name == name)):
        raise Conflict(f"a connector named {name!r} already exists", field="name")
    issued = issue_token(CONNECTOR_TOKEN_PREFIX)
    connector = Connector(
        id=new_connector_id(),
        name=name,
        kind=kind,
        token_hash=issued.token_hash,
        token_prefix=issued.prefix,
    )
    session.add(connector)
    session.flush()
    audit.record(
        session, actor, "connector.created", "connector", connector.id, {"name": name, "kind": kind}
    )
    return connector, issued.plaintext


def rotate_token(session: Session, connector_id: str, actor: audit.Actor) -> str:
    connector = get(session, connector_id)
    issued = issue_token(CONNECTOR_TOKEN_PREFIX)
    connector.token_hash = issued.token_hash
    connector.token_prefix = issued.prefix
    audit.record(session, actor, "connector.token_rotated", "connector", connector.id)
    return issued.plaintext


def delete(session: Session, connector_id: str, actor: audit.Actor) -> None:
    connector = get(session, connector_id)
    used_by = session.scalar(
        select(func.count())
        .select_from(Integration)
        .where(Integration.connector_id == connector.id)
    )
    if used_by:
        raise Conflict(
            f"connector {connector.id} serves {used_by} integration(s); move or delete them first"
        )
    audit.record(
        session, actor, "connector.deleted", "connector", connector.id, {"name": connector.name}
    )
    session.delete(connector)


def heartbeat(session: Session, connector_id: str, reported: Reported) -> Connector:
    connector = get(session, connector_id)
    first = connector.last_heartbeat_at is None
    identity_changed = reported.aws_identity_arn != connector.aws_identity_arn
    connector.last_heartbeat_at = utcnow()
    connector.version = reported.version
    connector.aws_identity_arn = reported.aws_identity_arn
    connector.aws_account_id = reported.aws_account_id
    if first or identity_changed:
        audit.record(
            session,
            audit.Actor("connector", connector.id, "connector"),
            "connector.connected",
            "connector",
            connector.id,
            {"aws_identity_arn": reported.aws_identity_arn, "version": reported.version},
        )
    return connector
