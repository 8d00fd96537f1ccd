"""The lease order of job types: revocation first, a user's dry run last."""

from __future__ import annotations

from grantflow.domain.jobs import JobPriority, priority_of


def test_revoke_before_grant_before_upkeep_before_dry_runs() -> None:
    order = sorted(["plan", "sync", "grant", "revoke"], key=priority_of)
    assert order == ["revoke", "grant", "sync", "plan"]


def test_each_type_has_its_class() -> None:
    assert priority_of("revoke") is JobPriority.REVOKE
    assert priority_of("grant") is JobPriority.GRANT
    assert priority_of("plan") is JobPriority.PLAN
    for upkeep in ("sync", "verify", "audit_ingest", "ping"):
        assert priority_of(upkeep) is JobPriority.SYNC


def test_an_unknown_type_is_upkeep_never_ahead_of_grants_or_revocations() -> None:
    assert priority_of("something-new") is JobPriority.SYNC
    assert priority_of("something-new") > JobPriority.GRANT > JobPriority.REVOKE


def test_the_classes_are_the_stored_integers() -> None:
    # jobs.priority stores these values (migration 0009 backfills with them): never renumber.
    assert [int(p) for p in JobPriority] == [0, 1, 2, 3]
    assert [p.name for p in JobPriority] == ["REVOKE", "GRANT", "SYNC", "PLAN"]
