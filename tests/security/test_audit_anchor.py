"""The audit chains are anchored outside the database (issue 16, item 5).

Someone who can write to the database (a stolen DB password, a table owner who disables the
append-only trigger) tries to cut the end of the log, or to edit an approval and hash the
chain forward again. The chain is keyed with a secret the database does not hold, and signed
checkpoints outside it fix the tail: both attacks are reported. The session audit is chained
the same way. Verifying and exporting are reads: they write nothing and take no write lock.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from grantflow.api.app import create_app
from grantflow.cli.main import app as cli
from grantflow.demo.inboxes import webhook_sink
from grantflow.demo.moto_server import MotoServer
from grantflow.domain.audit_chain import (
    AuditKey,
    BreakKind,
    Keyring,
    event_hash,
    keyed_fields,
)
from grantflow.domain.audit_checkpoint import Checkpoint, Head
from grantflow.services.audit import (
    audit_checkpoints,
    audit_keys,
    audit_query,
    audit_sinks,
    audit_verify,
)
from grantflow.services.audit import trail as audit
from grantflow.services.audit.audit_verify import Verification
from grantflow.services.audit.trail import hashed_fields, use_keyring
from grantflow.services.integrations import session_audit
from grantflow.services.runtime import config_check
from grantflow.services.runtime.startup import prepare_database
from grantflow.settings import Settings, WebhookTarget
from grantflow.store.db import build_engine, read_transaction, session_factory, transaction
from grantflow.store.migrate import upgrade
from grantflow.store.models import (
    AccessRequest,
    AuditEvent,
    Base,
    Connector,
    Grant,
    Integration,
    User,
)
from grantflow.store.models_audit import AuditCheckpoint, SessionAuditEvent
from grantflow.store.types import utcnow
from tests.audit.conftest import tampering
from tests.fixtures.api import ADMIN_TOKEN, make_settings
from tests.fixtures.db import postgresql_only

SECRET = "test-audit-key-" + "5f0c2a9e81d4b7e3" * 3
KEY = AuditKey.from_text(SECRET)
KEYS = Keyring(KEY)
ACTOR = audit.Actor(type="user", id="u-admin", source="api")
T = TypeVar("T")


@pytest.fixture
def keyed(engine: Engine) -> sessionmaker[Session]:
    """Sessions that chain with the audit key, as the server's do."""
    return use_keyring(session_factory(engine), KEYS)


def _record(sessions: sessionmaker[Session], n: int, action: str = "test.event") -> None:
    with transaction(sessions) as session:
        for i in range(n):
            audit.record(session, ACTOR, action, "access_request", f"r-{i}", {"i": i})


def _checkpoint_to(sessions: sessionmaker[Session], path: Path) -> Checkpoint:
    taken = audit_checkpoints.take(sessions, KEYS, [audit_sinks.FileSink(path)], force=True)
    assert taken is not None and taken.ok, taken
    return taken.checkpoint


def _verify(sessions: sessionmaker[Session], *files: Path, keys: Keyring = KEYS) -> Verification:
    found = audit_sinks.read_latest([audit_sinks.FileSink(f) for f in files])
    with read_transaction(sessions) as session:
        return audit_verify.verify(session, keys, found)


def _kind(result: Verification) -> BreakKind | None:
    return result.broken.kind if result.broken else None


def test_deleting_the_last_30_events_is_reported_as_truncation(
    engine: Engine, keyed: sessionmaker[Session], tmp_path: Path
) -> None:
    sink = tmp_path / "checkpoints.jsonl"
    _record(keyed, 50)
    _checkpoint_to(keyed, sink)
    assert _verify(keyed, sink).ok
    with tampering(engine) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq > 20"))
    # the chain that is left is perfectly linked: only the checkpoint knows what is missing
    alone = _verify(keyed)
    assert alone.ok and alone.last_seq == 20
    result = _verify(keyed, sink)
    assert not result.ok and _kind(result) is BreakKind.TRUNCATED
    assert result.broken is not None and result.broken.seq == 21
    assert "signed seq 50 but the chain ends at 20" in result.broken.reason


