"""Invitations: how a directory user (Identity Center, SCIM) gets a password without OIDC.

``POST /api/v1/users/{user_id}/invitation`` (admins) makes a one-time link valid for 72 hours
and revokes the user's older ones. With SMTP configured and an email address on the user, the
link is emailed and not shown; otherwise (or when sending fails) the answer shows it, once.

``POST /auth/invitation`` (no credentials: the secret is the credential) takes the link's
secret and a new password in a JSON body, spends the invitation, sets the password and opens a
web session. The page ``/invite`` reads the secret from the URL fragment, which browsers never
send to a server, so it lands in no access log and no Referer header.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from grantflow.api.deps import AdminUser, Ctx, actor_of
from grantflow.api.errors import error_body
from grantflow.api.schemas.users import UserPublic, user_public
from grantflow.api.web_session import (
    SessionPublic,
    browser,
    error_response,
    origin_allowed,
    signed_in,
)
from grantflow.notify.email import EmailChannel
from grantflow.services.audit import trail as audit
from grantflow.services.auth import sessions as web_sessions
from grantflow.services.directory import invitation_flow
from grantflow.services.errors import ServiceError

admin_router = APIRouter(prefix="/api/v1", tags=["directory"])
public_router = APIRouter(prefix="/auth", tags=["sign-in"])


class InvitationCreated(BaseModel):
    user_id: str
    expires_at: datetime
    emailed_to: str | None = Field(None, description="Where the link was sent, when it was")
    link: str | None = Field(
        None, description="The sign-in link, shown only here and only when it was not emailed"
    )
    email_error: str | None = Field(None, description="Why sending the email failed, if it did")


class InvitationAccept(BaseModel):
    token: str = Field(min_length=1, max_length=512)
    password: str = Field(min_length=1, max_length=1024)


@admin_router.post(
    "/users/{user_id}/invitation",
    response_model=InvitationCreated,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "the user is deactivated or deleted"}},
)
def create_invitation(
    user_id: str, ctx: Ctx, admin: AdminUser, request: Request
) -> InvitationCreated:
    channel = EmailChannel.from_settings(ctx.settings)
    sent = invitation_flow.invite(ctx.sessions, user_id, actor_of(admin, request),
                                  ctx.settings.base_url, channel)  # fmt: skip
    return InvitationCreated(user_id=sent.user_id, expires_at=sent.expires_at,
                             emailed_to=sent.emailed_to, link=sent.link,
                             email_error=sent.email_error)  # fmt: skip


def _accept(
    ctx: Ctx, request: Request, body: InvitationAccept
) -> tuple[web_sessions.NewSession, UserPublic]:
    actor = audit.Actor("user", None, "web", getattr(request.state, "request_id", None))
    signed = invitation_flow.accept(ctx.sessions, body.token, body.password,
                                    ctx.settings.session_max_age_seconds, actor,
                                    browser(request))  # fmt: skip
    return signed.new, user_public(signed.user, signed.principals)


@public_router.post(
    "/invitation",
    response_model=SessionPublic,
    responses={400: {"description": "the link is unknown, used, expired or replaced"}},
)
async def accept_invitation(ctx: Ctx, request: Request) -> Response:
    """Spend an invitation: set the password and sign in (a web session cookie)."""
    if not origin_allowed(request, ctx.settings):
        return error_response(request, 403, "forbidden", "cross-site request refused")
    try:
        body = InvitationAccept.model_validate(await request.json())
    except (ValidationError, ValueError):
        message = "send the invitation token and a password as JSON"
        return JSONResponse(error_body("validation_error", message, "body"), status_code=422)
    try:
        new, user = await run_in_threadpool(_accept, ctx, request, body)
    except ServiceError as err:
        return JSONResponse(error_body(err.code, err.message, err.field), status_code=err.status)
    return signed_in(request, ctx.settings, user, new)
