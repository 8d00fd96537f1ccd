"""Access flows: who may request what, approved by whom — and why not. Pure rules.

``evaluate`` answers "may user U request permission P on resource R", naming the flow that
allows it and the approvers it needs, or explaining, flow by flow, why nobody allows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from grantflow.domain import patterns
from grantflow.domain.notifications import FlowNotify

STORED = "stored"  # validation context of a definition read back from the database
# Organizations account states in which nothing may be granted (Status, and the newer State).
INACTIVE_ACCOUNT_STATES = frozenset({"SUSPENDED", "PENDING_CLOSURE", "CLOSED"})


class ScopeMode(StrEnum):
    ALL = "all"
    IDS = "ids"
    TAG = "tag"
    ACCOUNTS = "accounts"
    OUS = "ous"


class ApproverKind(StrEnum):
    RESOURCE_OWNER = "resource_owner"  # owners of the resource, else the integration owners
    USERS = "users"
    GROUPS = "groups"


class ApprovalMode(StrEnum):
    AUTO = "auto"  # no approval needed
    ANY = "any"  # one approver group suffices
    ALL = "all"  # every approver group must approve


class AttributeCondition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=128)
    value: str = Field(max_length=512)


class Requestors(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_ids: list[str] = Field(default_factory=list)
    group_ids: list[str] = Field(default_factory=list)
    attribute: AttributeCondition | None = None
    everyone: bool = False

    @model_validator(mode="after")
    def _someone(self) -> Requestors:
        if not (self.everyone or self.user_ids or self.group_ids or self.attribute):
            raise ValueError("name at least one requestor: users, groups, an attribute or everyone")
        return self


class TagMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str = Field(min_length=1, max_length=128)
    value: str | None = Field(default=None, max_length=256, description="Any value when unset")


class Scope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resource_types: list[str] = Field(min_length=1)
    mode: ScopeMode = ScopeMode.ALL
    resource_ids: list[str] = Field(default_factory=list)
    tag: TagMatch | None = None
    account_ids: list[str] = Field(default_factory=list)
    ou_ids: list[str] = Field(default_factory=list, description="Includes nested OUs")
    exclude_resource_ids: list[str] = Field(default_factory=list)
    exclude_account_ids: list[str] = Field(default_factory=list)
    exclude_ou_ids: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _mode_has_values(self) -> Scope:
        needs = {
            ScopeMode.IDS: bool(self.resource_ids),
            ScopeMode.TAG: self.tag is not None,
            ScopeMode.ACCOUNTS: bool(self.account_ids),
            ScopeMode.OUS: bool(self.ou_ids),
        }
        if not needs.get(self.mode, True):
            raise ValueError(f"scope mode {self.mode.value!r} needs its list of values")
        return self


class ApproverGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ApproverKind
    user_ids: list[str] = Field(default_factory=list)
    group_ids: list[str] = Field(default_factory=list)
    required: int = Field(default=1, ge=1, le=10, description="Distinct approvals needed")

    @model_validator(mode="after")
    def _named(self) -> ApproverGroup:
        if self.kind is ApproverKind.USERS and not self.user_ids:
            raise ValueError("a users approver group needs user_ids")
        if self.kind is ApproverKind.GROUPS and not self.group_ids:
            raise ValueError("a groups approver group needs group_ids")
        return self


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: ApprovalMode = ApprovalMode.ANY
    groups: list[ApproverGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _groups(self) -> Approval:
        if self.mode is not ApprovalMode.AUTO and not self.groups:
            raise ValueError("approval needs at least one approver group (or mode auto)")
        return self


class FlowDefinition(BaseModel):
    """Everything about an access flow except its name, description and enabled flag."""

    model_config = ConfigDict(extra="forbid")
    requestors: Requestors
    scope: Scope
    permissions: dict[str, list[str]] = Field(description="Per resource type, grantable keys")
    approval: Approval = Field(default_factory=Approval)
    max_duration_seconds: int = Field(default=3600, ge=60, le=30 * 86400)
    default_duration_seconds: int = Field(default=3600, ge=60, le=30 * 86400)
    justification_required: bool = False
    justification_pattern: str | None = Field(default=None, max_length=256)
    approver_reason_required: bool = False
    max_extensions: int = Field(default=0, ge=0, le=20)
    notify: FlowNotify | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="Channels for this flow's notifications; unset: the deployment's defaults",
    )

    @field_validator("justification_pattern")
    @classmethod
    def _pattern(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Saved patterns are RE2 (linear-time matching, ``domain.patterns``); a definition
        read back from the database (``stored``) keeps an older pattern, which its flow then
        refuses at submit until an admin changes it."""
        stored = isinstance(info.context, dict) and info.context.get(STORED)
        if value is not None and not stored:
            try:
                patterns.compile_pattern(value)
            except patterns.PatternError as err:
                raise ValueError(str(err)) from err
        return value

    @classmethod
    def stored(cls, data: object) -> FlowDefinition:
        """A definition as saved in the database: validated like a new one, except that a
        justification pattern saved before RE2 does not make the whole flow unreadable."""
        return cls.model_validate(data, context={STORED: True})

    @model_validator(mode="after")
    def _consistent(self) -> FlowDefinition:
        if self.default_duration_seconds > self.max_duration_seconds:
            raise ValueError("default_duration_seconds exceeds max_duration_seconds")
        missing = [t for t in self.scope.resource_types if not self.permissions.get(t)]
        if missing:
            raise ValueError(f"permissions: none given for {', '.join(missing)}")
        extra = [t for t in self.permissions if t not in self.scope.resource_types]
        if extra:
            raise ValueError(f"permissions: {', '.join(extra)} is not in the scope's types")
        return self


