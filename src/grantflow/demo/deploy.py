"""Put Grantflow's AWS side into the emulated organization, the way an admin would.

The connector role (what the connector runs as), then the generated CloudFormation template
as a stack in the management account, then the member role into every account through the
stack set. moto 5.2.5 does not create ``AWS::CloudFormation::StackSet`` resources (it
reports them complete and does nothing), so the stack set is created through the
CloudFormation API with the very properties the template gives it; and moto resolves an OU
target only one level deep, so every OU is named as a target.
"""

from __future__ import annotations

import json

import boto3

from grantflow.aws import cloudformation

STACK_NAME = "grantflow"
STACK_SET_NAME = "grantflow-member-role"
CONNECTOR_ROLE_NAME = "grantflow-connector"


def management_session(endpoint: str, region: str = "us-east-1") -> boto3.Session:
    del endpoint  # boto3 reads AWS_ENDPOINT_URL; kept for call-site clarity
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )


def create_connector_role(session: boto3.Session) -> str:
    """The IAM role the connector runs as (on EC2/EKS this is its instance or IRSA role)."""
    iam = session.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    try:
        role = iam.get_role(RoleName=CONNECTOR_ROLE_NAME)["Role"]
    except iam.exceptions.NoSuchEntityException:
        # In real AWS the EC2 feature also needs AmazonSSMManagedInstanceCore attached here;
        # moto only knows AWS managed policies when told to load them all (gigabytes), so
        # the demo leaves it out.
        role = iam.create_role(
            RoleName=CONNECTOR_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]
    return str(role["Arn"])


def deploy_stack(
    session: boto3.Session,
    connector_id: str,
    connector_role_arn: str,
    target_ou: str,
    audit_bucket: str = "",
    *,
    session_cuts: bool = False,
) -> tuple[str, str]:
    """Create the management stack; returns (stack id, ManagementAccountRoleArnOutput)."""
    cfn = session.client("cloudformation")
    values = {
        "ConnectorId": connector_id,
        "ConnectorRoleArn": connector_role_arn,
        "OrganizationalUnitId": target_ou,
        "AuditBucketName": audit_bucket,
        cloudformation.SESSION_CUTS: "true" if session_cuts else "false",
    }
    stack_id = cfn.create_stack(
        StackName=STACK_NAME,
        TemplateBody=cloudformation.render_template(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
    )["StackId"]
    stack = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"stack {STACK_NAME} ended {stack['StackStatus']}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return str(stack_id), str(outputs[cloudformation.OUTPUT_ROLE_ARN])


def deploy_member_roles(
    session: boto3.Session, management_role_arn: str, ou_ids: list[str], regions: list[str]
) -> None:
    """What the template's service-managed StackSet does, through the API."""
    props = cloudformation.template_dict()["Resources"]["MemberRoleStackSet"]["Properties"]  # type: ignore[index]
    cfn = session.client("cloudformation")
    cfn.create_stack_set(
        StackSetName=STACK_SET_NAME,
        TemplateBody=props["TemplateBody"],
        PermissionModel=props["PermissionModel"],
        AutoDeployment=props["AutoDeployment"],
        Capabilities=props["Capabilities"],
        Parameters=[{"ParameterKey": "ManagementRoleArn", "ParameterValue": management_role_arn}],
    )
    cfn.create_stack_instances(
        StackSetName=STACK_SET_NAME,
        DeploymentTargets={"OrganizationalUnitIds": ou_ids},
        Regions=regions[:1],
    )


def stack_set_targets(root_id: str, ous: list[tuple[str, str]]) -> list[str]:
    """OUs that cover every account exactly once under moto's one-level OU resolution (a
    target reaches its own accounts and those of its direct children): the root and every
    OU two, four, … levels below it. ``ous`` holds (id, path like "Root/A/B")."""
    return [root_id, *(ou_id for ou_id, path in ous if path.count("/") % 2 == 0)]