def test_the_cli_reports_truncation(
    engine: Engine, keyed: sessionmaker[Session], db_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for name, value in {"GRANTFLOW_DATABASE_URL": db_url, "GRANTFLOW_AUDIT_KEY": SECRET,
                        "GRANTFLOW_DATA_DIR": str(tmp_path)}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    _record(keyed, 40)
    taken = CliRunner().invoke(cli, ["audit", "checkpoint"])
    assert taken.exit_code == 0, taken.output
    assert (tmp_path / audit_sinks.CHECKPOINT_FILE_NAME).exists()
    intact = CliRunner().invoke(cli, ["audit", "verify", "--require-checkpoint"])
    assert intact.exit_code == 0, intact.output
    assert "audit chains intact" in intact.output
    with tampering(engine) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq > 10"))
    cut = CliRunner().invoke(cli, ["audit", "verify", "--json"])
    assert cut.exit_code == 1, cut.output
    body = json.loads(cut.output)
    assert body["ok"] is False and body["break"]["kind"] == "truncated"
    assert body["checkpoints"][0]["seq"] == 40 and "truncated" in body["checkpoints"][0]["problem"]


Edit = Callable[[dict[str, Any]], None]


def _rehash_forward(engine: Engine, keyed: sessionmaker[Session], start: int,
                    key_id: str | None, edit: Edit) -> None:  # fmt: skip
    """What an attacker with the database but not the key can do: edit the event at
    ``start`` and hash it and every later event again, each onto the one before (unkeyed
    SHA-256, or HMAC under a key of their own), keeping or dropping ``key_id``."""
    with read_transaction(keyed) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.seq >= start)
                                 .order_by(AuditEvent.seq)).all()  # fmt: skip
        prev = events[0].prev_hash
        rewritten = []
        for event in events:
            fields = hashed_fields(event)
            if event.seq == start:
                edit(fields)
            attacker_key = None if key_id is None else b"the attacker's own key"
            digest = event_hash(prev, keyed_fields(fields, key_id), attacker_key)
            rewritten.append({"seq": event.seq, "data": json.dumps(fields["data"]),
                              "action": fields["action"], "prev": prev, "hash": digest,
                              "key_id": key_id})  # fmt: skip
            prev = digest
    with tampering(engine) as conn:
        for row in rewritten:  # hashes are unique: move them out of the way first
            conn.execute(text("UPDATE audit_events SET hash = :tmp WHERE seq = :seq"),
                         {"tmp": f"tmp-{row['seq']}", "seq": row["seq"]})  # fmt: skip
        for row in rewritten:
            conn.execute(text(
                "UPDATE audit_events SET data = :data, action = :action, prev_hash = :prev,"
                " hash = :hash, key_id = :key_id WHERE seq = :seq"), row)  # fmt: skip


def _approve_everything(fields: dict[str, Any]) -> None:
    fields["action"] = "request.approval_recorded"
    fields["data"] = {"decision": "approve", "approver": "mallory"}


@pytest.mark.parametrize("key_id", [KEY.key_id, None], ids=["keeps-key-id", "drops-key-id"])
def test_an_edited_approval_hashed_forward_without_the_key_fails(
    engine: Engine, keyed: sessionmaker[Session], key_id: str | None
) -> None:
    _record(keyed, 12)
    _rehash_forward(engine, keyed, 5, key_id, _approve_everything)
    result = _verify(keyed)
    assert not result.ok and result.broken is not None and result.broken.seq == 5
    expected = BreakKind.CONTENT if key_id else BreakKind.UNKEYED
    assert result.broken.kind is expected


def test_rewriting_the_whole_chain_by_the_old_unkeyed_rule_fails_at_the_checkpoint(
    engine: Engine, keyed: sessionmaker[Session], tmp_path: Path
) -> None:
    """Events from before the key verify by the unkeyed rule, so an attacker may try to pass
    the whole log off as such: the chain then links, but the checkpoint signed other hashes."""
    sink = tmp_path / "checkpoints.jsonl"
    _record(keyed, 12)
    _checkpoint_to(keyed, sink)
    _rehash_forward(engine, keyed, 1, None, _approve_everything)
    assert _verify(keyed).ok  # the chain alone cannot tell
    result = _verify(keyed, sink)
    assert not result.ok and _kind(result) is BreakKind.REWRITTEN
    assert result.broken is not None and result.broken.seq == 12


def test_a_forged_checkpoint_is_not_trusted(keyed: sessionmaker[Session], tmp_path: Path) -> None:
    sink = tmp_path / "checkpoints.jsonl"
    _record(keyed, 3)
    real = _checkpoint_to(keyed, sink)
    forged = Checkpoint(Head(1, real.events.hash), Head(), real.at, KEY.key_id,
                        signature="0" * 64)  # fmt: skip
    with sink.open("a") as handle:
        handle.write(forged.to_json() + "\n")
    result = _verify(keyed, sink)
    assert not result.ok
    assert result.checkpoints[0].problem and "signature does not match" in (
        result.checkpoints[0].problem)  # fmt: skip