# ---- views the rules work on -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequesterView:
    id: str
    group_ids: frozenset[str] = frozenset()
    attributes: dict[str, object] = field(default_factory=dict)
    active: bool = True


@dataclass(frozen=True, slots=True)
class ResourceView:
    id: str
    integration_id: str
    type: str
    aws_id: str
    account_id: str | None
    ou_path: tuple[str, ...]
    tags: dict[str, str]
    owners: tuple[str, ...]  # "user:<id>" / "group:<id>"
    account_status: str | None = None  # the Organizations status of the resource's account


@dataclass(frozen=True, slots=True)
class FlowView:
    id: str
    name: str
    enabled: bool
    integration_id: str
    definition: FlowDefinition
    integration_owners: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ApproverSet:
    """One approver group resolved to principals: approvals from ``required`` distinct
    people in ``principals`` (user or group refs) satisfy it."""

    label: str
    why: str
    principals: tuple[str, ...]
    required: int


def without_principals(
    sets: tuple[ApproverSet, ...], refs: frozenset[str]
) -> tuple[ApproverSet, ...]:
    """The approver sets with ``refs`` taken out of their named principals (a requester and
    their other accounts never approve their own request); what each set requires stays."""
    return tuple(
        ApproverSet(s.label, s.why, tuple(p for p in s.principals if p not in refs), s.required)
        for s in sets
    )


@dataclass(frozen=True, slots=True)
class Allowed:
    flow_id: str
    flow_name: str
    mode: ApprovalMode
    approver_sets: tuple[ApproverSet, ...]


@dataclass(frozen=True, slots=True)
class Denied:
    reasons: tuple[str, ...]

    def explain(self) -> str:
        return "no access flow allows this: " + "; ".join(self.reasons)


Eligibility = Allowed | Denied


def requestor_matches(rules: Requestors, user: RequesterView) -> bool:
    if rules.everyone or user.id in rules.user_ids:
        return True
    if user.group_ids.intersection(rules.group_ids):
        return True
    cond = rules.attribute
    return cond is not None and str(user.attributes.get(cond.name, "")).strip() == cond.value


