"""Land a discovery sync in the store: per-account batches, then the summary.

Only what was read successfully may be removed: an account's resources of a type are swept
only when that account reported the type in ``types_read``; an account that could not be
read keeps everything it had.

Each batch is compared with what is stored: a new record is inserted, a record that differs
is updated, and a record equal to what is stored is not written at all (no "last seen"
stamp: which accounts a run read, and when, is the run's own per-account record). An
account's batch is its complete inventory, so what it no longer reports is swept as the
batch lands (for its ``types_read`` only); accounts the organization walk no longer reports
are swept when the sync finishes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.aws import registry
from grantflow.domain.inventory import AccountInventory, AccountOutcome, SyncSummary
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict, NotFound
from grantflow.services.identity import owners
from grantflow.services.integrations import lifecycle as integrations
from grantflow.services.integrations.lifecycle import Status
from grantflow.store import resource_index
from grantflow.store.models import Integration, Permission, Resource, SyncRun
from grantflow.store.types import utcnow


def run_of(session: Session, sync_run_id: str) -> tuple[SyncRun, Integration]:
    run = session.get(SyncRun, sync_run_id, with_for_update=True)
    if run is None:
        raise NotFound(f"no sync run {sync_run_id}")
    if run.state != "running":
        raise Conflict(f"sync run {sync_run_id} is already {run.state}")
    return run, integrations.get(session, run.integration_id)


def _scope(account_id: str | None) -> Any:
    return (
        Resource.account_id.is_(None) if account_id is None else Resource.account_id == account_id
    )


READABLE = (AccountOutcome.SYNCED, AccountOutcome.INCOMPLETE)


def _land(
    session: Session,
    row: Integration,
    inventory: AccountInventory,
    generation: int,
    account_id: str | None,
) -> Counter[str]:
    """Insert, update (only what differs) and sweep one account's inventory (``account_id``
    None: the organization-wide records). Returns created/updated/unchanged/removed counts
    per type. The keys owner resolution maintains (``owners.OWNER_KEYS``) are kept and not
    compared."""
    counts: Counter[str] = Counter()
    existing = {
        (r.type, r.region, r.aws_id): r
        for r in session.scalars(
            select(Resource).where(Resource.integration_id == row.id, _scope(account_id))
        )
    }
    now = utcnow()
    # A record read twice counts once.
    unique = {(r.type, r.region, r.aws_id): r for r in inventory.resources}
    for key, record in unique.items():
        current = existing.get(key)
        values: dict[str, Any] = {
            "arn": record.arn,
            "name": record.name,
            "region": record.region,
            "ou_path": inventory.ou_path,
            "tags": record.tags,
            "attributes": _attributes(record.attributes, inventory, account_id),
        }
        if current is None:
            session.add(Resource(
                integration_id=row.id, type=record.type, aws_id=record.aws_id,
                account_id=account_id, sync_generation=generation, first_seen_at=now,
                last_seen_at=now, **values,
            ))  # fmt: skip
            counts[f"{record.type}:created"] += 1
            continue
        kept = {k: v for k, v in (current.attributes or {}).items() if k in owners.OWNER_KEYS}
        values["attributes"] = {**values["attributes"], **kept}
        changed = {k: v for k, v in values.items() if getattr(current, k) != v}
        if changed:
            for k, v in changed.items():
                setattr(current, k, v)
            current.sync_generation, current.last_seen_at = generation, now
        counts[f"{record.type}:{'updated' if changed else 'unchanged'}"] += 1
    swept = set(inventory.types_read) if inventory.outcome in READABLE else set()
    for key, current in existing.items():
        if key in unique:
            continue
        if current.type in swept:
            session.delete(current)
            counts[f"{current.type}:removed"] += 1
        elif account_id is not None:
            _mark_account_status(current, inventory.status)
    return counts


def _attributes(
    attributes: dict[str, Any], inventory: AccountInventory, account_id: str | None
) -> dict[str, Any]:
    out = {**attributes, "ou_names": inventory.ou_names}
    if account_id is not None:
        out["account_status"] = inventory.status
    return out


def _mark_account_status(resource: Resource, status: str) -> None:
    """What a suspended account had stays listed (it is not read again) but carries the
    account's status, so that nothing in it is requestable (``domain.flows.in_scope``)."""
    if (resource.attributes or {}).get("account_status") != status:
        resource.attributes = {**(resource.attributes or {}), "account_status": status}


