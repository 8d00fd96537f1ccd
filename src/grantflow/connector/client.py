"""The connector's HTTP client for the control plane's job protocol."""

from __future__ import annotations

from typing import Any

import httpx

from grantflow.domain.connector_jobs import LeasedJob

__all__ = ["ControlPlaneClient", "ControlPlaneUnavailable", "LeaseLost", "LeasedJob", "Rejected"]


class ControlPlaneUnavailable(RuntimeError):
    """The control plane could not be reached (``status`` None) or answered 5xx; try again
    later."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LeaseLost(RuntimeError):
    """The server no longer holds our lease on a job (it expired and was requeued)."""


class Rejected(RuntimeError):
    """The control plane refused the call (bad token, wrong connector): retrying won't help."""


class ControlPlaneClient:
    def __init__(
        self, base_url: str, connector_id: str, token: str, *, timeout: float = 10.0
    ) -> None:
        self.connector_id = connector_id
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "grantflow-connector"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any], timeout: float | None = None) -> Any:
        url = f"/api/v1/connectors/{self.connector_id}{path}"
        try:
            response = self._http.post(url, json=body, timeout=timeout or self._http.timeout)
        except httpx.TransportError as err:
            raise ControlPlaneUnavailable(f"{type(err).__name__}: {err}") from err
        if response.status_code >= 500:
            raise ControlPlaneUnavailable(
                f"HTTP {response.status_code} from {url}", status=response.status_code
            )
        if response.status_code == 409:
            raise LeaseLost(response.json().get("error", {}).get("message", "lease lost"))
        if response.status_code >= 400:
            message = response.json().get("error", {}).get("message", response.text)
            raise Rejected(f"HTTP {response.status_code}: {message}")
        return response.json()

    def heartbeat(self, version: str, identity_arn: str | None, account_id: str | None) -> None:
        self._post(
            "/heartbeat",
            {"version": version, "aws_identity_arn": identity_arn, "aws_account_id": account_id},
        )

    def lease(self, max_jobs: int, wait_seconds: float, lease_seconds: int) -> list[LeasedJob]:
        body = {"max_jobs": max_jobs, "wait_seconds": wait_seconds, "lease_seconds": lease_seconds}
        answer = self._post("/jobs/lease", body, timeout=wait_seconds + 10.0)
        return [LeasedJob.model_validate(j) for j in answer["jobs"]]

    def complete(self, job: LeasedJob, result: dict[str, Any]) -> None:
        self._post(f"/jobs/{job.id}/complete", {"lease_id": job.lease_id, "result": result})

    def fail(
        self, job: LeasedJob, error: str, retryable: bool, result: dict[str, Any] | None = None
    ) -> None:
        self._post(
            f"/jobs/{job.id}/fail",
            {
                "lease_id": job.lease_id,
                "error": error[:4000],
                "retryable": retryable,
                "result": result,
            },
        )

    def sync_batch(self, job: LeasedJob, account: dict[str, Any]) -> None:
        self._post(f"/jobs/{job.id}/sync-batch", {"lease_id": job.lease_id, "account": account})

    def sync_progress(self, job: LeasedJob, accounts_total: int) -> None:
        self._post(
            f"/jobs/{job.id}/sync-progress",
            {"lease_id": job.lease_id, "accounts_total": accounts_total},
        )

    def grant_progress(self, job: LeasedJob, pre_existing: bool) -> None:
        self._post(
            f"/jobs/{job.id}/grant-progress",
            {"lease_id": job.lease_id, "pre_existing": pre_existing},
        )

    def extend(self, job: LeasedJob, seconds: int) -> None:
        self._post(f"/jobs/{job.id}/extend", {"lease_id": job.lease_id, "seconds": seconds})

    def release(self, job: LeasedJob) -> None:
        self._post(f"/jobs/{job.id}/release", {"lease_id": job.lease_id})