def _database_text(engine: Engine) -> str:
    """Every value of every row of every table, as text."""
    parts = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def test_the_key_is_not_in_the_database(
    engine: Engine, keyed: sessionmaker[Session], tmp_path: Path
) -> None:
    _record(keyed, 5)
    grant_id = _grant(keyed)
    with transaction(keyed) as session:
        session_audit.store(session, _matches(grant_id, 3))
    _checkpoint_to(keyed, tmp_path / "checkpoints.jsonl")
    dump = _database_text(engine)
    assert KEY.key_id in dump  # the key is named ...
    for secret in (SECRET, KEY.chain_key.hex(), KEY.checkpoint_key.hex()):
        assert secret not in dump  # ... never stored
    with read_transaction(keyed) as session:  # what the database alone can verify: nothing
        alone = audit_verify.verify(session, Keyring())
    assert not alone.ok and _kind(alone) is BreakKind.UNKNOWN_KEY


def test_events_from_before_the_key_still_verify(
    engine: Engine, keyed: sessionmaker[Session]
) -> None:
    _record(session_factory(engine), 3)  # written before the key existed
    _record(keyed, 3)
    result = _verify(keyed)
    assert result.ok and (result.events, result.unkeyed) == (6, 3)
    _record(session_factory(engine), 1)  # an unkeyed event after keyed ones
    late = _verify(keyed)
    assert not late.ok and _kind(late) is BreakKind.UNKEYED and late.broken.seq == 7  # type: ignore[union-attr]


# -- the session audit ----------------------------------------------------------------------


def _grant(sessions: sessionmaker[Session]) -> str:
    with transaction(sessions) as s:
        user = User(username="alice", email="alice@example.com")
        connector = Connector(id="gfc-auditanchoranchor", name="c", kind="managed",
                              token_hash="a" * 64, token_prefix="gf_con_a")  # fmt: skip
        s.add_all([user, connector])
        s.flush()
        integration = Integration(name="Org", type="aws-organization",
                                  connector_id=connector.id, config={}, facts={})  # fmt: skip
        s.add(integration)
        s.flush()
        request = AccessRequest(requester_id=user.id, integration_id=integration.id,
                                resource_type="aws-account", permission="ReadOnly",
                                duration_seconds=3600, state="granted")  # fmt: skip
        s.add(request)
        s.flush()
        spec = {"kind": "account_assignment", "account_id": "111111111111"}
        grant = Grant(request_id=request.id, state="granted", granted_at=utcnow(), spec=spec)
        s.add(grant)
        s.flush()
        return grant.id


def _matches(grant_id: str, n: int, first: int = 0) -> list[dict[str, Any]]:
    when = utcnow() - timedelta(minutes=30)
    return [{"grant_id": grant_id, "event_id": f"ev-{i:04d}",
             "event_time": (when + timedelta(seconds=i)).isoformat(),
             "event_source": "s3.amazonaws.com", "event_name": "GetObject", "error_code": None,
             "account_id": "111111111111", "source_ip": "198.51.100.7",
             "raw": {"eventID": f"ev-{i:04d}", "requestParameters": {"bucketName": "b"}}}
            for i in range(first, first + n)]  # fmt: skip


@contextmanager
def _session_tampering(engine: Engine) -> Iterator[Any]:
    with engine.begin() as conn:
        yield conn


def test_session_audit_events_are_chained_and_tampering_is_found(
    engine: Engine, keyed: sessionmaker[Session], tmp_path: Path
) -> None:
    sink = tmp_path / "checkpoints.jsonl"
    grant_id = _grant(keyed)
    with transaction(keyed) as session:
        assert session_audit.store(session, _matches(grant_id, 6)) == 6
    with transaction(keyed) as session:  # again, overlapping: only the new ones are added
        assert session_audit.store(session, _matches(grant_id, 6, first=3)) == 3
    _checkpoint_to(keyed, sink)
    result = _verify(keyed, sink)
    assert result.ok and result.session is not None
    assert (result.session.events, result.session.last_seq, result.session.unkeyed) == (9, 9, 0)

    with _session_tampering(engine) as conn:  # hide a call: edit what it was
        conn.execute(text("UPDATE session_audit_events SET event_name = 'ListBuckets' "
                          "WHERE chain_seq = 4"))  # fmt: skip
    edited = _verify(keyed, sink)
    assert not edited.ok and _kind(edited) is BreakKind.CONTENT
    assert edited.session is not None and edited.session.broken is not None
    assert edited.session.broken.seq == 4


