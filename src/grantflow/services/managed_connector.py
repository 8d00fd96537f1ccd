"""The managed connector's identity: one connector row, its token renewed at every start.

The plaintext token never leaves the server process: it is handed to the in-process agent,
which speaks the same HTTP protocol as a self-hosted connector.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.ids import new_connector_id
from grantflow.domain.secrets import issue_token
from grantflow.services import audit
from grantflow.services.connectors import CONNECTOR_TOKEN_PREFIX
from grantflow.store.models import Connector

MANAGED_NAME = "managed"


def ensure_managed_connector(session: Session) -> tuple[str, str]:
    """Return ``(connector_id, token)`` for the managed connector, creating it if needed."""
    issued = issue_token(CONNECTOR_TOKEN_PREFIX)
    row = session.scalar(
        select(Connector).where(Connector.kind == "managed").order_by(Connector.created_at)
    )
    if row is None:
        row = Connector(
            id=new_connector_id(),
            name=MANAGED_NAME,
            kind="managed",
            token_hash=issued.token_hash,
            token_prefix=issued.prefix,
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
    else:
        row.token_hash = issued.token_hash
        row.token_prefix = issued.prefix
    return row.id, issued.plaintext