def _merge_counts(run: SyncRun, counts: Counter[str]) -> None:
    merged = dict(run.counts)
    for key, n in counts.items():
        rtype, what = key.rsplit(":", 1)
        per_type = dict(merged.get(rtype, {}))
        per_type[what] = per_type.get(what, 0) + n
        merged[rtype] = per_type
    run.counts = merged


def ingest_account(session: Session, sync_run_id: str, inventory: AccountInventory) -> SyncRun:
    run, row = run_of(session, sync_run_id)
    _merge_counts(run, _land(session, row, inventory, run.generation, inventory.account_id))
    accounts = dict(run.accounts)
    before = int(accounts.get(inventory.account_id, {}).get("resources", 0))
    accounts[inventory.account_id] = {
        "name": inventory.name,
        "status": inventory.status,
        "outcome": inventory.outcome.value,
        "detail": inventory.detail,
        "types_read": inventory.types_read,
        "ou_path": inventory.ou_names,
        "resources": len(inventory.resources),
    }
    run.accounts = accounts
    # Progress: a batch sent again (the job is delivered at least once) counts once.
    run.accounts_done = len(accounts)
    run.resources_seen = (run.resources_seen or 0) + len(inventory.resources) - before
    run.updated_at = utcnow()
    run.aws_calls += inventory.aws_calls
    return run


def report_total(session: Session, sync_run_id: str, accounts_total: int) -> SyncRun:
    """The connector has walked the organization: ``accounts_total`` accounts are in scope."""
    run, _row = run_of(session, sync_run_id)
    run.accounts_total = accounts_total
    run.updated_at = utcnow()
    return run


def _sweep_gone(session: Session, row: Integration, run: SyncRun, summary: SyncSummary) -> None:
    """Accounts the (complete) organization walk no longer reports: they left the
    organization or are now excluded. (An account's own stale records were swept with its
    batch, ``_land``.)"""
    removed: Counter[str] = Counter()
    reported = set(run.accounts) | {summary.management_account_id}
    gone = session.scalars(
        select(Resource).where(
            Resource.integration_id == row.id,
            Resource.account_id.is_not(None),
            Resource.account_id.not_in(reported),
        )
    ).all()
    for resource in gone:
        session.delete(resource)
        removed[f"{resource.type}:removed"] += 1
    _merge_counts(run, removed)


def _permissions(session: Session, row: Integration, summary: SyncSummary) -> None:
    wanted: dict[tuple[str, str], tuple[str, str | None]] = {}
    for ps in summary.permission_sets:
        if not ps.managed_by_grantflow:
            wanted[("aws-account", ps.name)] = (ps.description, ps.arn)
    for rtype in registry.REGISTRY:
        if rtype.key == "aws-account" or rtype.key not in row.resource_types:
            continue
        for spec in rtype.permissions:
            wanted[(rtype.key, spec.key)] = (spec.description, None)
    current = {
        (p.resource_type, p.name): p
        for p in session.scalars(select(Permission).where(Permission.integration_id == row.id))
    }
    for key, (description, ref) in wanted.items():
        perm = current.pop(key, None)
        if perm is None:
            session.add(Permission(integration_id=row.id, resource_type=key[0], name=key[1],
                                   description=description, aws_ref=ref))  # fmt: skip
        else:
            perm.description, perm.aws_ref = description, ref
    for stale in current.values():
        session.delete(stale)


