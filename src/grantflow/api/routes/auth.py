"""Web sign-in with a username and password; sign-out; what the current web session is.

``POST /auth/login`` takes JSON or a form (``username``, ``password``, optional ``next``).
JSON callers get the user and the session's CSRF token; form posts are redirected to
``next``. Either way the session is an HttpOnly, SameSite=Lax cookie (Secure unless
``GRANTFLOW_COOKIE_SECURE=false``). API clients keep using bearer tokens.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from grantflow.api.deps import Ctx, MaybePrincipal, client_ip
from grantflow.api.schemas.users import UserPublic, user_public
from grantflow.api.web_session import (
    SessionPublic,
    browser,
    clear_session_cookie,
    error_response,
    origin_allowed,
    set_session_cookie,
    signed_in,
)
from grantflow.services.audit import trail as audit
from grantflow.services.auth import password_login, web_sign_in
from grantflow.services.auth import sessions as web_sessions
from grantflow.services.auth.oidc_login import safe_next
from grantflow.services.errors import ServiceError

router = APIRouter(prefix="/auth", tags=["sign-in"])
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=1024)
    next: str | None = Field(default=None, max_length=2048)


async def _login_body(request: Request) -> tuple[LoginBody, bool]:
    content_type = request.headers.get("content-type", "")
    is_form = content_type.startswith(_FORM_TYPES)
    raw: Any = dict(await request.form()) if is_form else await request.json()
    return LoginBody.model_validate(raw), is_form


def _open_session(
    ctx: Ctx, request: Request, user_id: str, method: str, actor: audit.Actor
) -> tuple[web_sessions.NewSession, UserPublic]:
    settings = ctx.settings
    old = request.cookies.get(web_sessions.cookie_name(settings.cookie_secure))
    signed = web_sign_in.open_session(ctx.sessions, user_id, method, old,
                                      settings.session_max_age_seconds, actor,
                                      browser(request))  # fmt: skip
    return signed.new, user_public(signed.user, signed.principals)


def _web_actor(request: Request) -> audit.Actor:
    return audit.Actor("user", None, "web", getattr(request.state, "request_id", None))


@router.post(
    "/login",
    response_model=SessionPublic,
    responses={401: {"description": "wrong credentials"}, 429: {"description": "rate limited"}},
)
async def login(ctx: Ctx, request: Request) -> Response:
    if not origin_allowed(request, ctx.settings):
        return error_response(request, 403, "forbidden", "cross-site sign-in refused")
    try:
        body, is_form = await _login_body(request)
    except (ValidationError, ValueError):
        return error_response(
            request, 422, "validation_error", "send a username and a password (JSON or a form)"
        )
    actor = _web_actor(request)
    try:
        user_id = await run_in_threadpool(
            password_login.authenticate,
            ctx.sessions,
            body.username,
            body.password,
            client_ip(request),
            password_login.LoginLimits.from_settings(ctx.settings),
            actor,
        )
    except password_login.TooManyAttempts as err:
        retry = {"Retry-After": str(err.retry_after_seconds)}
        return error_response(request, err.status, err.code, err.message, retry)
    except ServiceError as err:
        return error_response(request, err.status, err.code, err.message)
    new, user = await run_in_threadpool(_open_session, ctx, request, user_id, "password", actor)
    if not is_form:
        return signed_in(request, ctx.settings, user, new)
    response = RedirectResponse(safe_next(body.next), status_code=status.HTTP_303_SEE_OTHER)
    set_session_cookie(response, ctx.settings, new)
    return response


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(
    ctx: Ctx,
    request: Request,
    principal: MaybePrincipal,
    next_path: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    """End this browser's session. Cookie-authenticated, so it needs the CSRF token."""
    secret = request.cookies.get(web_sessions.cookie_name(ctx.settings.cookie_secure))
    if secret and principal is not None:
        actor = audit.Actor("user", principal.id, "web", getattr(request.state, "request_id", None))
        web_sign_in.sign_out(ctx.sessions, secret, actor)
    content_type = request.headers.get("content-type", "")
    response: Response = (
        RedirectResponse(safe_next(next_path), status_code=status.HTTP_303_SEE_OTHER)
        if content_type.startswith(_FORM_TYPES)
        else Response(status_code=status.HTTP_204_NO_CONTENT)
    )
    clear_session_cookie(response, ctx.settings)
    return response


def _session_user(ctx: Ctx, user_id: str) -> UserPublic | None:
    found = web_sign_in.signed_in_user(ctx.sessions, user_id)
    return user_public(*found) if found is not None else None


@router.get("/session", response_model=SessionPublic)
def current_session(ctx: Ctx, request: Request, principal: MaybePrincipal) -> SessionPublic:
    """Who this browser is signed in as, and the CSRF token its pages must send."""
    resolved = getattr(request.state, "web_session", None)
    oidc_enabled = request.app.state.oidc is not None
    if not isinstance(resolved, web_sessions.ResolvedSession) or principal is None:
        return SessionPublic(authenticated=False, oidc_enabled=oidc_enabled)
    if not principal.active:
        return SessionPublic(authenticated=False, oidc_enabled=oidc_enabled)
    return SessionPublic(
        authenticated=True,
        user=_session_user(ctx, principal.id),
        csrf_token=resolved.csrf_token,
        expires_at=resolved.expires_at,
        oidc_enabled=oidc_enabled,
    )