def test_session_audit_deletions_are_found(
    engine: Engine, keyed: sessionmaker[Session], tmp_path: Path
) -> None:
    sink = tmp_path / "checkpoints.jsonl"
    grant_id = _grant(keyed)
    with transaction(keyed) as session:
        session_audit.store(session, _matches(grant_id, 8))
    _checkpoint_to(keyed, sink)
    with _session_tampering(engine) as conn:
        conn.execute(text("DELETE FROM session_audit_events WHERE chain_seq = 3"))
    middle = _verify(keyed)
    assert _kind(middle) is BreakKind.LINK and middle.broken.seq == 4  # type: ignore[union-attr]
    with _session_tampering(engine) as conn:
        conn.execute(text("DELETE FROM session_audit_events WHERE chain_seq >= 3"))
    assert _verify(keyed).ok  # two events left, linked
    cut = _verify(keyed, sink)
    assert not cut.ok and _kind(cut) is BreakKind.TRUNCATED
    assert cut.broken is not None and "session audit truncated" in cut.broken.reason


# -- reads that neither write nor lock ------------------------------------------------------


def _counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(conn.scalar(select(func.count()).select_from(t)) or 0
                     for t in (AuditEvent.__table__, SessionAuditEvent.__table__,
                               AuditCheckpoint.__table__))  # fmt: skip


def _keyed_app(db_url: str, tmp_path: Path, **overrides: object) -> Any:
    settings = make_settings(db_url, audit_key=SECRET, data_dir=str(tmp_path), **overrides)
    prepare_database(settings)
    return create_app(settings, run_workers=False)


def test_verify_and_export_write_nothing(db_url: str, tmp_path: Path) -> None:
    app = _keyed_app(db_url, tmp_path)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with TestClient(app) as client:
        engine = app.state.ctx.engine
        _record(app.state.ctx.sessions, 5)
        before = _counts(engine)
        for path, params in (("/api/v1/audit/verify", {}),
                             ("/api/v1/audit-events/export", {"format": "csv"}),
                             ("/api/v1/audit-events/export", {"format": "jsonl"}),
                             ("/api/v1/audit-events", {})):  # fmt: skip
            r = client.get(path, params=params, headers=auth)
            assert r.status_code == 200, r.text
        assert _counts(engine) == before
        body = client.get("/api/v1/audit/verify", headers=auth).json()
        assert body["ok"] is True and body["events"] == before[0]
        exported = client.get("/api/v1/audit-events/export", headers=auth).text.splitlines()
        assert {json.loads(line)["key_id"] for line in exported} == {KEY.key_id}


@contextmanager
def _write_lock_held(engine: Engine) -> Iterator[None]:
    """Another writer holds what every write would wait for: SQLite's write lock (BEGIN
    IMMEDIATE), or on PostgreSQL the audit chain's append lock."""
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        else:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (audit._PG_AUDIT_LOCK,))
        yield
    finally:
        conn.rollback()
        conn.close()


