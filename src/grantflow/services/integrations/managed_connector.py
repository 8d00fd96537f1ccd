"""The managed connector's identity: one connector row, one credential per server replica.

Every replica runs its own managed connector, and all of them serve the one ``managed``
connector row (integrations and jobs point at its id). Each replica gets its own credential
at start (``connector_credentials``; ``holder`` = host name and port): a start replaces only
that replica's earlier credential, so a second replica starting never ends the first one's.
The plaintext never leaves the server process and is never logged: it is handed to the
in-process agent, which speaks the same HTTP protocol as a self-hosted connector. Only its
SHA-256 is stored. Credentials no replica has used for ``IDLE_LIMIT`` (replicas that are gone)
are deleted at the next start of any replica.

Why not one secret shared by every replica (a setting, or one derived from another secret)?
It would be one more secret to distribute and rotate together, a leak could not be cut off
for one replica alone, and deriving it from the audit key would hand the connector's
credential to everyone who verifies the audit log.
"""

from __future__ import annotations

import re
import socket
from datetime import timedelta

import structlog
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from grantflow.aws.cloudformation import ROLE_ARN_PATTERN
from grantflow.domain.ids import new_connector_id
from grantflow.domain.secrets import issue_token
from grantflow.services.audit import trail as audit
from grantflow.services.integrations import connectors
from grantflow.services.integrations.connectors import CONNECTOR_TOKEN_PREFIX
from grantflow.settings import Settings
from grantflow.store.models import Connector, ConnectorCredential
from grantflow.store.types import utcnow

log = structlog.get_logger(__name__)

MANAGED_NAME = "managed"
IDLE_LIMIT = timedelta(days=7)
ROLE_SETTING = "GRANTFLOW_CONNECTOR_ROLE_ARN"


def replica_name(settings: Settings) -> str:
    """This replica, as its credential's holder: host name and port (two replicas on one host
    listen on different ports; two hosts have different names)."""
    return f"{socket.gethostname()}:{settings.port}"[:255]


def _managed_row(session: Session) -> Connector:
    row = session.scalar(
        select(Connector).where(Connector.kind == "managed").order_by(Connector.created_at)
    )
    if row is not None:
        return row
    unused = issue_token(CONNECTOR_TOKEN_PREFIX)  # the row's own token: nobody holds it
    row = Connector(
        id=new_connector_id(),
        name=MANAGED_NAME,
        kind="managed",
        token_hash=unused.token_hash,
        token_prefix=unused.prefix,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        audit.SYSTEM,
        "connector.created",
        "connector",
        row.id,
        {"name": row.name, "kind": "managed"},
    )
    return row


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _renew_credential(session: Session, connector: Connector, holder: str) -> str:
    now = utcnow()
    replaced = _count(
        session.execute(
            delete(ConnectorCredential).where(
                ConnectorCredential.connector_id == connector.id,
                ConnectorCredential.holder == holder,
            )
        )
    )
    idle = now - IDLE_LIMIT
    pruned = _count(
        session.execute(
            delete(ConnectorCredential).where(
                ConnectorCredential.connector_id == connector.id,
                or_(
                    ConnectorCredential.last_used_at < idle,
                    ConnectorCredential.last_used_at.is_(None)
                    & (ConnectorCredential.created_at < idle),
                ),
            )
        )
    )
    issued = issue_token(CONNECTOR_TOKEN_PREFIX)
    session.add(
        ConnectorCredential(
            connector_id=connector.id,
            holder=holder,
            token_hash=issued.token_hash,
            token_prefix=issued.prefix,
            created_at=now,
        )
    )
    audit.record(
        session,
        audit.SYSTEM,
        "connector.credential_issued",
        "connector",
        connector.id,
        {
            "holder": holder,
            "token_prefix": issued.prefix,
            "replaced": replaced,
            "pruned_idle": pruned,
        },
    )
    return issued.plaintext


def _confirm_from_setting(session: Session, connector: Connector, role_arn: str | None) -> None:
    """The operator's setting names the role the managed connector assumes: that is a
    confirmation by whoever configures the server, not a report of the connector."""
    if not role_arn or connector.confirmed_role_arn == role_arn:
        return
    if not re.fullmatch(ROLE_ARN_PATTERN, role_arn):
        log.warning("connector_role_setting_not_a_role", setting=ROLE_SETTING, value=role_arn)
        return
    connectors.confirm_role(
        session, connector.id, role_arn, audit.SYSTEM, confirmed_by=f"setting:{ROLE_SETTING}"
    )


def ensure_managed_connector(session: Session, settings: Settings) -> tuple[str, str]:
    """Return ``(connector_id, token)`` for this replica's managed connector, creating the
    connector row if needed and issuing this replica's credential."""
    row = _managed_row(session)
    _confirm_from_setting(session, row, settings.connector_role_arn)
    return row.id, _renew_credential(session, row, replica_name(settings))
