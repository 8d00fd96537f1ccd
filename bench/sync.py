"""Benchmark: a full discovery sync of a large emulated organization.

Builds an organization of N accounts (default 1000) with ~20 resources each in a moto
server, runs Grantflow's sync (the connector side, as the `sync` job runs it) and then a bare
boto3 script making the same list calls with the same concurrency — the floor. Prints wall
time, AWS calls, peak RSS and the ratio to the floor.

    .venv/bin/python bench/sync.py --accounts 1000

Building the organization in moto dominates (moto spends ~20 ms of CPU per request; 1000
accounts took ~15 minutes to build here); the timed part is the sync itself.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import time
from concurrent.futures import ThreadPoolExecutor

import boto3

from grantflow.aws.session import ClientFactory, ClientSettings
from grantflow.aws.sync import SyncOptions, sync_organization
from grantflow.demo.moto_server import start_moto_server
from grantflow.demo.org import build_org
from grantflow.demo.org_shape import OrgShape
from grantflow.domain.inventory import AccountInventory

MEMBER_ROLE = "GrantflowMemberRole"


def _session(creds: dict[str, str] | None = None) -> boto3.Session:
    if creds is None:
        return boto3.Session(region_name="us-east-1")
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name="us-east-1",
    )


def _floor_account(account: str, regions: list[str], calls: list[int]) -> None:
    sts = _session().client("sts")
    role = f"arn:aws:iam::{account}:role/{MEMBER_ROLE}"
    session = _session(sts.assume_role(RoleArn=role, RoleSessionName="floor")["Credentials"])
    n = 1
    iam = session.client("iam")
    for page in iam.get_paginator("list_roles").paginate():
        n += 1
        for role_info in page["Roles"]:
            iam.list_role_tags(RoleName=role_info["RoleName"])
            n += 1
    s3 = session.client("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        s3.get_bucket_location(Bucket=bucket["Name"])
        with contextlib.suppress(s3.exceptions.ClientError):  # NoSuchTagSet: no tags
            s3.get_bucket_tagging(Bucket=bucket["Name"])
        n += 2
    n += 1
    for region in regions:
        for service, op in (("ec2", "describe_instances"), ("rds", "describe_db_instances"),
                            ("rds", "describe_db_clusters")):  # fmt: skip
            for _ in session.client(service, region_name=region).get_paginator(op).paginate():
                n += 1
    calls.append(n)


def floor(accounts: list[str], regions: list[str], workers: int) -> tuple[float, int]:
    started = time.perf_counter()
    org = _session().client("organizations")
    calls = [2]
    root = org.list_roots()["Roots"][0]["Id"]
    stack = [root]
    while stack:
        parent = stack.pop()
        for page in org.get_paginator("list_organizational_units_for_parent").paginate(
            ParentId=parent
        ):
            calls[0] += 1
            stack.extend(ou["Id"] for ou in page["OrganizationalUnits"])
        for _ in org.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
            calls[0] += 1
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda a: _floor_account(a, regions, calls), accounts))
    return time.perf_counter() - started, sum(calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    server = start_moto_server()
    os.environ.update(AWS_ENDPOINT_URL=server.endpoint, AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    try:
        t0 = time.perf_counter()
        shape = OrgShape.large(accounts=args.accounts, resources_per_account=args.resources)
        org = build_org(server.endpoint, shape)
        print(f"built {len(org.accounts)} accounts, {len(org.resources)} resources "
              f"in {time.perf_counter() - t0:.0f}s")  # fmt: skip
        received: list[AccountInventory] = []
        factory = ClientFactory.from_environment(settings=ClientSettings(max_attempts=2))
        options = SyncOptions(
            management_role_arn=f"arn:aws:iam::{org.management_account_id}:role/GrantflowManagementRole",
            external_id="gfc-bench", regions=list(org.regions), sso_region=org.sso_region,
            excluded_ou_ids=list(org.excluded_ou_ids), max_workers=args.workers,
        )  # fmt: skip
        started = time.perf_counter()
        summary = sync_organization(factory, options, received.append)
        sync_seconds = time.perf_counter() - started
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        resources_seen = sum(len(i.resources) for i in received)
        synced = sorted(a.id for a in org.accounts if a.id in org.synced_account_ids)
        floor_seconds, floor_calls = floor(synced, list(org.regions), args.workers)
        print(
            f"grantflow sync: {sync_seconds:.1f}s wall, {summary.aws_calls} AWS calls, "
            f"{resources_seen} resources in {len(received)} accounts, peak RSS {rss_mb:.0f} MB"
        )
        print(f"bare boto3 floor: {floor_seconds:.1f}s wall, {floor_calls} AWS calls")
        print(f"ratio grantflow/floor: {sync_seconds / floor_seconds:.2f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
