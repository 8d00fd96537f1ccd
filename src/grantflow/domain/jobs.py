"""Connector jobs: their states, the moves between them, and retry backoff. Pure rules."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum

from grantflow.domain.connector_jobs import JobType


class JobState(StrEnum):
    QUEUED = "queued"
    LEASED = "leased"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class JobPriority(IntEnum):
    """Lease order of a connector's queue: the lower value is leased first, then the job that
    became available first. Taking access away never waits behind any other work."""

    REVOKE = 0  # revocations and expiries
    GRANT = 1
    SYNC = 2  # the system's upkeep: sync, reconcile, verify, session-audit ingest, ping
    PLAN = 3  # dry runs a user asks for


# session_cuts end a revoked user's existing sessions: revocation too
_PRIORITY_BY_TYPE: dict[str, JobPriority] = {
    JobType.REVOKE: JobPriority.REVOKE, JobType.GRANT: JobPriority.GRANT,
    JobType.PLAN: JobPriority.PLAN, JobType.SESSION_CUTS: JobPriority.REVOKE,
}  # fmt: skip


def priority_of(job_type: str) -> JobPriority:
    """The class of a job type; a type not named here is upkeep. A system-made job of a
    user-facing type (reconcile's plan) names its class itself."""
    return _PRIORITY_BY_TYPE.get(job_type, JobPriority.SYNC)


BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1``: exponential with full jitter, capped."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2 ** max(attempt - 1, 0)))
    return (rng or random.Random()).uniform(ceiling / 2, ceiling)  # noqa: S311 - not crypto


@dataclass(frozen=True, slots=True)
class Retry:
    """What happens to a job whose attempt did not succeed."""

    state: JobState
    available_at: datetime | None
    reason: str


def after_failure(
    attempts: int, max_attempts: int, retryable: bool, now: datetime, error: str
) -> Retry:
    if not retryable:
        return Retry(JobState.FAILED, None, f"not retryable: {error}")
    if attempts >= max_attempts:
        return Retry(JobState.FAILED, None, f"gave up after {attempts} attempts: {error}")
    delay = timedelta(seconds=backoff_seconds(attempts))
    return Retry(JobState.QUEUED, now + delay, error)
