"""SQLAlchemy tables for every domain object. Alembic owns the schema (see migrations/)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from grantflow.store.types import JsonType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JsonType}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class User(Timestamps, Base):
    """A person. ``username`` is unique among the users that are not deleted (a deleted row
    keeps its name for the history; a new person with that name is a new row)."""

    __tablename__ = "users"
    __table_args__ = (
        Index(
            "uq_users_username_live",
            "username",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    role: Mapped[str] = mapped_column(String(16), default="member")
    source: Mapped[str] = mapped_column(String(32), default="local")
    # For source identity_center: the identity store that created (and may retire) the row.
    directory: Mapped[str] = mapped_column(String(64), default="", server_default="")
    external_id: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # An admin's deactivation wins over every source until an admin reverses it.
    disabled_by_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    deleted_at: Mapped[datetime | None]


class Group(Timestamps, Base):
    """A group of one source. ``directory`` is the identity store of an identity_center
    group and empty for local and SCIM groups: names are unique within a directory only."""

    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("directory", "name", name="uq_groups_directory_name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(32), default="local")
    directory: Mapped[str] = mapped_column(String(64), default="", server_default="")
    external_id: Mapped[str | None] = mapped_column(String(255))
    identity_store_group_id: Mapped[str | None] = mapped_column(String(64), index=True)


class DirectoryPrincipal(Timestamps, Base):
    """One user of one Identity Center identity store, and the Grantflow user it is (if any).

    Grants in an integration go to the principal of the requester in that integration's
    identity store; a Grantflow user has at most one principal per identity store."""

    __tablename__ = "directory_principals"
    __table_args__ = (
        UniqueConstraint(
            "identity_store_id", "principal_id", name="uq_directory_principals_principal"
        ),
        UniqueConstraint("identity_store_id", "user_id", name="uq_directory_principals_user"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    identity_store_id: Mapped[str] = mapped_column(String(64))
    principal_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    user_name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    matched_by: Mapped[str | None] = mapped_column(String(16))  # owner|username|email|admin


class UserIdentity(Base):
    """An external sign-in identity bound to a user: (issuer, subject), never a name."""

    __tablename__ = "user_identities"
    __table_args__ = (
        UniqueConstraint("issuer", "subject", name="uq_user_identities_issuer_subject"),
        UniqueConstraint("user_id", "issuer", name="uq_user_identities_user_issuer"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    linked_by: Mapped[str] = mapped_column(String(16))  # verified_email | admin | created
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]


class GroupMembership(Base):
    __tablename__ = "group_memberships"
    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    source: Mapped[str] = mapped_column(String(32), default="local")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # bootstrap | personal | scim | invite
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Connector(Timestamps, Base):
    __tablename__ = "connectors"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # managed | self_hosted
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    version: Mapped[str | None] = mapped_column(String(64))
    aws_identity_arn: Mapped[str | None] = mapped_column(String(2048))  # as last reported
    aws_account_id: Mapped[str | None] = mapped_column(String(12))
    last_heartbeat_at: Mapped[datetime | None]
    # The role the template trusts: set by an admin (or the managed connector's setting),
    # never by a heartbeat. confirmed_by: "user:<id>" or "setting:<name>".
    confirmed_role_arn: Mapped[str | None] = mapped_column(String(2048))
    confirmed_by: Mapped[str | None] = mapped_column(String(64))
    confirmed_at: Mapped[datetime | None]


class ConnectorCredential(Base):
    """One more secret for a connector, held by one holder: each server replica's managed
    connector has its own (``holder`` = host:port), so one replica's start never ends
    another's. Only the SHA-256 of the secret is kept."""

    __tablename__ = "connector_credentials"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    connector_id: Mapped[str] = mapped_column(
        ForeignKey("connectors.id", ondelete="CASCADE"), index=True
    )
    holder: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]


class Integration(Timestamps, Base):
    __tablename__ = "integrations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    connector_id: Mapped[str] = mapped_column(ForeignKey("connectors.id"), index=True)
    resource_types: Mapped[list[str]] = mapped_column(JsonType, default=list)
    config: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    facts: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # learnt from AWS
    status: Mapped[str] = mapped_column(String(16), default="initializing")
    status_message: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sync_interval_seconds: Mapped[int | None]
    last_sync_at: Mapped[datetime | None]
    next_sync_at: Mapped[datetime | None] = mapped_column(index=True)


