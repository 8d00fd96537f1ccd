"""The activity log's reads the API makes, each in its own read transaction (no write lock,
nothing written): verify both hash chains against the checkpoints found, and one keyset page
of events."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit import audit_query, audit_verify
from grantflow.services.audit.audit_sinks import Found
from grantflow.store.db import read_transaction


def verify(
    sessions: sessionmaker[Session], checkpoints: Sequence[Found]
) -> audit_verify.Verification:
    with read_transaction(sessions) as session:
        return audit_verify.verify(session, checkpoints=checkpoints)


def page(
    sessions: sessionmaker[Session], f: audit_query.AuditFilter, limit: int, before: int | None
) -> audit_query.Page:
    with read_transaction(sessions) as session:
        return audit_query.page(session, f, limit, before)