def _within(seconds: float, work: Callable[[], T]) -> T:
    """Run ``work`` in a thread; fail if it has not finished after ``seconds`` (a write
    would wait for the lock held meanwhile: forever on PostgreSQL, 10 s then fail on SQLite)."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(work).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)


def test_verify_and_export_never_wait_for_the_write_lock(
    engine: Engine, keyed: sessionmaker[Session], db_url: str, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    _record(keyed, 30)
    for name, value in {"GRANTFLOW_DATABASE_URL": db_url, "GRANTFLOW_AUDIT_KEY": SECRET,
                        "GRANTFLOW_DATA_DIR": str(tmp_path)}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with _write_lock_held(engine):
        verified = _within(60, lambda: CliRunner().invoke(cli, ["audit", "verify", "--json"]))
        assert verified.exit_code == 0, verified.output
        assert json.loads(verified.output)["events"] == 30
        rows = _within(60, lambda: list(audit_query.stream_rows(keyed, audit_query.AuditFilter())))
        assert len(rows) == 30


@postgresql_only  # on SQLite every sign-in check writes (the token's last use) under the lock
def test_the_http_verify_and_export_never_wait_for_the_chain_lock(
    db_url: str, tmp_path: Path
) -> None:
    app = _keyed_app(db_url, tmp_path)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with TestClient(app) as client:
        _record(app.state.ctx.sessions, 3)
        with _write_lock_held(app.state.ctx.engine):
            verified = _within(60, lambda: client.get("/api/v1/audit/verify", headers=auth))
            assert verified.status_code == 200 and verified.json()["ok"] is True
            exported = _within(60, lambda: client.get("/api/v1/audit-events/export",
                                                      headers=auth))  # fmt: skip
            assert exported.status_code == 200 and len(exported.text.splitlines()) >= 3


# -- the key, the scheduler and the sinks -----------------------------------------------------


def test_serve_makes_a_private_key_file_and_config_check_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from grantflow.cli.audit import prepare_audit_key

    monkeypatch.setenv("GRANTFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GRANTFLOW_DATABASE_URL", f"sqlite:///{tmp_path}/gf.db")
    findings = {(f.level.value, f.setting) for f in config_check.check()}
    assert ("warning", "GRANTFLOW_AUDIT_KEY") in findings
    settings = Settings()
    prepare_audit_key(settings)
    key_file = tmp_path / audit_keys.KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "WARNING: no audit key was configured" in capsys.readouterr().err
    first = key_file.read_text()
    assert audit_keys.ensure(settings) is None and key_file.read_text() == first  # kept
    loaded = audit_keys.load(settings)
    assert loaded.source == str(key_file) and loaded.keyring.current is not None
    warnings = [f for f in config_check.check() if f.setting.startswith("GRANTFLOW_AUDIT")]
    assert [w.message for w in warnings] == [
        f"the audit key is the generated {key_file}: move it to your secret store"]  # fmt: skip
    os.chmod(key_file, 0o644)
    assert any("chmod 600" in f.message for f in config_check.check())


def test_the_scheduler_writes_checkpoints_while_the_chain_moves(
    db_url: str, tmp_path: Path
) -> None:
    sink = tmp_path / audit_sinks.CHECKPOINT_FILE_NAME
    settings = make_settings(db_url, audit_key=SECRET, data_dir=str(tmp_path),
                             audit_checkpoint_interval_seconds=5)  # fmt: skip
    prepare_database(settings)
    app = create_app(settings)
    with TestClient(app):
        sessions = app.state.ctx.sessions
        _record(sessions, 4)
        _wait_for_checkpoint(sink, _last_seq(sessions))
        _record(sessions, 3)
        _wait_for_checkpoint(sink, _last_seq(sessions))
    assert _verify(sessions, sink).ok


def _last_seq(sessions: sessionmaker[Session]) -> int:
    with read_transaction(sessions) as session:
        return session.scalar(select(func.max(AuditEvent.seq))) or 0


def _wait_for_checkpoint(path: Path, seq: int, deadline: float = 90.0) -> None:
    """Poll the file sink until a checkpoint covers ``seq`` (the scheduler's pace)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        found = audit_sinks.FileSink(path).latest()
        if found is not None and found.events.seq >= seq:
            return
        time.sleep(0.25)
    raise AssertionError(f"no checkpoint of seq {seq} in {path} within {deadline} s")


_AT_0009 = (  # a grant as the schema of revision 0009 holds it, and three matched events
    "INSERT INTO users (id, username, display_name, active, role, source, attributes,"
    " created_at, updated_at) VALUES ('u-1', 'alice', 'Alice', :yes, 'member', 'local', '{}',"
    " :now, :now)",
    "INSERT INTO connectors (id, name, kind, token_hash, token_prefix, created_at, updated_at)"
    " VALUES ('gfc-1', 'c', 'managed', 'h', 'p', :now, :now)",
    "INSERT INTO integrations (id, name, type, connector_id, resource_types, config, status,"
    " enabled, created_at, updated_at) VALUES ('i-1', 'Org', 'aws-organization', 'gfc-1',"
    " '[]', '{}', 'active', :yes, :now, :now)",
    "INSERT INTO access_requests (id, requester_id, integration_id, resource_type, permission,"
    " justification, duration_seconds, state, extensions, created_at, updated_at) VALUES"
    " ('r-1', 'u-1', 'i-1', 'aws-account', 'ReadOnly', '', 3600, 'granted', 0, :now, :now)",
    "INSERT INTO grants (id, request_id, state, handle, created_at, updated_at) VALUES"
    " ('g-1', 'r-1', 'granted', '{}', :now, :now)",
)


def _stamp(engine: Engine, when: datetime) -> datetime:
    """A timestamp as raw SQL stores it on each backend (naive UTC on SQLite)."""
    return when.replace(tzinfo=None) if engine.dialect.name == "sqlite" else when


def test_migration_chains_session_events_stored_before_it(empty_db_url: str) -> None:
    """Rows from before 0010 have no chain; the migration chains them (unkeyed, in the order
    they were ingested), so that every row is on the chain, and new ones chain on keyed."""
    engine = build_engine(empty_db_url)
    try:
        upgrade(engine, "0009")
        now = utcnow()
        with engine.begin() as conn:
            for statement in _AT_0009:
                conn.execute(text(statement), {"now": _stamp(engine, now), "yes": True})
            for i, match in enumerate(_matches("g-1", 3)):
                values = {**match, "id": f"sa-{i}", "raw": json.dumps(match["raw"]),
                          "event_time": _stamp(engine, datetime.fromisoformat(
                              match["event_time"])),
                          "ingested_at": _stamp(engine, now + timedelta(seconds=i))}  # fmt: skip
                conn.execute(text(
                    "INSERT INTO session_audit_events (id, grant_id, event_id, event_time,"
                    " event_source, event_name, account_id, source_ip, raw, ingested_at)"
                    " VALUES (:id, 'g-1', :event_id, :event_time, :event_source, :event_name,"
                    " :account_id, :source_ip, :raw, :ingested_at)"), values)  # fmt: skip
        upgrade(engine)
        keyed = use_keyring(session_factory(engine), KEYS)
        result = _verify(keyed)
        assert result.ok and result.session is not None
        assert (result.session.events, result.session.unkeyed) == (3, 3)
        with transaction(keyed) as session:
            assert session_audit.store(session, _matches("g-1", 2, first=3)) == 2
        after = _verify(keyed)
        assert after.ok and after.session is not None
        assert (after.session.events, after.session.unkeyed) == (5, 3)
    finally:
        engine.dispose()


def test_the_s3_sink_writes_locked_objects_and_reads_the_latest(
    aws: MotoServer, boto_session: boto3.Session
) -> None:
    bucket = "grantflow-audit-checkpoints"
    s3 = boto_session.client("s3", endpoint_url=aws.endpoint)
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    settings = Settings(audit_checkpoint_s3_bucket=bucket, audit_checkpoint_s3_retention_days=30)
    sinks = audit_sinks.build(settings)
    s3_sink = next(s for s in sinks if isinstance(s, audit_sinks.S3Sink))
    older = Checkpoint(Head(7, "a" * 64), Head(2, "b" * 64), utcnow() - timedelta(minutes=2),
                       "").signed(KEY)  # fmt: skip
    newer = Checkpoint(Head(9, "c" * 64), Head(2, "b" * 64), utcnow(), "").signed(KEY)
    for checkpoint in (older, newer):
        s3_sink.write(checkpoint)
    assert s3_sink.latest() == newer
    key = s3_sink.key_of(newer)
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] >= newer.at + timedelta(days=29)
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])
    assert s3_sink.latest() == newer


