"""Integrations: create (validated), update, enable, ask for a sync — and the integration's
own side of disabling and deleting it; what it allowed is ended one layer up, by
``services.access.integration_retirement``, which calls this module."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grantflow.aws import registry
from grantflow.domain.connector_jobs import JobType, SyncPayload, VerifyPayload, payload_for
from grantflow.domain.integration_config import AwsOrganizationConfig, OwnerKind, OwnerRef
from grantflow.domain.merge_patch import merge_patch
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict, Invalid, NotFound
from grantflow.services.identity import principals
from grantflow.services.identity.owners import group_named
from grantflow.services.integrations import connectors
from grantflow.services.jobs import queue as jobs
from grantflow.store.models import (
    AccessRequest,
    Integration,
    Job,
    SyncRun,
    User,
)
from grantflow.store.types import utcnow

INTEGRATION_TYPE = "aws-organization"


class Status:
    INITIALIZING = "initializing"
    REFRESHING = "refreshing"
    ACTIVE = "active"
    WARNING = "warning"
    ERROR = "error"
    DISABLED = "disabled"


@dataclass(frozen=True)
class IntegrationInput:
    name: str
    connector_id: str
    resource_types: list[str]
    config: AwsOrganizationConfig
    sync_interval_seconds: int | None = None


def get(session: Session, integration_id: str) -> Integration:
    row = session.get(Integration, integration_id)
    if row is None:
        raise NotFound(f"no integration {integration_id}")
    return row


def by_name(session: Session, name: str) -> Integration:
    row = session.scalar(select(Integration).where(Integration.name == name))
    if row is None:
        raise NotFound(f"no integration named {name!r}")
    return row


def check_resource_types(types: list[str]) -> list[str]:
    known = {t.key for t in registry.REGISTRY}
    unknown = [t for t in types if t not in known]
    if unknown:
        raise Invalid(
            f"unknown resource type(s) {', '.join(unknown)}; "
            f"choose from {', '.join(sorted(known))}",
            field="resource_types",
        )
    if len(set(types)) != len(types):
        raise Invalid("lists a resource type twice", field="resource_types")
    if not types:
        raise Invalid("select at least one resource type to sync", field="resource_types")
    return types


def unresolved_owners(
    session: Session, owners: list[OwnerRef], store: str | None
) -> list[OwnerRef]:
    """The owners that name no user, and no group of the integration's own identity store
    (known after its first sync) nor a local or SCIM group."""
    missing = []
    for owner in owners:
        if owner.kind is OwnerKind.USER:
            found = session.scalar(
                select(User.id).where(
                    User.deleted_at.is_(None), func.lower(User.username) == owner.value.lower()
                )
            )
        else:
            found = group_named(session, owner.value, store)
        if found is None:
            missing.append(owner)
    return missing


def describe_owners(owners: list[OwnerRef]) -> str:
    return ", ".join(f"{o.kind.value} {o.value!r}" for o in owners)


def check_owners_exist(session: Session, owners: list[OwnerRef], row: Integration | None) -> None:
    """Before the integration's first sync its directory is not known yet: owners that do
    not exist yet are accepted and resolved after that sync (``owner_warning``). After it,
    every owner must exist."""
    if row is None or row.last_sync_at is None:
        return
    missing = unresolved_owners(session, owners, principals.store_of(row))
    if missing:
        raise Invalid(
            f"no {describe_owners(missing)} in this integration's directory (its Identity "
            "Center users and groups, and local and SCIM groups)",
            field="config.integration_owners",
        )


def owner_warning(session: Session, row: Integration) -> str | None:
    """After a sync: the integration owners that still name nobody, in words."""
    owners = config_of(row).integration_owners
    missing = unresolved_owners(session, owners, principals.store_of(row))
    if not missing:
        return None
    return (
        f"integration owner(s) not found in the directory after the sync: "
        f"{describe_owners(missing)}; fix the Integration Owner setting"
    )


def _check_name_free(session: Session, name: str, except_id: str | None = None) -> None:
    clash = session.scalar(select(Integration.id).where(Integration.name == name))
    if clash is not None and clash != except_id:
        raise Conflict(f"an integration named {name!r} already exists", field="name")


def create(session: Session, data: IntegrationInput, actor: audit.Actor) -> Integration:
    _check_name_free(session, data.name)
    connectors.get(session, data.connector_id)
    check_resource_types(data.resource_types)
    check_owners_exist(session, data.config.integration_owners, None)
    row = Integration(
        name=data.name,
        type=INTEGRATION_TYPE,
        connector_id=data.connector_id,
        resource_types=data.resource_types,
        config=data.config.model_dump(mode="json"),
        status=Status.INITIALIZING,
        sync_interval_seconds=data.sync_interval_seconds,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "integration.created", "integration", row.id,
                 {"after": snapshot(row)})  # fmt: skip
    enqueue_verify(session, row)
    return row


def snapshot(row: Integration) -> dict[str, Any]:
    return {
        "name": row.name,
        "connector_id": row.connector_id,
        "resource_types": row.resource_types,
        "config": row.config,
        "enabled": row.enabled,
        "sync_interval_seconds": row.sync_interval_seconds,
    }


def config_of(row: Integration) -> AwsOrganizationConfig:
    return AwsOrganizationConfig.model_validate(row.config)


def merged_config(row: Integration, patch: dict[str, Any]) -> AwsOrganizationConfig:
    """The stored configuration with ``patch`` applied as a JSON merge patch (RFC 7396),
    validated whole; the first problem is a 422 naming its field (``config.<name>``)."""
    merged = merge_patch(row.config, patch)
    try:
        return AwsOrganizationConfig.model_validate(merged)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        field = f"config.{where}" if where else "config"
        raise Invalid(f"{field}: {first.get('msg', 'invalid')}", field=field) from None


def enqueue_verify(session: Session, row: Integration) -> Job:
    config = config_of(row)
    return jobs.enqueue(
        session,
        row.connector_id,
        JobType.VERIFY,
        payload_for(
            JobType.VERIFY,
            VerifyPayload(
                integration_id=row.id,
                role_arn=config.management_role_arn,
                external_id=row.connector_id,
                region=config.region,
                exclude_ou_ids=config.exclude_ou_ids,
            ),
        ),
        idempotency_key=f"verify:{row.id}",
        max_attempts=3,
    )


def update(
    session: Session, row: Integration, changes: dict[str, Any], actor: audit.Actor
) -> Integration:
    before = snapshot(row)
    if "name" in changes:
        _check_name_free(session, changes["name"], row.id)
        row.name = changes["name"]
    if "connector_id" in changes:
        row.connector_id = connectors.get(session, changes["connector_id"]).id
    if "resource_types" in changes:
        row.resource_types = check_resource_types(changes["resource_types"])
    if "config" in changes:
        config: AwsOrganizationConfig = changes["config"]
        check_owners_exist(session, config.integration_owners, row)
        row.config = config.model_dump(mode="json")
    if "sync_interval_seconds" in changes:
        row.sync_interval_seconds = changes["sync_interval_seconds"]
    after = snapshot(row)
    if after != before:
        audit.record(session, actor, "integration.updated", "integration", row.id,
                     {"before": before, "after": after})  # fmt: skip
        if before["config"] != after["config"] or before["connector_id"] != after["connector_id"]:
            request_sync(session, row, "config", actor)
    return row


def enable(session: Session, row: Integration, actor: audit.Actor) -> None:
    """A disabled integration syncs again (an enabled one is left as it is). Disabling and
    deleting end what the integration allowed: ``services.access.integration_retirement``."""
    if row.enabled:
        return
    row.enabled = True
    row.status = Status.REFRESHING if row.last_sync_at else Status.INITIALIZING
    row.status_message = None
    request_sync(session, row, "enable", actor)
    audit.record(session, actor, "integration.enabled", "integration", row.id, None)


def mark_disabled(row: Integration) -> None:
    """The integration's own side of disabling: no syncs, no new requests."""
    row.enabled = False
    row.status = Status.DISABLED
    row.status_message = "disabled by an admin: no syncs, no new requests"
    row.next_sync_at = None