class Resource(Base):
    __tablename__ = "resources"
    __table_args__ = (
        # RDS identifiers and EC2 ids are unique only within an account and region.
        UniqueConstraint(
            "integration_id",
            "type",
            "account_id",
            "region",
            "aws_id",
            name="uq_resources_identity",
        ),
        Index("ix_resources_integration_type", "integration_id", "type"),
        # the resources page's order, and what its name search tests (0015)
        Index("ix_resources_listing", "type", "account_id", "name", "aws_id"),
        Index("ix_resources_aws_id", "aws_id"),  # flows name resources by AWS id (0012)
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    aws_id: Mapped[str] = mapped_column(String(512))
    arn: Mapped[str | None] = mapped_column(String(2048))
    name: Mapped[str] = mapped_column(String(512), default="")
    account_id: Mapped[str | None] = mapped_column(String(12), index=True)
    region: Mapped[str | None] = mapped_column(String(32))
    ou_path: Mapped[list[str]] = mapped_column(JsonType, default=list)
    tags: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    owners: Mapped[list[str]] = mapped_column(JsonType, default=list)
    # The sync that last wrote the row, and when: a record found unchanged is not rewritten
    # (services.sync_ingest); which accounts a sync read is its run's per-account record.
    sync_generation: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Permission(Base):
    __tablename__ = "permissions"
    __table_args__ = (
        UniqueConstraint("integration_id", "resource_type", "name", name="uq_permissions_identity"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    resource_type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    aws_ref: Mapped[str | None] = mapped_column(String(2048))


class AccessFlow(Timestamps, Base):
    __tablename__ = "access_flows"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id"), index=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)


class AccessRequest(Timestamps, Base):
    __tablename__ = "access_requests"
    # request lists are newest first (0015)
    __table_args__ = (Index("ix_access_requests_created_at", "created_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    requester_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id"), index=True)
    flow_id: Mapped[str | None] = mapped_column(ForeignKey("access_flows.id"))
    resource_type: Mapped[str] = mapped_column(String(64))
    permission: Mapped[str] = mapped_column(String(255))
    justification: Mapped[str] = mapped_column(Text, default="")
    duration_seconds: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    extensions: Mapped[int] = mapped_column(Integer, default=0)
    end_reason: Mapped[str | None] = mapped_column(String(16))
    approval: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    approved_at: Mapped[datetime | None]
    granted_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]


class Grant(Timestamps, Base):
    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_state_expires", "state", "expires_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("access_requests.id", ondelete="CASCADE"), index=True
    )
    resource_id: Mapped[str | None] = mapped_column(
        ForeignKey("resources.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="pending")
    tuple_key: Mapped[str] = mapped_column(String(1024), default="", index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    handle: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    pre_existing: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    granted_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("request_id", "approver_id", name="uq_approvals_request_approver"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("access_requests.id", ondelete="CASCADE"), index=True
    )
    approver_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(16))  # approve | reject
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Timestamps, Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_lease", "connector_id", "state", "priority", "available_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    connector_id: Mapped[str] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    # domain.jobs.JobPriority: leased by priority, then available_at (revocations first)
    priority: Mapped[int] = mapped_column(SmallInteger, default=2, server_default=text("2"))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_id: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    finished_at: Mapped[datetime | None]


class AuditEvent(Base):
    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_type: Mapped[str] = mapped_column(String(16))  # user | connector | system
    actor_id: Mapped[str | None] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(255), index=True)
    source: Mapped[str] = mapped_column(String(16))  # web | api | cli | scim | scheduler
    request_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str | None] = mapped_column(String(16))  # None: before the audit key


class SyncRun(Base):
    __tablename__ = "sync_runs"
    __table_args__ = (
        UniqueConstraint("integration_id", "generation", name="uq_sync_runs_generation"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[str | None] = mapped_column(String(36), index=True)
    generation: Mapped[int] = mapped_column(BigInteger)
    trigger: Mapped[str] = mapped_column(String(16), default="schedule")  # schedule|manual|create
    state: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    accounts: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    accounts_done: Mapped[int] = mapped_column(Integer, default=0)
    accounts_total: Mapped[int | None] = mapped_column(Integer)  # known once the org is walked
    resources_seen: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    updated_at: Mapped[datetime | None]  # when the run last moved (progress, batch, end)
    aws_calls: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
