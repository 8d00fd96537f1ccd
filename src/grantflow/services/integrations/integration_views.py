"""How an integration and its sync runs read in the API, built from the rows in the caller's
transaction: the admin's full view (configuration, resource counts per type, the running and
the last finished sync) and a sync run's progress."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grantflow.services.integrations import lifecycle as integrations
from grantflow.store.models import Integration, Resource, SyncRun

View = dict[str, Any]
RUN_FIELDS = ("id", "generation", "trigger", "state", "started_at", "finished_at",
              "accounts_done", "accounts_total", "resources_seen", "updated_at", "counts",
              "accounts", "aws_calls", "error")  # fmt: skip
INTEGRATION_FIELDS = ("id", "name", "type", "connector_id", "resource_types", "config",
                      "status", "status_message", "enabled", "sync_interval_seconds",
                      "last_sync_at", "next_sync_at", "created_at")  # fmt: skip


def run_view(run: SyncRun, accounts: bool = True) -> View:
    """A sync run; without ``accounts`` its per-account record is left out (None)."""
    view = {f: getattr(run, f) for f in RUN_FIELDS}
    if not accounts:
        view["accounts"] = None
    return view


def _summary_run(run: SyncRun | None) -> View | None:
    """A run as the integration shows it: without its per-account record (a thousand
    accounts on every poll of a page), which ``GET …/syncs/{id}`` returns."""
    return run_view(run, accounts=False) if run is not None else None


def scanned_regions(config: dict[str, Any]) -> list[str]:
    regions = config.get("sync_regions") or [config.get("region")]
    return [str(r) for r in regions if r]


def admin_view(session: Session, row: Integration) -> View:
    """The full integration, for admins (``view``: ``admin``)."""
    counts = dict(
        session.execute(
            select(Resource.type, func.count())
            .where(Resource.integration_id == row.id)
            .group_by(Resource.type)
        ).all()
    )
    last = session.scalar(
        select(SyncRun)
        .where(SyncRun.integration_id == row.id, SyncRun.state != "running")
        .order_by(SyncRun.generation.desc())
        .limit(1)
    )
    return {
        "view": "admin",
        **{f: getattr(row, f) for f in INTEGRATION_FIELDS},
        "counts": {str(k): int(v) for k, v in counts.items()},
        "scanned_regions": scanned_regions(row.config),
        "current_sync": _summary_run(integrations.sync_in_flight(session, row)),
        "last_sync": _summary_run(last),
    }