def remove(session: Session, row: Integration, revoking: bool) -> None:
    """The last step of deleting an integration (``access.integration_retirement.delete``,
    once its requests and flows are dealt with): one no access request refers to is removed
    with its inventory and sync history; one they refer to stays, disabled, for their
    history (``revoking``: its live grants are still being revoked)."""
    referenced = session.scalar(
        select(AccessRequest.id).where(AccessRequest.integration_id == row.id).limit(1)
    )
    if referenced is None:
        session.delete(row)
        return
    row.enabled = False
    row.status = Status.DISABLED
    row.next_sync_at = None
    row.status_message = (
        "being deleted: revoking live grants first" if revoking
        else "deleted by an admin: kept (disabled) for the history of its access requests"
    )  # fmt: skip


def sync_in_flight(session: Session, row: Integration) -> SyncRun | None:
    return session.scalar(
        select(SyncRun)
        .where(SyncRun.integration_id == row.id, SyncRun.state == "running")
        .order_by(SyncRun.started_at.desc())
        .limit(1)
    )


def request_sync(session: Session, row: Integration, trigger: str, actor: audit.Actor) -> SyncRun:
    """Queue a sync unless one is already running (then that one is returned)."""
    if not row.enabled:
        raise Conflict("the integration is disabled; enable it to sync")
    running = sync_in_flight(session, row)
    if running is not None:
        return running
    generation = (
        session.scalar(select(func.max(SyncRun.generation)).where(SyncRun.integration_id == row.id))
        or 0
    ) + 1
    run = SyncRun(integration_id=row.id, generation=generation, trigger=trigger, state="running")
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        # A sync of this integration started in another transaction since the read above
        # (two admins, or an admin and the schedule): that one is the answer.
        started = sync_in_flight(session, row)
        if started is None:
            raise Conflict("another sync of this integration just started and ended") from None
        return started
    config = config_of(row)
    job = jobs.enqueue(
        session,
        row.connector_id,
        JobType.SYNC,
        payload_for(
            JobType.SYNC,
            SyncPayload(
                integration_id=row.id,
                sync_run_id=run.id,
                generation=generation,
                management_role_arn=config.management_role_arn,
                external_id=row.connector_id,
                region=config.region,
                sso_region=config.sso_region,
                regions=config.regions,
                resource_types=row.resource_types,
                excluded_ou_ids=config.exclude_ou_ids,
            ),
        ),
        idempotency_key=f"sync:{row.id}",
        max_attempts=3,
    )
    run.job_id = job.id
    if row.status in (Status.ACTIVE, Status.WARNING, Status.ERROR):
        row.status = Status.REFRESHING
    interval = row.sync_interval_seconds or 300
    row.next_sync_at = utcnow() + timedelta(seconds=interval)
    audit.record(session, actor, "integration.sync_requested", "integration", row.id,
                 {"trigger": trigger, "sync_run_id": run.id})  # fmt: skip
    return run