def in_scope(scope: Scope, resource: ResourceView) -> str | None:
    """None when the resource is in scope, else why not. A suspended or closed account, and
    what is in it, is never in any scope."""
    if resource.type not in scope.resource_types:
        return f"covers {', '.join(scope.resource_types)}, not {resource.type}"
    if resource.account_status in INACTIVE_ACCOUNT_STATES:
        return f"cannot cover account {resource.account_id}: it is {resource.account_status}"
    if resource.id in scope.exclude_resource_ids or resource.aws_id in scope.exclude_resource_ids:
        return "excludes this resource"
    if resource.account_id and resource.account_id in scope.exclude_account_ids:
        return f"excludes account {resource.account_id}"
    if set(resource.ou_path).intersection(scope.exclude_ou_ids):
        return "excludes an OU this resource is under"
    if scope.mode is ScopeMode.IDS and not {resource.id, resource.aws_id} & set(scope.resource_ids):
        return "lists other resources"
    if scope.mode is ScopeMode.TAG and scope.tag is not None:
        value = resource.tags.get(scope.tag.key)
        if value is None or (scope.tag.value is not None and value != scope.tag.value):
            wanted = scope.tag.key + (f"={scope.tag.value}" if scope.tag.value else "")
            return f"needs tag {wanted}"
    if scope.mode is ScopeMode.ACCOUNTS and resource.account_id not in scope.account_ids:
        return "covers other accounts"
    if scope.mode is ScopeMode.OUS and not set(resource.ou_path).intersection(scope.ou_ids):
        return "covers other OUs"
    return None


def resolve_approvers(flow: FlowView, resources: Sequence[ResourceView]) -> tuple[ApproverSet, ...]:
    sets = []
    for group in flow.definition.approval.groups:
        if group.kind is ApproverKind.RESOURCE_OWNER:
            owners = sorted({o for r in resources for o in r.owners})
            if owners:
                sets.append(ApproverSet("resource owner", "owner tag of the resource",
                                        tuple(owners), group.required))  # fmt: skip
            else:
                sets.append(ApproverSet("integration owner", "the resource has no owner",
                                        flow.integration_owners, group.required))  # fmt: skip
        elif group.kind is ApproverKind.USERS:
            principals = tuple(f"user:{u}" for u in group.user_ids)
            sets.append(ApproverSet("named users", "named in the flow", principals, group.required))
        else:
            principals = tuple(f"group:{g}" for g in group.group_ids)
            sets.append(ApproverSet("named groups", "named in the flow", principals,
                                    group.required))  # fmt: skip
    return tuple(sets)


def _why_not(flow: FlowView, user: RequesterView, resource: ResourceView, permission: str) -> str:
    if not flow.enabled:
        return f"{flow.name!r} is disabled"
    if flow.integration_id != resource.integration_id:
        return f"{flow.name!r} is for another integration"
    if not requestor_matches(flow.definition.requestors, user):
        return f"{flow.name!r} does not list you as a requestor"
    scope_problem = in_scope(flow.definition.scope, resource)
    if scope_problem:
        return f"{flow.name!r} {scope_problem}"
    if permission not in flow.definition.permissions.get(resource.type, []):
        allowed = ", ".join(flow.definition.permissions.get(resource.type, []))
        return f"{flow.name!r} grants {allowed}, not {permission}"
    return ""


def evaluate(
    user: RequesterView, resource: ResourceView, permission: str, flows: Iterable[FlowView]
) -> Eligibility:
    if not user.active:
        return Denied(("your account is deactivated",))
    reasons = []
    for flow in sorted(flows, key=lambda f: f.name):
        problem = _why_not(flow, user, resource, permission)
        if not problem:
            definition = flow.definition
            approvers = (
                ()
                if definition.approval.mode is ApprovalMode.AUTO
                else (resolve_approvers(flow, [resource]))
            )
            return Allowed(flow.id, flow.name, definition.approval.mode, approvers)
        reasons.append(problem)
    return Denied(tuple(reasons) or ("there are no access flows",))