def _status(row: Integration, run: SyncRun, warnings: list[str]) -> None:
    """Warning when an account could not be read, or when the settings name something the
    organization or the directory does not have (``warnings``); else Active."""
    troubled = {
        acct: info
        for acct, info in run.accounts.items()
        if info["outcome"] in (AccountOutcome.ACCESS_DENIED.value, AccountOutcome.INCOMPLETE.value)
    }
    row.last_sync_at = run.finished_at
    messages = [
        f"{acct} ({info['name']}): {info['outcome']} — {info['detail']}"
        for acct, info in sorted(troubled.items())
    ] + warnings
    if messages:
        run.state = "warning"
        row.status = Status.WARNING
        row.status_message = "; ".join(messages)
    else:
        run.state = "succeeded"
        row.status = Status.ACTIVE
        row.status_message = None


def connector_actor(row: Integration) -> audit.Actor:
    """Who a sync's changes are audited as: the integration's connector."""
    return audit.Actor("connector", row.connector_id, "connector")


def land_summary(session: Session, run: SyncRun, row: Integration, summary: SyncSummary) -> None:
    """The first step of finishing a sync (``runtime.job_outcomes`` runs the steps): the
    organization-wide records, the accounts no longer reported swept, the permissions, and
    what the summary says about the organization and its identity store. The directory it
    read is applied next (``directory.identity_store``), then ``close_run``."""
    if summary.management_resources is not None:
        # Organization-wide records (Identity Center groups) belong to no account.
        inventory = summary.management_resources
        _merge_counts(run, _land(session, row, inventory, run.generation, None))
    _sweep_gone(session, row, run, summary)
    _permissions(session, row, summary)
    row.facts = {
        **row.facts,
        "organization_id": summary.organization_id,
        "management_account_id": summary.management_account_id,
        "root_id": summary.root_id,
    }
    if summary.directory is not None:
        row.facts = {
            **row.facts,
            "instance_arn": summary.directory.instance_arn,
            "identity_store_id": summary.directory.identity_store_id,
        }


def close_run(session: Session, run: SyncRun, row: Integration, summary: SyncSummary) -> None:
    """Once the directory is applied: the integration's owners resolved against it, the run's
    figures, and the integration's status (Warning or Active)."""
    owners.resolve_integration_owners(session, row)
    run.finished_at = utcnow()
    run.accounts_total = summary.accounts_total
    if summary.management_resources is not None:
        run.resources_seen = (run.resources_seen or 0) + len(summary.management_resources.resources)
    run.updated_at = run.finished_at
    run.aws_calls = summary.aws_calls
    warnings = [
        w for w in (integrations.owner_warning(session, row), _ou_warning(row, summary)) if w
    ]
    _status(row, run, warnings)


def record_synced(session: Session, run: SyncRun, row: Integration) -> None:
    """The last step: the planner's statistics refreshed, and the sync audited."""
    resource_index.refresh_statistics(session)  # for the eligibility index's query plans
    audit.record(session, connector_actor(row), "integration.synced", "integration", row.id,
                 {"sync_run_id": run.id, "state": run.state, "counts": run.counts})  # fmt: skip


def _ou_warning(row: Integration, summary: SyncSummary) -> str | None:
    """Records the organization's OU ids (``facts.ou_ids``, for flow checks) and names the
    Exclude OU ids that are not among them: they excluded nothing."""
    if summary.ou_ids is None:  # an older connector: nothing to check against
        return None
    known = set(summary.ou_ids)
    row.facts = {**row.facts, "ou_ids": sorted(known)}
    unknown = [ou for ou in integrations.config_of(row).exclude_ou_ids if ou not in known]
    if not unknown:
        return None
    return (
        f"Exclude OU id(s) not in the organization: {', '.join(unknown)} — they exclude "
        "nothing; correct the Exclude OUs setting"
    )


def fail_sync(session: Session, sync_run_id: str, error: str) -> None:
    run = session.get(SyncRun, sync_run_id)
    if run is None or run.state != "running":
        return
    row = integrations.get(session, run.integration_id)
    run.state = "failed"
    run.error = error
    run.finished_at = utcnow()
    if row.enabled:
        row.status = Status.ERROR
        row.status_message = error
