"""API tokens: issue (hashed at rest), resolve a bearer secret to a principal, revoke."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from grantflow.domain.authz import Principal, PrincipalKind, Role
from grantflow.domain.secrets import (
    PUBLIC_PREFIX_MIN_LENGTH,
    IssuedToken,
    hash_token,
    is_public_prefix,
    issue_token,
    public_id,
    token_matches,
)
from grantflow.services.audit import trail as audit
from grantflow.services.errors import NotFound
from grantflow.services.integrations import connectors
from grantflow.store.models import ApiToken, Connector, User
from grantflow.store.types import utcnow

PERSONAL_PREFIX = "gf_pat"
SCIM_PREFIX = "gf_scim"
BOOTSTRAP_ADMIN = "admin"
CONNECTOR_LABEL = "gf_con"
# What lists show for a token whose secret does not start with a public id of ours (a
# configured bootstrap token, tokens made before public ids): the kind, "~", a random label.
_LABELS = {"bootstrap": "admin", "personal": PERSONAL_PREFIX, "scim": SCIM_PREFIX}
# The only kinds that authenticate API calls. Anything else in api_tokens (an invitation,
# kind "invite") is a one-purpose secret and never a bearer credential.
BEARER_KINDS = ("bootstrap", "personal", "scim")


def label_for(kind: str) -> str:
    """A display prefix that is no part of any secret (``~`` marks it as a label)."""
    return f"{kind}~{public_id()}"


def hide_legacy_prefixes(session: Session) -> int:
    """Replace every stored prefix that is the start of a secret (tokens made before public
    ids, a configured bootstrap token's first 10 characters) with a label; audited."""
    hidden = 0
    short = PUBLIC_PREFIX_MIN_LENGTH  # every public prefix is at least this long
    for token in session.scalars(select(ApiToken).where(func.length(ApiToken.prefix) < short)):
        if not is_public_prefix(token.prefix):
            token.prefix = label_for(_LABELS.get(token.kind, "token"))
            hidden += 1
    rows = select(Connector).where(func.length(Connector.token_prefix) < short)
    for connector in session.scalars(rows):
        if not is_public_prefix(connector.token_prefix):
            connector.token_prefix = label_for(CONNECTOR_LABEL)
            hidden += 1
    if hidden:
        audit.record(session, audit.SYSTEM, "token.prefixes_hidden", data={"count": hidden})
    return hidden


@dataclass(frozen=True, slots=True)
class NewToken:
    id: str
    name: str
    plaintext: str
    prefix: str
    created_at: datetime


def store_token(
    session: Session,
    issued: IssuedToken,
    name: str,
    kind: str,
    user_id: str,
    expires_at: datetime | None = None,
) -> ApiToken:
    """Keep an issued token of ``user_id``: its hash and public prefix, never the plaintext."""
    row = ApiToken(name=name, kind=kind, token_hash=issued.token_hash, prefix=issued.prefix,
                   user_id=user_id, expires_at=expires_at)  # fmt: skip
    session.add(row)
    session.flush()
    return row


def create_personal_token(
    session: Session, user: User, name: str, actor: audit.Actor, expires_at: datetime | None = None
) -> NewToken:
    issued = issue_token(PERSONAL_PREFIX)
    row = store_token(session, issued, name, "personal", user.id, expires_at)
    audit.record(session, actor, "token.created", "api_token", row.id, {"name": name})
    return NewToken(row.id, name, issued.plaintext, issued.prefix, row.created_at)


def revoke_token(session: Session, user: User, token_id: str, actor: audit.Actor) -> None:
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id or row.revoked_at is not None:
        raise NotFound("no such token")
    row.revoked_at = utcnow()
    audit.record(session, actor, "token.revoked", "api_token", row.id, {"name": row.name})


def revoke_user_tokens(session: Session, user_id: str) -> int:
    """Revoke every live API token of a user (bootstrap included; the caller audits).
    Returns how many. A revoked token never works again, whatever happens to the user."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def resolve_bearer(session: Session, plaintext: str) -> Principal | None:
    """The principal a bearer secret stands for, or None when it is unknown or spent."""
    digest = hash_token(plaintext)
    token = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == digest, ApiToken.kind.in_(BEARER_KINDS))
    )
    now = utcnow()
    if token is not None and token_matches(plaintext, token.token_hash):
        if token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
            return None
        if token.kind == "scim":
            return Principal(PrincipalKind.SCIM, token.id, display=token.name)
        user = session.get(User, token.user_id) if token.user_id else None
        if user is None:
            return None
        token.last_used_at = now
        return Principal(
            PrincipalKind.USER, user.id, Role(user.role), active=user.active, display=user.username
        )
    connector = connectors.by_token(session, plaintext)
    if connector is not None:
        return Principal(PrincipalKind.CONNECTOR, connector.id, display=connector.name)
    return None


def ensure_bootstrap_admin(session: Session, configured: str | None) -> str | None:
    """Make sure an admin can get in on first start.

    With ``configured`` (GRANTFLOW_ADMIN_TOKEN) that exact token becomes the bootstrap token.
    Without it, a token is generated only when no bootstrap token exists yet; the plaintext is
    returned once, for the caller to print, and never again. Stored prefixes that are part of
    a secret (older versions stored them) are replaced first.
    """
    hide_legacy_prefixes(session)
    admin = session.scalar(
        select(User).where(User.deleted_at.is_(None), User.username == BOOTSTRAP_ADMIN)
    )
    if admin is None:
        admin = User(
            username=BOOTSTRAP_ADMIN, display_name="Bootstrap admin", role="admin", source="local"
        )
        session.add(admin)
        session.flush()
    existing = session.scalars(
        select(ApiToken).where(ApiToken.kind == "bootstrap", ApiToken.revoked_at.is_(None))
    ).all()
    if configured is not None:
        digest = hash_token(configured)
        if any(t.token_hash == digest for t in existing):
            return None
        for token in existing:
            token.revoked_at = utcnow()
        prefix = label_for(_LABELS["bootstrap"])  # never the token's own characters
        session.add(
            ApiToken(
                name="bootstrap",
                kind="bootstrap",
                token_hash=digest,
                prefix=prefix,
                user_id=admin.id,
            )
        )
        return None
    if existing:
        return None
    issued = issue_token(PERSONAL_PREFIX)
    store_token(session, issued, "bootstrap", "bootstrap", admin.id)
    audit.record(session, audit.SYSTEM, "token.bootstrap_created", "user", admin.id)
    return issued.plaintext
