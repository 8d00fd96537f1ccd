"""The stored hash chain: verification finds each kind of tampering done with raw SQL, and
the store refuses to update or delete audit rows (in code, and on PostgreSQL by a trigger)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from grantflow.cli.main import app as cli
from grantflow.domain.audit_chain import event_hash
from grantflow.services.audit import audit_verify
from grantflow.services.audit.trail import hashed_fields
from grantflow.store.audit_guard import AuditImmutable
from grantflow.store.db import transaction
from grantflow.store.models import AuditEvent
from tests.audit.conftest import record_events, tampering
from tests.fixtures.api import Api
from tests.fixtures.db import postgresql_only


def _verify(sessions: sessionmaker[Session]) -> tuple[bool, int | None, str]:
    with transaction(sessions) as session:
        result = audit_verify.verify(session)
    broken = result.broken
    return result.ok, broken.seq if broken else None, broken.reason if broken else ""


def test_an_untouched_chain_verifies(sessions: sessionmaker[Session]) -> None:
    assert _verify(sessions) == (True, None, "")
    record_events(sessions, 5)
    with transaction(sessions) as session:
        result = audit_verify.verify(session)
    assert (result.ok, result.events, result.last_seq) == (True, 5, 5)


def test_an_edited_event_is_found(engine: Engine, sessions: sessionmaker[Session]) -> None:
    record_events(sessions, 6)
    with tampering(engine) as conn:
        conn.execute(text("UPDATE audit_events SET action = 'forged' WHERE seq = 3"))
    ok, seq, reason = _verify(sessions)
    assert (ok, seq) == (False, 3) and "edited" in reason


def test_a_deleted_event_is_found(engine: Engine, sessions: sessionmaker[Session]) -> None:
    record_events(sessions, 6)
    with tampering(engine) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 4"))
    ok, seq, reason = _verify(sessions)
    assert (ok, seq) == (False, 5) and "removed or inserted" in reason


def test_an_inserted_event_is_found(engine: Engine, sessions: sessionmaker[Session]) -> None:
    """The attacker makes room after event 2 and inserts an event that hashes correctly onto
    event 2: the chain breaks at the event that used to follow."""
    record_events(sessions, 5)
    with transaction(sessions) as session:
        second = session.scalars(select(AuditEvent).where(AuditEvent.seq == 2)).one()
        fields = {
            **hashed_fields(second),
            "id": "00000000-0000-0000-0000-000000000000",
            "action": "user.promoted",
        }
        forged_hash, prev = event_hash(second.hash, fields), second.hash
    with tampering(engine) as conn:
        for seq in (5, 4, 3):
            conn.execute(text("UPDATE audit_events SET seq = seq + 10 WHERE seq = :s"), {"s": seq})
        conn.execute(text(
            "INSERT INTO audit_events (seq, id, occurred_at, actor_type, actor_id, action,"
            " target_type, target_id, source, request_id, data, prev_hash, hash)"
            " SELECT 3, :id, occurred_at, actor_type, actor_id, 'user.promoted', target_type,"
            " target_id, source, request_id, data, :prev, :hash FROM audit_events WHERE seq = 2"
        ), {"id": fields["id"], "prev": prev, "hash": forged_hash})  # fmt: skip
    ok, seq, reason = _verify(sessions)
    assert (ok, seq) == (False, 13) and "removed or inserted" in reason


def test_reordered_events_are_found(engine: Engine, sessions: sessionmaker[Session]) -> None:
    record_events(sessions, 5)
    with tampering(engine) as conn:  # swap events 2 and 3
        conn.execute(text("UPDATE audit_events SET seq = 100 WHERE seq = 2"))
        conn.execute(text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
        conn.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = 100"))
    ok, seq, _reason = _verify(sessions)
    assert (ok, seq) == (False, 2)


def test_the_orm_refuses_to_update_or_delete(sessions: sessionmaker[Session]) -> None:
    record_events(sessions, 2)
    with pytest.raises(AuditImmutable, match="UPDATE"), transaction(sessions) as session:
        session.scalars(select(AuditEvent)).first().action = "changed"  # type: ignore[union-attr]
    with pytest.raises(AuditImmutable, match="DELETE"), transaction(sessions) as session:
        session.delete(session.scalars(select(AuditEvent)).first())
    with pytest.raises(AuditImmutable), transaction(sessions) as session:
        session.execute(update(AuditEvent).values(action="x"))
    with pytest.raises(AuditImmutable), transaction(sessions) as session:
        session.execute(delete(AuditEvent))
    assert _verify(sessions) == (True, None, "")


@postgresql_only  # the trigger exists on PostgreSQL only
def test_postgres_refuses_raw_update_and_delete(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    record_events(sessions, 2)
    for statement in (
        "UPDATE audit_events SET action = 'x' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 2",
        "TRUNCATE audit_events",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert _verify(sessions) == (True, None, "")


def test_verify_over_http_and_the_cli(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from grantflow.store.db import build_engine, session_factory

    engine = build_engine(api.settings.database_url)
    try:
        record_events(session_factory(engine), 3)
        r = api.client.get("/api/v1/audit/verify", headers=api.as_admin())
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True and r.json()["break"] is None
        monkeypatch.setenv("GRANTFLOW_DATABASE_URL", api.settings.database_url)
        result = CliRunner().invoke(cli, ["audit", "verify", "--json"])
        assert result.exit_code == 0, result.output
        with tampering(engine) as conn:
            conn.execute(text("UPDATE audit_events SET data = '{\"i\": 99}' WHERE seq = 2"))
        body = api.client.get("/api/v1/audit/verify", headers=api.as_admin()).json()
        assert body["ok"] is False and body["break"]["seq"] == 2
        result = CliRunner().invoke(cli, ["audit", "verify"])
        assert result.exit_code == 1 and "broken at seq 2" in result.output
        assert api.client.get("/api/v1/audit/verify").status_code == 401
    finally:
        engine.dispose()
