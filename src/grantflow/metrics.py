"""Prometheus metrics, one registry per app (no global state between app instances).

The services update them; the API serves them at ``/metrics`` (api/metrics.py).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "grantflow_http_requests_total",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "grantflow_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=self.registry,
        )
        self.jobs_queued = Gauge(
            "grantflow_jobs_queued", "Jobs waiting for a connector", registry=self.registry
        )
        self.jobs_oldest_age = Gauge(
            "grantflow_jobs_oldest_queued_age_seconds",
            "Age of the oldest job still waiting",
            registry=self.registry,
        )
        self.jobs_finished = Counter(
            "grantflow_jobs_finished_total",
            "Jobs that reached a final state",
            ["type", "state"],
            registry=self.registry,
        )
        self.lease_expiries = Counter(
            "grantflow_job_lease_expiries_total",
            "Leases that ran out and returned their job to the queue",
            registry=self.registry,
        )
        # Observed from database timestamps by the scheduler (services/runtime/metrics_observer.py):
        # every replica observes the same rows, so aggregate these with max(), not sum().
        self.requests_by_state = Gauge(
            "grantflow_access_requests",
            "Access requests in each state",
            ["state"],
            registry=self.registry,
        )
        self.grant_latency = Histogram(
            "grantflow_grant_latency_seconds",
            "From approval to access granted in AWS, per request",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.revoke_latency = Histogram(
            "grantflow_revoke_latency_seconds",
            "From a revoke job queued (expiry or revocation) to AWS confirming it",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.revoke_failures = Counter(
            "grantflow_revoke_failures_total",
            "Revoke attempts that failed (each is retried until AWS confirms)",
            registry=self.registry,
        )
        self.sync_duration = Histogram(
            "grantflow_sync_duration_seconds",
            "Duration of finished integration syncs",
            ["state"],
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600),
            registry=self.registry,
        )
        self.sync_errors = Counter(
            "grantflow_sync_errors_total",
            "Integration syncs that failed",
            registry=self.registry,
        )
        self.notifications = Counter(
            "grantflow_notification_deliveries_total",
            "Notification delivery attempts, by channel and outcome (delivered, retry, failed)",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.notifications_pending = Gauge(
            "grantflow_notifications_pending",
            "Notification deliveries waiting to be sent (or retried)",
            registry=self.registry,
        )
        self.session_audit_events = Counter(
            "grantflow_session_audit_events_total",
            "CloudTrail events matched to grants and stored",
            registry=self.registry,
        )
