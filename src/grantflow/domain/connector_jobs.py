"""The connector job protocol, shared by the control plane and the connector: every job type,
the payload the control plane sends with it and the result the connector reports back.

The wire format is the JSON of these models. A payload is written with only the fields its
producer set (``payload_for``), so a job carries exactly the keys it always carried and an
older connector reads it as before. Reading is tolerant of what a newer peer adds: unknown
payload keys are ignored, unknown result keys are kept (``extra="allow"``: a verify result is
recorded whole in the audit trail).

Pure data: no I/O, nothing of the project above ``domain``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from grantflow.domain.cloudtrail_match import GrantMatcher
from grantflow.domain.grant_specs import GrantHandle, parse_grant_spec
from grantflow.domain.inventory import SyncSummary


class JobType(StrEnum):
    VERIFY = "verify"  # assume the management role, describe the organization
    PING = "ping"  # a round trip through the protocol ("Test connector")
    SYNC = "sync"  # discovery: inventory streamed per account, a summary at the end
    GRANT = "grant"
    REVOKE = "revoke"
    PLAN = "plan"  # dry run of grants and revokes (a user's, or reconciliation's)
    AUDIT_INGEST = "audit_ingest"  # session audit: new CloudTrail files of the org trail
    SESSION_CUTS = "session_cuts"  # end revoked users' existing sessions


# Payload times go out as ``datetime.isoformat()`` writes them ("+00:00", not pydantic's "Z"):
# the form the hand-built payloads always had.
IsoDatetime = Annotated[datetime, PlainSerializer(datetime.isoformat, when_used="json")]


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Result(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class ManagementAccess(Payload):
    """How the connector reaches AWS Organizations and Identity Center: the management role,
    assumed with the external id (the connector's id when missing)."""

    management_role_arn: str = Field(min_length=1)
    external_id: str | None = None


# Grant specs and handles travel as the JSON the control plane stored; ``parse_payload`` (the
# connector, before any handler runs) also checks they read as GrantSpec / GrantHandle, so one
# the connector cannot read fails its job with the field named instead of crashing a handler.
_READING = {"reading": True}


def _check_spec(value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
    if value is not None and info.context == _READING:
        parse_grant_spec(value)
    return value


def _check_handle(value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
    if value and info.context == _READING:
        GrantHandle.model_validate(value)
    return value


# ---- verify ------------------------------------------------------------------------------
class VerifyPayload(Payload):
    role_arn: str = Field(min_length=1)
    external_id: str | None = None
    integration_id: str | None = None  # None: a connector's own check (no integration yet)
    region: str | None = None
    exclude_ou_ids: list[str] = Field(default_factory=list)


class VerifyResult(Result):
    organization_id: str
    management_account_id: str
    management_account_email: str | None = None
    assumed_identity_arn: str | None = None
    unknown_exclude_ou_ids: list[str] = Field(default_factory=list)


# ---- ping --------------------------------------------------------------------------------
class PingPayload(Payload):
    delay_seconds: float = Field(default=0.0, ge=0)


class PingResult(Result):
    """What answered the round trip (informational)."""

    connector_id: str | None = None
    pid: int | None = None
    version: str | None = None


# ---- sync --------------------------------------------------------------------------------
class SyncPayload(ManagementAccess):
    integration_id: str
    sync_run_id: str
    generation: int | None = None
    region: str | None = None
    sso_region: str | None = None
    regions: list[str] | None = None
    resource_types: list[str] | None = None
    excluded_ou_ids: list[str] | None = None


class SyncResult(SyncSummary, Result):
    """The sync's summary (``domain.inventory.SyncSummary``)."""


# ---- grant and revoke ----------------------------------------------------------------------
class GrantPayload(ManagementAccess):
    grant_id: str
    tuple_key: str | None = None  # grants and revokes of one tuple run one at a time
    spec: dict[str, Any]  # a GrantSpec, with ``known_pre_existing`` for retries

    _spec = field_validator("spec")(_check_spec)


class GrantResult(Result):
    handle: dict[str, Any]  # a GrantHandle: what a revoke needs to undo the grant


class RevokePayload(ManagementAccess):
    grant_id: str
    tuple_key: str | None = None
    handle: dict[str, Any] | None = None  # None or empty: nothing was granted
    spec: dict[str, Any] | None = None
    still_needed: bool = False  # another live grant holds the same AWS tuple

    _handle = field_validator("handle")(_check_handle)


class RevokeResult(Result):
    status: str  # a RevokeStatus value, or "already_absent" when nothing was granted
    permission_set_deleted: bool = False
    plan: list[str] = Field(default_factory=list)
    note: str | None = None


# ---- plan (dry run and reconciliation) -------------------------------------------------------
class PlanItem(Payload):
    grant_id: str
    action: Literal["grant", "revoke"]
    spec: dict[str, Any] | None = None  # for "grant"
    handle: dict[str, Any] | None = None  # for "revoke"
    still_needed: bool = False
    expect: Literal["present", "absent"] | None = None  # reconciliation: what should hold

    _spec = field_validator("spec")(_check_spec)
    _handle = field_validator("handle")(_check_handle)


class PlanPayload(ManagementAccess):
    items: list[PlanItem] = Field(default_factory=list)
    integration_id: str | None = None  # set: reconciliation (the system's), else a dry run
    repair: bool = False  # reconciliation: queue the fixes
    request_id: str | None = None  # a dry run: its request, in the state it was planned
    request_state: str | None = None
    requested_by: str | None = None


class PlannedItem(Result):
    grant_id: str
    action: Literal["grant", "revoke"]
    pre_existing: bool = False
    steps: list[str] = Field(default_factory=list)
    in_sync: bool


class PlanResult(Result):
    items: list[PlannedItem] = Field(default_factory=list)


# ---- session audit -------------------------------------------------------------------------
class AuditIngestPayload(ManagementAccess):
    """What ``aws.cloudtrail.IngestRequest`` reads (it validates the rest of its limits)."""

    integration_id: str
    bucket: str = Field(min_length=1)
    organization_id: str
    region: str | None = None
    matchers: list[GrantMatcher]
    cursor: dict[str, str] = Field(default_factory=dict)
    as_of: IsoDatetime
    max_object_bytes: int | None = Field(default=None, ge=1)
    max_records: int | None = Field(default=None, ge=1)


class AuditIngestResult(Result):
    files_read: int = 0
    records_read: int = 0
    matches: list[dict[str, Any]] = Field(default_factory=list)
    cursor: dict[str, str] = Field(default_factory=dict)
    unreadable: list[str] = Field(default_factory=list)
    more: bool = False  # stopped at a limit: run again soon


# ---- session cuts --------------------------------------------------------------------------
class CutItem(Payload):
    cut_id: str
    account_id: str
    user_name: str
    not_before: IsoDatetime


class CutRelease(Payload):
    cut_id: str
    why: str


class SessionCutsPayload(ManagementAccess):
    integration_id: str
    instance_arn: str = Field(min_length=1)
    identity_center_region: str | None = None
    permission_set_arn: str = Field(min_length=1)
    cuts: list[CutItem] = Field(default_factory=list)
    releases: list[CutRelease] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=list)
    reason: str = "cut"
    provision: Literal["always", "if-changed"] = "always"


class SessionCutsResult(Result):
    status: str  # "applied" or "permission-set-gone"
    changed: bool = False
    session_seconds: int | None = None
    statements: int = 0
    policy_chars: int = 0
    coalesced: bool = False
    provisioned: list[str] = Field(default_factory=list)


# ---- the table and the helpers -------------------------------------------------------------
PAYLOADS: dict[JobType, type[Payload]] = {
    JobType.VERIFY: VerifyPayload,
    JobType.PING: PingPayload,
    JobType.SYNC: SyncPayload,
    JobType.GRANT: GrantPayload,
    JobType.REVOKE: RevokePayload,
    JobType.PLAN: PlanPayload,
    JobType.AUDIT_INGEST: AuditIngestPayload,
    JobType.SESSION_CUTS: SessionCutsPayload,
}

RESULTS: dict[JobType, type[Result]] = {
    JobType.VERIFY: VerifyResult,
    JobType.PING: PingResult,
    JobType.SYNC: SyncResult,
    JobType.GRANT: GrantResult,
    JobType.REVOKE: RevokeResult,
    JobType.PLAN: PlanResult,
    JobType.AUDIT_INGEST: AuditIngestResult,
    JobType.SESSION_CUTS: SessionCutsResult,
}

R = TypeVar("R", bound=Result)

_TYPE_OF_PAYLOAD = {model: job_type for job_type, model in PAYLOADS.items()}


class BadJobData(ValueError):
    """A payload or result that does not fit its job type's model; ``field`` is the first
    offending field's dotted path (``items.0.spec``), ``reason`` what is wrong with it."""

    def __init__(self, job_type: str, what: str, field: str, reason: str) -> None:
        super().__init__(f"invalid {job_type} {what}: {field}: {reason}")
        self.job_type = job_type
        self.field = field
        self.reason = reason


def _bad(job_type: str, what: str, err: ValidationError) -> BadJobData:
    first = err.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or what
    return BadJobData(job_type, what, field, str(first.get("msg", "invalid")))


def job_type_of(value: str) -> JobType:
    try:
        return JobType(value)
    except ValueError:
        raise BadJobData(value, "job", "type", f"unknown job type {value!r}") from None


def payload_for(job_type: JobType, payload: Payload) -> dict[str, Any]:
    """The stored and sent form of ``payload``: the fields its producer set, as JSON."""
    if _TYPE_OF_PAYLOAD.get(type(payload)) is not job_type:
        raise TypeError(f"a {type(payload).__name__} is not the payload of a {job_type} job")
    return payload.model_dump(mode="json", exclude_unset=True)


def parse_payload(job_type: str, data: object) -> Payload:
    """``data`` as ``job_type``'s payload model, its grant specs and handles read as the
    connector reads them; BadJobData names the first bad field."""
    kind = job_type_of(job_type)
    try:
        return PAYLOADS[kind].model_validate(data, context=_READING)
    except ValidationError as err:
        raise _bad(kind, "payload", err) from None


def parse_result(job_type: str, data: object) -> Result:
    """``data`` as ``job_type``'s result model; BadJobData names the first bad field."""
    kind = job_type_of(job_type)
    try:
        return RESULTS[kind].model_validate(data)
    except ValidationError as err:
        raise _bad(kind, "result", err) from None


def result_as(model: type[R], data: object) -> R:
    """A stored result read back as ``model`` (results are validated when reported)."""
    return model.model_validate(data or {})


def result_dump(result: Result | dict[str, Any]) -> dict[str, Any]:
    """The sent and stored form of a result (a plain dict passes unchanged)."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", exclude_unset=True)
    return result


class LeasedJob(BaseModel):
    """A job as the lease answer carries it. ``type`` stays a string: a job type this side
    does not know is failed by the connector with a clear error, not a lease that fails."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    payload: dict[str, Any]
    attempt: int
    lease_id: str
    lease_expires_at: datetime
