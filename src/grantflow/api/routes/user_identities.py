"""A user's external sign-in identities, for admins: list, link, unlink (audited).

Linking by hand is how the bootstrap admin, admins, users with a local password, or anyone
whose identity provider does not verify emails get single sign-on (a first sign-in links only
by verified email, and never to those accounts).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from grantflow.api.deps import AdminUser, Ctx, actor_of
from grantflow.domain.oidc_binding import SUBJECT_MAX
from grantflow.services.auth.oidc_client import OidcClient
from grantflow.services.errors import Invalid
from grantflow.services.identity import identity_links

router = APIRouter(prefix="/api/v1/users/{user_id}/identities", tags=["directory"])


class IdentityPublic(BaseModel):
    id: str
    issuer: str
    subject: str = Field(description="The issuer's sub claim: who the identity is")
    email: str | None
    linked_by: str = Field(description="verified_email, created or admin")
    created_at: datetime
    last_sign_in_at: datetime | None


class IdentityLink(BaseModel):
    subject: str = Field(min_length=1, max_length=SUBJECT_MAX, description="The sub claim")
    issuer: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Defaults to the configured GRANTFLOW_OIDC_ISSUER, the only one accepted "
        "while single sign-on is configured",
    )
    email: str | None = Field(default=None, max_length=320, description="For the record only")


def _issuer(request: Request, given: str | None) -> str:
    client = getattr(request.app.state, "oidc", None)
    configured = client.config.issuer if isinstance(client, OidcClient) else None
    if configured is None:
        if given is None:
            raise Invalid("single sign-on is not configured: name the issuer", field="issuer")
        return given
    if given is not None and given != configured:
        raise Invalid(
            f"only the configured issuer {configured!r} signs anyone in here", field="issuer"
        )
    return configured


@router.get("", response_model=list[IdentityPublic])
def list_identities(user_id: str, ctx: Ctx, _admin: AdminUser) -> list[IdentityPublic]:
    return [IdentityPublic.model_validate(r) for r in identity_links.of_user(ctx.sessions, user_id)]


@router.post("", response_model=IdentityPublic, status_code=status.HTTP_201_CREATED)
def link_identity(
    user_id: str, body: IdentityLink, ctx: Ctx, admin: AdminUser, request: Request
) -> IdentityPublic:
    """Bind (issuer, subject) to the user: their next single sign-on signs in as them."""
    issuer = _issuer(request, body.issuer)
    found = identity_links.link(
        ctx.sessions, user_id, issuer, body.subject, body.email, actor_of(admin, request)
    )
    return IdentityPublic.model_validate(found)


@router.delete("/{identity_id}", status_code=status.HTTP_204_NO_CONTENT)
def unlink_identity(
    user_id: str, identity_id: str, ctx: Ctx, admin: AdminUser, request: Request
) -> None:
    """Remove the binding and end the user's single sign-on sessions."""
    identity_links.unlink(ctx.sessions, user_id, identity_id, actor_of(admin, request))