def test_a_bucket_without_object_lock_is_a_sink_error(
    aws: MotoServer, boto_session: boto3.Session
) -> None:
    bucket = "grantflow-no-lock"
    boto_session.client("s3", endpoint_url=aws.endpoint).create_bucket(Bucket=bucket)
    sink = audit_sinks.build(Settings(audit_checkpoint_s3_bucket=bucket))[1]
    with pytest.raises(audit_sinks.SinkError, match=bucket):
        sink.write(Checkpoint(Head(), Head(), utcnow(), "").signed(KEY))


def test_checkpoints_go_to_the_named_webhooks_signed() -> None:
    with webhook_sink("w" * 32) as receiver:
        hook = WebhookTarget(name="siem", url=receiver.url, secret="w" * 32)  # type: ignore[arg-type]
        settings = Settings(webhooks=[hook], audit_checkpoint_webhooks=["siem"])
        sink = audit_sinks.build(settings)[-1]
        assert isinstance(sink, audit_sinks.WebhookSink)
        sink.write(Checkpoint(Head(3, "d" * 64), Head(), utcnow(), "").signed(KEY))
        assert receiver.events["audit.checkpoint"] == 1 and receiver.bad_signatures == 0
    with pytest.raises(ValueError, match="not in GRANTFLOW_WEBHOOKS"):
        Settings(webhooks=[hook], audit_checkpoint_webhooks=["elsewhere"])
