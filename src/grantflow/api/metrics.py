"""Prometheus metrics, one registry per app (no global state between app instances)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
