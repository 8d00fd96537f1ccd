"""Web sign-in with a username and password; sign-out; what the current web session is.

``POST /auth/login`` takes JSON or a form (``username``, ``password``, optional ``next``).
JSON callers get the user and the session's CSRF token; form posts are redirected to
``next``. Either way the session is an HttpOnly, SameSite=Lax cookie (Secure unless
``GRANTFLOW_COOKIE_SECURE=false``). API clients keep using bearer tokens.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from grantflow.api.deps import Ctx, MaybePrincipal, client_ip
from grantflow.api.errors import error_body
from grantflow.api.schemas.users import UserPublic, user_public
from grantflow.services.audit import trail as audit
from grantflow.services.auth import password_login
from grantflow.services.auth import sessions as web_sessions
from grantflow.services.auth.oidc_login import safe_next
from grantflow.services.errors import ServiceError
from grantflow.services.identity import principals
from grantflow.settings import Settings
from grantflow.store.db import transaction
from grantflow.store.models import User

router = APIRouter(prefix="/auth", tags=["sign-in"])
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=1024)
    next: str | None = Field(default=None, max_length=2048)


class SessionPublic(BaseModel):
    authenticated: bool
    user: UserPublic | None = None
    csrf_token: str | None = Field(
        default=None, description="Send as X-CSRF-Token on every state-changing request"
    )
    expires_at: datetime | None = None
    oidc_enabled: bool = False


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


def error_response(
    request: Request,
    status_code: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """A browser gets a small page it can act on; anything else gets the JSON error shape."""
    if wants_html(request):
        page = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>Sign-in failed</title>"
            f"<h1>Sign-in failed</h1><p>{html.escape(message)}</p>"
            '<p><a href="/login">Back to sign-in</a></p></html>'
        )
        return HTMLResponse(page, status_code=status_code, headers=headers)
    return JSONResponse(error_body(code, message), status_code=status_code, headers=headers)


def set_session_cookie(
    response: Response, settings: Settings, new: web_sessions.NewSession
) -> None:
    response.set_cookie(
        web_sessions.cookie_name(settings.cookie_secure),
        new.secret,
        max_age=settings.session_max_age_seconds,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        web_sessions.cookie_name(settings.cookie_secure),
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )


def _origin_allowed(request: Request, settings: Settings) -> bool:
    """Login CSRF: a browser's cross-site form post carries a foreign Origin; refuse it."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = f"{request.url.scheme}://{request.url.netloc}"
    public = urlsplit(settings.base_url)
    return origin in {own, f"{public.scheme}://{public.netloc}"}


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
    with transaction(ctx.sessions) as session:
        if old:
            web_sessions.end_session(session, old, actor)
        user = session.get(User, user_id)
        assert user is not None
        new = web_sessions.create_session(
            session,
            user,
            auth_method=method,
            max_age_seconds=settings.session_max_age_seconds,
            actor=audit.Actor("user", user.id, actor.source, actor.request_id),
            client_ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
        public = user_public(user, principals.principals_of(session, user.id))
    return new, public


def _web_actor(request: Request) -> audit.Actor:
    return audit.Actor("user", None, "web", getattr(request.state, "request_id", None))


@router.post(
    "/login",
    response_model=SessionPublic,
    responses={401: {"description": "wrong credentials"}, 429: {"description": "rate limited"}},
)
async def login(ctx: Ctx, request: Request) -> Response:
    if not _origin_allowed(request, ctx.settings):
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
    response: Response
    if is_form:
        response = RedirectResponse(safe_next(body.next), status_code=status.HTTP_303_SEE_OTHER)
    else:
        payload = SessionPublic(
            authenticated=True,
            user=user,
            csrf_token=new.csrf_token,
            expires_at=new.expires_at,
            oidc_enabled=request.app.state.oidc is not None,
        )
        response = JSONResponse(payload.model_dump(mode="json"))
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
        with transaction(ctx.sessions) as session:
            web_sessions.end_session(session, secret, actor)
    content_type = request.headers.get("content-type", "")
    response: Response = (
        RedirectResponse(safe_next(next_path), status_code=status.HTTP_303_SEE_OTHER)
        if content_type.startswith(_FORM_TYPES)
        else Response(status_code=status.HTTP_204_NO_CONTENT)
    )
    clear_session_cookie(response, ctx.settings)
    return response


def _session_user(ctx: Ctx, user_id: str) -> UserPublic | None:
    with transaction(ctx.sessions) as session:
        user = session.get(User, user_id)
        if user is None:
            return None
        return user_public(user, principals.principals_of(session, user.id))


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
