"""Connectors: create (token shown once), rotate, delete, heartbeat, status, the confirmed
role, and the tokens that authenticate as a connector.

A heartbeat's reported AWS identity is kept as reported (``aws_identity_arn``) and never
becomes the role the template trusts; only :func:`confirm_role` (an admin) or the managed
connector's setting sets ``confirmed_role_arn``. A change of the reported role is audited as
``connector.identity_changed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grantflow.domain.connector_identity import role_of, same_identity
from grantflow.domain.ids import new_connector_id
from grantflow.domain.secrets import hash_token, issue_token, token_matches
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict, NotFound
from grantflow.store.models import Connector, ConnectorCredential, Integration
from grantflow.store.types import utcnow

log = structlog.get_logger(__name__)

CONNECTOR_TOKEN_PREFIX = "gf_con"  # noqa: S105 - a prefix, not a secret
HEARTBEAT_FRESH = timedelta(seconds=60)
CREDENTIAL_TOUCH = timedelta(seconds=60)  # last_used_at of a credential: at most once a minute


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
    session.execute(
        sql_delete(ConnectorCredential).where(ConnectorCredential.connector_id == connector.id)
    )
    session.delete(connector)


def heartbeat(session: Session, connector_id: str, reported: Reported) -> Connector:
    """Record a heartbeat. The reported identity is kept as reported (a heartbeat without one
    keeps the last known); it is compared with the previous one and with the confirmed role,
    and never changes the confirmed role."""
    connector = get(session, connector_id)
    previous = connector.aws_identity_arn
    connector.last_heartbeat_at = utcnow()
    connector.version = reported.version
    new = reported.aws_identity_arn
    if new is None:
        return connector
    connector.aws_identity_arn = new
    connector.aws_account_id = reported.aws_account_id
    if previous is not None and same_identity(previous, new):
        return connector
    actor = audit.Actor("connector", connector.id, "connector")
    data = {
        "aws_identity_arn": new,
        "reported_role_arn": role_of(new),
        "confirmed_role_arn": connector.confirmed_role_arn,
        "matches_confirmed": role_of(new) == connector.confirmed_role_arn,
        "version": reported.version,
    }
    if previous is None:
        audit.record(session, actor, "connector.connected", "connector", connector.id, data)
    else:
        log.warning(
            "connector_identity_changed",
            connector_id=connector.id,
            old_aws_identity_arn=previous,
            aws_identity_arn=new,
            confirmed_role_arn=connector.confirmed_role_arn,
        )
        audit.record(
            session,
            actor,
            "connector.identity_changed",
            "connector",
            connector.id,
            {"old_aws_identity_arn": previous, "old_role_arn": role_of(previous), **data},
        )
    return connector


def confirm_role(
    session: Session, connector_id: str, role_arn: str, actor: audit.Actor, confirmed_by: str
) -> Connector:
    """Make ``role_arn`` the role the template trusts (validated by the caller)."""
    connector = get(session, connector_id)
    previous = connector.confirmed_role_arn
    reported = role_of(connector.aws_identity_arn)
    connector.confirmed_role_arn = role_arn
    connector.confirmed_by = confirmed_by
    connector.confirmed_at = utcnow()
    audit.record(
        session,
        actor,
        "connector.role_confirmed",
        "connector",
        connector.id,
        {
            "role_arn": role_arn,
            "previous_role_arn": previous,
            "reported_role_arn": reported,
            "matches_reported": reported == role_arn,
            "confirmed_by": confirmed_by,
        },
    )
    return connector


def withdraw_role(session: Session, connector_id: str, actor: audit.Actor) -> Connector:
    """No confirmed role: the template shows a placeholder until one is confirmed."""
    connector = get(session, connector_id)
    previous = connector.confirmed_role_arn
    if previous is None:
        return connector
    connector.confirmed_role_arn = connector.confirmed_by = connector.confirmed_at = None
    audit.record(
        session,
        actor,
        "connector.role_withdrawn",
        "connector",
        connector.id,
        {"previous_role_arn": previous},
    )
    return connector


def by_token(session: Session, plaintext: str) -> Connector | None:
    """The connector a bearer secret belongs to: its own token, or one of its credentials
    (each managed-connector replica has one). None when the secret is nobody's."""
    digest = hash_token(plaintext)
    connector = session.scalar(select(Connector).where(Connector.token_hash == digest))
    if connector is not None and token_matches(plaintext, connector.token_hash):
        return connector
    credential = session.scalar(
        select(ConnectorCredential).where(ConnectorCredential.token_hash == digest)
    )
    if credential is None or not token_matches(plaintext, credential.token_hash):
        return None
    now = utcnow()
    if credential.last_used_at is None or now - credential.last_used_at >= CREDENTIAL_TOUCH:
        credential.last_used_at = now
    return session.get(Connector, credential.connector_id)


def credentials_of(session: Session, connector_id: str) -> list[ConnectorCredential]:
    return list(
        session.scalars(
            select(ConnectorCredential)
            .where(ConnectorCredential.connector_id == connector_id)
            .order_by(ConnectorCredential.holder)
        )
    )
