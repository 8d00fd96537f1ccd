"""Single sign-on with OpenID Connect (authorization code flow, PKCE, state and nonce).

``GET /auth/oidc/login?next=/path`` redirects to the issuer; ``GET /auth/oidc/callback`` is
where the issuer sends the browser back (register ``<GRANTFLOW_BASE_URL>/auth/oidc/callback``
as the client's redirect URI). Every failure is a clear page (browsers) or JSON error.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, FastAPI, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from grantflow.api.deps import Ctx
from grantflow.api.web_session import browser, error_response, set_session_cookie
from grantflow.services.audit import trail as audit
from grantflow.services.auth import oidc_login, web_sign_in
from grantflow.services.auth import sessions as web_sessions
from grantflow.services.auth.oidc_client import OidcClient, OidcConfig, OidcError
from grantflow.services.errors import ServiceError
from grantflow.settings import Settings

router = APIRouter(prefix="/auth/oidc", tags=["sign-in"])
log = structlog.get_logger(__name__)
_BINDING_PATH = "/auth/oidc"


def install(app: FastAPI, settings: Settings) -> None:
    """Build the app's OIDC client (None when single sign-on is not configured), and warn
    about the settings that weaken it (the same ones `grantflow config check` reports)."""
    config = OidcConfig.from_settings(settings)
    for setting, why in oidc_login.risky_settings(settings):
        log.warning("oidc_setting_weakens_sign_in", setting=setting, detail=why)
    app.state.oidc = OidcClient(config) if config is not None else None


def _client(request: Request) -> OidcClient | None:
    client = getattr(request.app.state, "oidc", None)
    return client if isinstance(client, OidcClient) else None


def _not_configured(request: Request) -> Response:
    return error_response(
        request, 404, "not_found", "single sign-on is not configured on this Grantflow"
    )


@router.get("/login", status_code=status.HTTP_303_SEE_OTHER)
def oidc_login_start(
    ctx: Ctx,
    request: Request,
    next_path: Annotated[str | None, Query(alias="next", max_length=2048)] = None,
) -> Response:
    client = _client(request)
    if client is None:
        return _not_configured(request)
    try:
        started = web_sign_in.start_oidc(ctx.sessions, client, next_path)
    except ServiceError as err:
        return error_response(request, err.status, err.code, err.message)
    response = RedirectResponse(started.redirect_url, status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        oidc_login.BINDING_COOKIE,
        started.binding,
        max_age=int(oidc_login.PENDING_TTL.total_seconds()),
        path=_BINDING_PATH,
        secure=ctx.settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/callback")
async def oidc_callback(
    ctx: Ctx,
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    client = _client(request)
    if client is None:
        return _not_configured(request)
    binding = request.cookies.get(oidc_login.BINDING_COOKIE)
    try:
        pending = await run_in_threadpool(_consume, ctx, binding)
        if error:
            detail = f": {error_description}" if error_description else ""
            raise OidcError(f"the identity provider said {error}{detail}")
        checked = oidc_login.check(pending, state)
        if not code:
            raise OidcError("the identity provider sent no authorization code")
        new = await run_in_threadpool(_sign_in, ctx, request, client, checked, code)
    except ServiceError as err:
        response = error_response(request, err.status, err.code, err.message)
    else:
        response = RedirectResponse(checked.next_path, status_code=status.HTTP_303_SEE_OTHER)
        set_session_cookie(response, ctx.settings, new)
    response.delete_cookie(
        oidc_login.BINDING_COOKIE,
        path=_BINDING_PATH,
        secure=ctx.settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    return response


def _consume(ctx: Ctx, binding: str | None) -> oidc_login.PendingLogin | None:
    return web_sign_in.consume_oidc(ctx.sessions, binding)


def _sign_in(
    ctx: Ctx,
    request: Request,
    client: OidcClient,
    pending: oidc_login.PendingLogin,
    code: str,
) -> web_sessions.NewSession:
    actor = audit.Actor("user", None, "web", getattr(request.state, "request_id", None))
    return web_sign_in.oidc_sign_in(ctx.sessions, client, pending, code,
                                    ctx.settings.session_max_age_seconds, actor,
                                    browser(request))  # fmt: skip
