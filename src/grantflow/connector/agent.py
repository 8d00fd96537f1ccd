"""The connector's main loop: heartbeat, lease, run handlers, report, shut down cleanly.

Runs the same way as a separate process (`grantflow connector run`) and as the managed
connector inside the server: both speak HTTP to the control plane.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from grantflow import __version__
from grantflow.aws.errors import AwsError
from grantflow.aws.session import CallerIdentity, ClientFactory
from grantflow.connector.client import (
    ControlPlaneClient,
    ControlPlaneUnavailable,
    LeasedJob,
    LeaseLost,
    Rejected,
)
from grantflow.connector.handlers import (
    Handler,
    Interrupted,
    JobContext,
    JobFailure,
    NotRecorded,
    default_handlers,
)
from grantflow.connector.shared import Shared
from grantflow.domain.connector_jobs import BadJobData, JobType, parse_payload, result_dump
from grantflow.domain.inventory import AccountInventory

log = structlog.get_logger(__name__)


# Jobs that spend their time waiting on Identity Center (its rate and in-flight limits, its
# asynchronous operations): they get slots of their own, so that many run at once and share
# their reads and status rounds (grantflow.aws.assignment_reads, assignment_status) while the
# shared limiter keeps them within Identity Center's limits.
ASSIGNMENT_JOB_TYPES = frozenset({JobType.GRANT.value, JobType.REVOKE.value})


@dataclass(frozen=True)
class AgentSettings:
    concurrency: int = 4  # jobs of other types at once
    assignment_jobs: int = 20  # grant and revoke jobs at once (on top of ``concurrency``)
    lease_batch: int = 5  # when those slots are busy, lease again once this many are free
    lease_seconds: int = 60
    wait_seconds: float = 10.0
    heartbeat_seconds: float = 15.0
    shutdown_grace_seconds: float = 20.0
    max_backoff_seconds: float = 30.0
    report_retry_seconds: float = 1.0  # first pause before reporting again
    report_attempts_on_5xx: int = 6  # a control plane that keeps failing the report: give up


@dataclass
class _InFlight:
    job: LeasedJob
    future: Future[None]
    extended_at: float = field(default_factory=time.monotonic)


class ConnectorAgent:
    def __init__(
        self,
        client: ControlPlaneClient,
        aws: ClientFactory,
        *,
        settings: AgentSettings | None = None,
        handlers: dict[str, Handler] | None = None,
    ) -> None:
        self.client = client
        self.aws = aws
        self.settings = settings or AgentSettings()
        self.handlers = handlers if handlers is not None else default_handlers()
        self.shared = Shared(aws)
        self.stopping = threading.Event()
        self._stop_deadline = float("inf")  # after stop(): reports are given up at this time
        self._inflight: dict[str, _InFlight] = {}
        self._lock = threading.Lock()
        self._identity: CallerIdentity | None = None
        self._backoff = 1.0

    # ---- identity and heartbeats -------------------------------------------------------
    def _discover_identity(self) -> None:
        try:
            self._identity = self.aws.caller_identity()
            log.info("connector_identity", arn=self._identity.arn)
        except (AwsError, ClientError, BotoCoreError) as err:
            log.warning("connector_identity_unknown", error=str(err))

    def _heartbeat(self) -> None:
        ident = self._identity
        self.client.heartbeat(
            __version__, ident.arn if ident else None, ident.account if ident else None
        )

    def _heartbeat_loop(self) -> None:
        while not self.stopping.wait(self.settings.heartbeat_seconds):
            try:
                self._heartbeat()
                self._extend_leases()
            except (ControlPlaneUnavailable, Rejected, LeaseLost) as err:
                log.warning("heartbeat_failed", error=str(err))

    def _extend_leases(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [
                f
                for f in self._inflight.values()
                if now - f.extended_at > self.settings.lease_seconds / 3
            ]
        for flight in due:
            try:
                self.client.extend(flight.job, self.settings.lease_seconds)
                flight.extended_at = now
            except LeaseLost:
                log.warning("lease_lost", job_id=flight.job.id)

    # ---- running jobs ------------------------------------------------------------------
    def _run(self, job: LeasedJob) -> None:
        handler = self.handlers.get(job.type)
        bound = log.bind(job_id=job.id, job_type=job.type, attempt=job.attempt)
        try:
            if handler is None:
                raise JobFailure(f"this connector has no handler for {job.type!r}", retryable=False)
            context = JobContext(
                self.client.connector_id,
                self.aws,
                self.stopping,
                send_inventory=partial(self._send_inventory, job),
                report_pre_existing=partial(self._report_pre_existing, job),
                report_sync_total=partial(self._report_sync_total, job),
                shared=self.shared,
            )
            try:
                payload = parse_payload(job.type, job.payload)
            except BadJobData as err:  # nothing a retry would change: fail it, say why
                raise JobFailure(str(err), retryable=False) from err
            result = result_dump(handler(context, payload))
        except NotRecorded as err:
            # Not ours any more (or the control plane is failing): report nothing more.
            bound.warning("job_abandoned", reason=str(err))
        except Interrupted:
            bound.info("job_interrupted")
            self._report(partial(self.client.release, job))
            log.info("job_released", job_id=job.id)
        except JobFailure as failure:
            bound.warning("job_failed", error=failure.message, retryable=failure.retryable)
            self._report(partial(self.client.fail, job, failure.message, failure.retryable))
        except Exception as err:  # noqa: BLE001 - any crash is reported, never swallowed
            bound.exception("job_crashed")
            self._report(partial(self.client.fail, job, f"{type(err).__name__}: {err}", True))
        else:
            bound.info("job_succeeded")
            try:
                self._report(partial(self.client.complete, job, result), raise_rejected=True)
            except Rejected as err:
                # e.g. 413: the report is larger than the server accepts; running the job
                # again would only be refused again.
                message = f"the control plane refused this job's report: {err}"
                self._report(partial(self.client.fail, job, message, False))
        finally:
            with self._lock:
                self._inflight.pop(job.id, None)

    def _report_pre_existing(self, job: LeasedJob, pre_existing: bool) -> None:
        """Record what existed before the grant changes anything, or stop the job: a grant
        that created an assignment without this on record would, run again, find its own
        assignment, call it pre-existing, and its revoke would leave it in AWS."""
        if not self._report(partial(self.client.grant_progress, job, pre_existing)):
            raise NotRecorded(f"the control plane did not record grant progress of {job.id}")

    def _report_sync_total(self, job: LeasedJob, accounts_total: int) -> None:
        self._report(partial(self.client.sync_progress, job, accounts_total))

    def _send_inventory(self, job: LeasedJob, account: AccountInventory) -> None:
        try:
            self._report(
                partial(self.client.sync_batch, job, account.model_dump(mode="json")),
                raise_rejected=True,
            )
        except Rejected as err:
            raise JobFailure(
                f"the control plane refused an inventory batch of account "
                f"{account.account_id}: {err}",
                retryable=False,
            ) from err

    def _report(self, call: Callable[[], None], *, raise_rejected: bool = False) -> bool:
        """Report an outcome, retrying while the control plane is down (the lease may lapse;
        then the job runs again elsewhere — handlers are idempotent). A control plane that
        answers but keeps failing (5xx) gets ``report_attempts_on_5xx`` tries: then the job
        is let go (its lease lapses and it is retried or failed by the queue) instead of
        holding a slot and extending its lease forever. True once the report was taken."""
        delay = self.settings.report_retry_seconds
        server_errors = 0
        while True:
            try:
                call()
                return True
            except LeaseLost as err:
                log.warning("report_lease_lost", error=str(err))
                return False
            except Rejected as err:
                log.error("report_rejected", error=str(err))
                if raise_rejected:
                    raise
                return False
            except ControlPlaneUnavailable as err:
                left = self._stop_deadline - time.monotonic()
                if self.stopping.is_set() and left <= 0:  # the grace after stop() is over
                    log.error("report_abandoned", error=str(err))
                    return False
                server_errors += err.status is not None
                if server_errors >= self.settings.report_attempts_on_5xx:
                    log.error("report_abandoned", error=str(err), attempts=server_errors)
                    return False
                log.warning("report_retry", error=str(err), delay=delay)
                time.sleep(min(delay, max(left, 0.05)))
                delay = min(delay * 2, self.settings.max_backoff_seconds)

    def _free_slots(self) -> int:
        """Free slots of both kinds. A lease cannot ask for job types, so a job of another
        type may take a free grant/revoke slot (the pool has a thread for it)."""
        with self._lock:
            assigning = sum(
                1 for f in self._inflight.values() if f.job.type in ASSIGNMENT_JOB_TYPES
            )
            others = len(self._inflight) - assigning
        free = max(0, self.settings.concurrency - others)
        free += max(0, self.settings.assignment_jobs - assigning)
        return min(free, self._pool_size() - assigning - others)

    def _wait_for_a_batch(self) -> bool:
        """While grants and revokes run, lease again only once ``lease_batch`` of their slots
        are free: grants leased together share their existence reads, one leased at each slot
        freed would each read alone. (Other jobs wait the same seconds: a lease cannot ask for
        a type.) A connector running no grant or revoke leases at once."""
        with self._lock:
            assigning = sum(
                1 for f in self._inflight.values() if f.job.type in ASSIGNMENT_JOB_TYPES
            )
        return (
            assigning > 0 and self.settings.assignment_jobs - assigning < self.settings.lease_batch
        )

    def _pool_size(self) -> int:
        return self.settings.concurrency + self.settings.assignment_jobs

    def _lease_once(self, pool: ThreadPoolExecutor) -> None:
        free = self._free_slots()
        if free <= 0 or self._wait_for_a_batch():
            time.sleep(0.05)
            return
        leased = self.client.lease(free, self.settings.wait_seconds, self.settings.lease_seconds)
        self._backoff = 1.0
        for job in leased:
            if self.stopping.is_set():
                self.client.release(job)
                continue
            with self._lock:
                future = pool.submit(self._run, job)
                self._inflight[job.id] = _InFlight(job, future)

    def run(self) -> None:
        """Run until ``stopping`` is set; then finish in-flight jobs or release them."""
        self._discover_identity()
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        heartbeat_started = False
        with ThreadPoolExecutor(self._pool_size(), thread_name_prefix="job") as pool:
            while not self.stopping.is_set():
                try:
                    if not heartbeat_started:
                        self._heartbeat()
                        beat.start()
                        heartbeat_started = True
                        log.info("connector_connected", connector_id=self.client.connector_id)
                    self._lease_once(pool)
                except (ControlPlaneUnavailable, Rejected) as err:
                    log.warning("control_plane_unreachable", error=str(err), retry=self._backoff)
                    self.stopping.wait(self._backoff)
                    self._backoff = min(self._backoff * 2, self.settings.max_backoff_seconds)
            self._drain()
        self.client.close()

    def _drain(self) -> None:
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        while time.monotonic() < deadline:
            with self._lock:
                if not self._inflight:
                    return
            time.sleep(0.1)
        with self._lock:
            leftovers = [f.job for f in self._inflight.values()]
        for job in leftovers:
            try:
                self.client.release(job)
                log.info("job_released", job_id=job.id)
            except (ControlPlaneUnavailable, LeaseLost, Rejected) as err:
                log.warning("release_failed", job_id=job.id, error=str(err))

    def stop(self) -> None:
        """Stop leasing; in-flight jobs get ``shutdown_grace_seconds`` (from now) to finish
        and report, then they are released or let go (their leases lapse)."""
        if not self.stopping.is_set():
            self._stop_deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        self.stopping.set()
