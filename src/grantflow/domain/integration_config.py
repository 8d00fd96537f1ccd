"""The Amazon Organization integration's configuration and its rules (pure).

Field titles and descriptions are what the wizard shows; ``json_schema_extra`` carries the
step each field belongs to. Every rule raises a ``ValueError`` whose message says what is
expected, so the API can answer 422 naming the field and the rule.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

NAME_RE = re.compile(r"^[A-Za-z0-9 _-]{1,64}$")
ROLE_ARN_RE = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
OU_ID_RE = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$")
TAG_KEY_RE = re.compile(r"^[\w .:/=+\-@]{1,128}$")
CUSTOM_DETAILS_MAX = 400

# Public AWS regions (commercial, GovCloud, China). Kept here so validation is pure.
AWS_REGIONS = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1",
        "ap-east-2", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2",
        "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-7",
        "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ca-central-1", "ca-west-1",
        "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1",
        "eu-south-2", "eu-north-1", "il-central-1", "me-south-1", "me-central-1",
        "mx-central-1", "sa-east-1", "us-gov-east-1", "us-gov-west-1", "cn-north-1",
        "cn-northwest-1",
    }
)  # fmt: skip


class OwnerKind(StrEnum):
    USER = "user"
    GROUP = "group"


class OwnerAttribute(StrEnum):
    """What a Resource Owner tag value is matched against in the IdP."""

    GROUP_NAME = "group_name"
    USER_EMAIL = "user_email"
    USERNAME = "username"
    USER_ATTRIBUTE = "user_attribute"


class OwnerRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: OwnerKind
    value: str = Field(min_length=1, max_length=255, description="Username or group name")


class ResourceOwner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tag_key: str = Field(description="Tag whose value names the owner, e.g. owner")
    attribute: OwnerAttribute = Field(description="IdP attribute the tag value is matched to")
    attribute_name: str | None = Field(
        default=None, description="The user attribute, when attribute is user_attribute"
    )

    @field_validator("tag_key")
    @classmethod
    def _tag_key(cls, value: str) -> str:
        if not TAG_KEY_RE.match(value) or value.lower().startswith("aws:"):
            raise ValueError("must be an AWS tag key (1-128 characters, not starting with aws:)")
        return value

    @model_validator(mode="after")
    def _attribute_name(self) -> ResourceOwner:
        if (
            self.attribute is OwnerAttribute.USER_ATTRIBUTE
            and not (self.attribute_name or "").strip()
        ):
            raise ValueError("attribute_name is required when attribute is user_attribute")
        return self


def _region(value: str) -> str:
    if value not in AWS_REGIONS:
        raise ValueError(f"{value!r} is not an AWS region code (e.g. us-east-1)")
    return value


Region = Annotated[str, Field(examples=["us-east-1"])]

STEP_CONFIG: dict[str, JsonValue] = {"step": "config"}
STEP_MORE: dict[str, JsonValue] = {"step": "more"}


class AwsOrganizationConfig(BaseModel):
    """Integration Config and "Get more" settings of an Amazon Organization integration."""

    model_config = ConfigDict(extra="forbid")

    region: Region = Field(
        title="Region",
        description="Region of the management account's API calls (Organizations, STS)",
        json_schema_extra=STEP_CONFIG,
    )
    sso_region: Region = Field(
        title="AWS SSO Region",
        description="Region where IAM Identity Center is enabled",
        json_schema_extra=STEP_CONFIG,
    )
    sso_portal: str = Field(
        title="SSO Portal",
        description="AWS access portal URL, e.g. https://d-1234567890.awsapps.com/start; "
        "used to build sign-in links",
        json_schema_extra=STEP_CONFIG,
    )
    management_role_arn: str = Field(
        title="Management Account Role ARN",
        description="ManagementAccountRoleArnOutput of the Grantflow CloudFormation stack",
        json_schema_extra=STEP_CONFIG,
    )
    exclude_ou_ids: list[str] = Field(
        default_factory=list,
        title="Exclude Organization Unit IDs",
        description="OUs (ou-…) left out of discovery, with everything below them",
        json_schema_extra=STEP_CONFIG,
    )
    enable_audit: bool = Field(
        default=False,
        title="Enable Audit",
        description="Ingest CloudTrail logs to show what was done with each grant",
        json_schema_extra=STEP_CONFIG,
    )
    audit_bucket: str | None = Field(
        default=None,
        validate_default=True,
        title="CloudTrail bucket",
        description="S3 bucket of the organization trail (with Enable Audit)",
        json_schema_extra=STEP_CONFIG,
    )
    sync_regions: list[str] = Field(
        default_factory=list,
        title="Regions to discover",
        description="Regions scanned for EC2 and RDS (e.g. us-east-1, eu-west-1); empty: "
        "only Region is scanned, resources in other regions are not discovered",
        json_schema_extra=STEP_CONFIG,
    )
    cut_sessions_on_own_permission_sets: bool = Field(
        default=False,
        title="End existing sessions on your permission sets",
        description="When access to one of your own permission sets ends, also end the "
        "user's sessions already issued: Grantflow adds a deny statement for them to the "
        "permission set's inline policy and provisions the set, then removes it once those "
        "sessions have expired. Needs the template's SessionCutsOnAssignablePermissionSets. "
        "Trade-off: Grantflow then writes your permission set's inline policy (keeping your "
        "statements) and provisions the set, which also pushes any change of yours not yet "
        "provisioned. Grantflow's own permission sets always get this.",
        json_schema_extra=STEP_CONFIG,
    )
    custom_access_details: str = Field(
        default="",
        max_length=CUSTOM_DETAILS_MAX,
        title="Custom Access Details",
        description="Shown to users with their access (plain text, at most 400 characters)",
        json_schema_extra=STEP_MORE,
    )
    integration_owners: list[OwnerRef] = Field(
        default_factory=list,
        title="Integration Owner",
        description="IdP users or groups; approvers when a resource has no owner",
        json_schema_extra=STEP_MORE,
    )
    resource_owner: ResourceOwner | None = Field(
        default=None,
        validate_default=True,
        title="Resource Owner",
        description="Tag key whose value names the owner, and the IdP attribute it matches; "
        "requires an Integration Owner",
        json_schema_extra=STEP_MORE,
    )

    @field_validator("region", "sso_region")
    @classmethod
    def _regions(cls, value: str) -> str:
        return _region(value)

    @field_validator("sync_regions")
    @classmethod
    def _sync_regions(cls, value: list[str]) -> list[str]:
        for region in value:
            _region(region)
        if len(set(value)) != len(value):
            raise ValueError("lists a region twice")
        return value

    @field_validator("sso_portal")
    @classmethod
    def _portal(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or " " in value:
            raise ValueError("must be an https:// URL, e.g. https://d-1234567890.awsapps.com/start")
        return value.rstrip("/")

    @field_validator("management_role_arn")
    @classmethod
    def _role_arn(cls, value: str) -> str:
        if not ROLE_ARN_RE.match(value):
            raise ValueError("must be an IAM role ARN: arn:<partition>:iam::<account>:role/<name>")
        return value

    @field_validator("exclude_ou_ids")
    @classmethod
    def _ous(cls, value: list[str]) -> list[str]:
        for ou in value:
            if not OU_ID_RE.match(ou):
                raise ValueError(f"{ou!r} is not an OU id (ou-xxxx-xxxxxxxx)")
        if len(set(value)) != len(value):
            raise ValueError("lists an OU twice")
        return value

    @field_validator("audit_bucket")
    @classmethod
    def _bucket(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", value):
            raise ValueError("must be an S3 bucket name")
        if value is None and info.data.get("enable_audit"):
            raise ValueError("required when Enable Audit is on (the organization trail bucket)")
        return value

    @field_validator("integration_owners")
    @classmethod
    def _owners(cls, value: list[OwnerRef]) -> list[OwnerRef]:
        if len(set(value)) != len(value):
            raise ValueError("lists an owner twice")
        return value

    @field_validator("resource_owner")
    @classmethod
    def _needs_integration_owner(
        cls, value: ResourceOwner | None, info: ValidationInfo
    ) -> ResourceOwner | None:
        if value is not None and not info.data.get("integration_owners"):
            raise ValueError(
                "an Integration Owner is required when Resource Owner is set (it approves "
                "resources whose tag matches nobody)"
            )
        return value

    @property
    def regions(self) -> list[str]:
        return self.sync_regions or [self.region]


def valid_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ValueError("1-64 characters: letters, digits, space, - and _")
    return name
