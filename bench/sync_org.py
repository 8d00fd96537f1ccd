"""A benchmark organization kept in a moto server that outlives the benchmark run.

Building 1,000 accounts with ~20 resources each costs moto tens of minutes of CPU, so
:func:`ensure_org` builds each size once: a moto server (its own process, in its own session so
that it outlives the caller) holding the organization, Grantflow's management stack and the
member roles the stack set deploys, and a marker file that names its endpoint and what it
holds. A later run whose marker names a live server answering with the same organization
reuses it; ``fresh=True`` (``--fresh``) builds it again, :func:`stop_cached` stops them all.

A sync only reads, so one organization serves any number of runs. The management stack is
deployed with a placeholder connector id: moto does not check trust policies (nor the
``sts:ExternalId`` condition), so the connector each run registers can assume its roles.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import boto3
import httpx

from grantflow.demo.deploy import (
    create_connector_role,
    deploy_member_roles,
    deploy_stack,
    management_session,
    stack_set_targets,
)
from grantflow.demo.moto_server import free_loopback_port
from grantflow.demo.org import build_org
from grantflow.demo.org_shape import OrgShape

CACHE_DIR = Path(
    os.environ.get("GRANTFLOW_BENCH_CACHE") or Path(tempfile.gettempdir()) / "grantflow-bench-sync"
)
PLACEHOLDER_CONNECTOR_ID = "gfc-benchplaceholder0000"
MOTO_READY_SECONDS = 60.0


@dataclass(frozen=True)
class CachedOrg:
    """What a run needs to know of a built organization (the marker file's content)."""

    endpoint: str
    pid: int
    accounts: int
    resources_per_account: int
    organization_id: str
    management_account_id: str
    root_id: str
    sso_region: str
    regions: list[str]
    excluded_ou_ids: list[str]
    synced_accounts: int
    resources: int
    management_role_arn: str
    connector_role_arn: str
    build_seconds: float

    def env(self) -> dict[str, str]:
        """Environment for every process that talks to this emulated AWS."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def _marker(accounts: int, resources: int) -> Path:
    return CACHE_DIR / f"org-{accounts}x{resources}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _answers(org: CachedOrg) -> bool:
    """The server at the marker's endpoint is up and still holds this organization."""
    if not _alive(org.pid):
        return False
    try:
        found = boto3.client(
            "organizations", endpoint_url=org.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        ).describe_organization()["Organization"]  # fmt: skip
    except Exception:  # noqa: BLE001 - any failure means: build it again
        return False
    return bool(found["Id"] == org.organization_id)


def _start_detached_moto(log: Path) -> tuple[str, int]:
    port = free_loopback_port()
    env = dict(os.environ)
    env.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)
    env.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + MOTO_READY_SECONDS
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1.0)
            return endpoint, process.pid
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"moto did not start at {endpoint} (see {log})")


def _build(accounts: int, resources: int) -> CachedOrg:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    endpoint, pid = _start_detached_moto(CACHE_DIR / f"moto-{accounts}x{resources}.log")
    started = time.perf_counter()
    try:
        os.environ.update(AWS_ENDPOINT_URL=endpoint)
        shape = OrgShape.large(accounts=accounts, resources_per_account=resources)
        org = build_org(endpoint, shape)
        mgmt = management_session(endpoint)
        connector_role = create_connector_role(mgmt)
        _, management_role = deploy_stack(
            mgmt, PLACEHOLDER_CONNECTOR_ID, connector_role, org.root_id
        )
        targets = stack_set_targets(org.root_id, [(ou.id, ou.path) for ou in org.ous])
        deploy_member_roles(mgmt, management_role, targets, ["us-east-1"])
    except BaseException:
        os.kill(pid, signal.SIGTERM)
        raise
    return CachedOrg(
        endpoint=endpoint, pid=pid, accounts=accounts, resources_per_account=resources,
        organization_id=org.organization_id, management_account_id=org.management_account_id,
        root_id=org.root_id, sso_region=org.sso_region, regions=list(org.regions),
        excluded_ou_ids=list(org.excluded_ou_ids), synced_accounts=len(org.synced_account_ids),
        resources=len(org.resources), management_role_arn=management_role,
        connector_role_arn=connector_role, build_seconds=round(time.perf_counter() - started, 1),
    )  # fmt: skip


def ensure_org(accounts: int, resources: int, *, fresh: bool = False) -> tuple[CachedOrg, bool]:
    """The organization of this size: ``(org, reused)``; built (and cached) when needed."""
    marker = _marker(accounts, resources)
    if marker.exists():
        cached = CachedOrg(**json.loads(marker.read_text()))
        if not fresh and _answers(cached):
            return cached, True
        if _alive(cached.pid):
            os.kill(cached.pid, signal.SIGTERM)
        marker.unlink()
    org = _build(accounts, resources)
    marker.write_text(json.dumps(asdict(org), indent=2))
    return org, False


def stop_cached() -> list[str]:
    """Stop every cached moto server and forget its organization."""
    stopped = []
    for marker in sorted(CACHE_DIR.glob("org-*.json")):
        cached = CachedOrg(**json.loads(marker.read_text()))
        if _alive(cached.pid):
            os.kill(cached.pid, signal.SIGTERM)
        marker.unlink()
        stopped.append(marker.stem)
    return stopped


if __name__ == "__main__":  # build (or find) the organizations named: 100,300,1000
    for n in (int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "100").split(",")):
        t0 = time.perf_counter()
        got, reused = ensure_org(n, 20)
        print(f"{n} accounts: {'reused' if reused else 'built'} in "
              f"{time.perf_counter() - t0:.0f}s at {got.endpoint} (pid {got.pid})", flush=True)  # fmt: skip
