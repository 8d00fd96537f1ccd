"""Create the planned resources inside member accounts, one worker thread per account.

Each worker assumes ``OrganizationAccountAccessRole`` in its account and creates that
account's resources in plan order. Which resources exist, with which names and tags, is fixed
by the plan; only the ids moto draws (EC2 instance ids) depend on thread timing.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from grantflow.demo.org_clients import (
    MEMBER_ROLE_NAME,
    AccountClients,
    ClientFactory,
    OrgBuildError,
)
from grantflow.demo.org_plan import PlannedResource
from grantflow.demo.org_shape import ResourceType
from grantflow.demo.org_summary import OrgResource

# An image id from moto's bundled AMI list; moto does not check that it exists in the region,
# and looking images up (describe_images) costs seconds per account and region.
DEMO_AMI_ID = "ami-12c6146b"
_DB_PASSWORD = "demo-only-password-1"


@dataclass(frozen=True)
class AccountWork:
    account_id: str
    resources: tuple[PlannedResource, ...]


def build_resources(
    factory: ClientFactory, work: Sequence[AccountWork], workers: int
) -> tuple[OrgResource, ...]:
    """Create every account's resources; the result lists them in ``work`` order."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="demo-org") as pool:
        per_account = list(pool.map(lambda item: _build_account(factory, item), work))
    return tuple(resource for resources in per_account for resource in resources)


def _build_account(factory: ClientFactory, work: AccountWork) -> list[OrgResource]:
    builtin = OrgResource(
        account_id=work.account_id,
        region=None,
        type=ResourceType.IAM_ROLE,
        id=MEMBER_ROLE_NAME,
        arn=f"arn:aws:iam::{work.account_id}:role/{MEMBER_ROLE_NAME}",
        name=MEMBER_ROLE_NAME,
        tags=(),
        builtin=True,
    )
    if not work.resources:
        return [builtin]
    try:
        clients = factory.member(work.account_id)
        built = [_create(clients, work.account_id, planned) for planned in work.resources]
    except (ClientError, BotoCoreError) as err:
        raise OrgBuildError(f"building resources in account {work.account_id}: {err}") from err
    return [builtin, *built]


def _create(clients: AccountClients, account_id: str, planned: PlannedResource) -> OrgResource:
    tags = [{"Key": key, "Value": value} for key, value in planned.tags]
    region = planned.region or "us-east-1"

    def result(resource_id: str, arn: str) -> OrgResource:
        return OrgResource(
            account_id, planned.region, planned.type, resource_id, arn, planned.name, planned.tags
        )

    api = clients.client  # boto3 clients are untyped (Any)
    if planned.type is ResourceType.IAM_ROLE:
        role = api("iam").create_role(
            RoleName=planned.name,
            AssumeRolePolicyDocument=_TRUST_POLICY,
            Description=f"demo role {planned.name}",
            Tags=tags,
        )["Role"]
        return result(role["RoleName"], role["Arn"])
    if planned.type is ResourceType.S3_BUCKET:
        s3 = api("s3", region)
        extra = (
            {}
            if region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        s3.create_bucket(Bucket=planned.name, **extra)
        s3.put_bucket_tagging(Bucket=planned.name, Tagging={"TagSet": tags})
        return result(planned.name, f"arn:aws:s3:::{planned.name}")
    if planned.type is ResourceType.EC2_INSTANCE:
        instance = api("ec2", region).run_instances(
            ImageId=DEMO_AMI_ID,
            InstanceType=planned.variant,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )["Instances"][0]
        instance_id = instance["InstanceId"]
        return result(instance_id, f"arn:aws:ec2:{region}:{account_id}:instance/{instance_id}")
    if planned.type is ResourceType.RDS_INSTANCE:
        db = api("rds", region).create_db_instance(
            DBInstanceIdentifier=planned.name,
            DBInstanceClass="db.t3.micro",
            Engine=planned.variant,
            MasterUsername="demoadmin",
            MasterUserPassword=_DB_PASSWORD,
            AllocatedStorage=20,
            Tags=tags,
        )["DBInstance"]
        return result(db["DBInstanceIdentifier"], db["DBInstanceArn"])
    cluster = api("rds", region).create_db_cluster(
        DBClusterIdentifier=planned.name,
        Engine=planned.variant,
        MasterUsername="demoadmin",
        MasterUserPassword=_DB_PASSWORD,
        Tags=tags,
    )["DBCluster"]
    return result(cluster["DBClusterIdentifier"], cluster["DBClusterArn"])


_TRUST_POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
    '"Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
)
